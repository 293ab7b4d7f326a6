"""Routers: replica counts for a weight, HTTPRoute weights, and the weight observed back."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from modelops.api.rollout_spec import Traffic
from modelops.traffic.factory import router_for
from modelops.traffic.gateway_api import route_weight, route_with_weights, routes_us
from modelops.traffic.replica_ratio import ReplicaRatio, closest_canary, observed_weight, replica_plan, share_percent
from modelops.traffic.router import TrafficView

GATEWAY = Traffic.model_validate({"router": "GatewayAPI", "httpRoute": {"name": "r"}})
UNCAPPED = 10**6


def test_replica_ratio_sizes_the_canary_for_the_weight_next_to_a_full_strength_stable():
    assert replica_plan(2, 50) == replica_plan(2, 50, 2)
    assert (replica_plan(2, 50).stable, replica_plan(2, 50).canary, replica_plan(2, 50).share) == (2, 2, 50)
    assert replica_plan(2, 10).canary == 1  # 33%: one pod is the least a canary can have
    assert replica_plan(3, 10).canary == 1 and replica_plan(3, 10).share == 25
    assert replica_plan(9, 10).canary == 1 and replica_plan(9, 10).share == 10
    assert replica_plan(10, 25).canary == 3 and replica_plan(10, 25).share == 23
    assert replica_plan(3, 0).canary == 0 and replica_plan(0, 50).canary == 0
    assert not replica_plan(2, 50).surge_limited


def test_max_surge_caps_the_canary_and_says_what_it_costs():
    plan = replica_plan(2, 90, max_surge=10)
    assert (plan.canary, plan.wanted, plan.max_surge, plan.share) == (10, 18, 10, 83)
    assert plan.surge_limited
    default = replica_plan(2, 75)  # default cap: serving.replicas
    assert (default.canary, default.wanted, default.share, default.surge_limited) == (2, 6, 50, True)
    full = replica_plan(3, 100)
    assert (full.canary, full.wanted, full.share, full.surge_limited) == (3, None, 50, True)


def distance(stable: int, canary: int, weight: int) -> Fraction:
    return abs(Fraction(canary, canary + stable) - Fraction(weight, 100))


def brute_force_best(stable: int, weight: int) -> Fraction:
    """The smallest distance to `weight` of any canary count (integer arithmetic: fast enough for 10^4)."""
    best_num, best_den = 1, 1
    for canary in range(1, 99 * stable + 2):  # up to a count whose share exceeds any weight below 100
        num, den = abs(100 * canary - weight * (canary + stable)), 100 * (canary + stable)
        if num * best_den < best_num * den:
            best_num, best_den = num, den
    return Fraction(best_num, best_den)


@given(stable=st.integers(1, 100), weight=st.integers(1, 99))
def test_uncapped_canary_share_is_the_closest_any_pod_count_achieves(stable: int, weight: int):
    plan = replica_plan(stable, weight, max_surge=UNCAPPED)
    assert plan.stable == stable and not plan.surge_limited
    assert distance(stable, plan.canary, weight) == brute_force_best(stable, weight)
    assert plan.canary == closest_canary(stable, weight)
    # What the router reports once these pods are ready is what the plan expects.
    router = ReplicaRatio(max_surge=UNCAPPED)
    assert router.plan(stable, weight) == plan
    assert router.observed_weight("iris", TrafficView(stable, plan.canary)) == plan.share
    assert abs(Fraction(100 * plan.canary, plan.canary + stable) - plan.share) <= Fraction(1, 2)


@given(stable=st.integers(1, 100), weight=st.integers(1, 99), cap=st.integers(1, 1000))
def test_capped_canary_is_the_uncapped_one_or_the_cap(stable: int, weight: int, cap: int):
    uncapped = replica_plan(stable, weight, max_surge=UNCAPPED)
    plan = replica_plan(stable, weight, max_surge=cap)
    assert plan.canary == min(uncapped.canary, cap)
    assert plan.surge_limited == (uncapped.canary > cap)
    assert plan.share == share_percent(stable, plan.canary) <= uncapped.share


def test_gateway_api_sizes_the_canary_for_its_share_of_the_load():
    router = router_for(GATEWAY)
    assert [router.plan(3, w).canary for w in (10, 50, 100, 0)] == [1, 2, 3, 0]
    assert [router.plan(10, w).canary for w in (10, 25)] == [1, 3]
    assert router.plan(3, 50).stable == 3 and router.plan(3, 50).share == 50


@given(total=st.integers(1, 100), weight=st.integers(1, 100))
def test_gateway_canary_covers_the_weight_without_exceeding_total(total: int, weight: int):
    replicas = router_for(GATEWAY).plan(total, weight).canary
    assert 1 <= replicas <= total
    assert replicas * 100 >= total * weight


def test_observed_weight_is_the_share_of_ready_pods():
    assert observed_weight(3, 1) == 25
    assert observed_weight(0, 0) == 0
    assert observed_weight(0, 2) == 100
    assert observed_weight(1, 2) == 67  # nearest, as the plan rounds
    assert observed_weight(1, 1000) == 99  # never 100 while a stable pod still serves
    assert observed_weight(1000, 1) == 1


def test_route_update_rewrites_only_the_backends_naming_our_services():
    route = {"metadata": {"name": "r", "resourceVersion": "7"}, "spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
         "backendRefs": [{"name": "mirror-ish", "port": 80, "weight": 0}, {"name": "iris", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
         "backendRefs": [{"name": "someone-else", "port": 80}]},
    ]}}
    updated = route_with_weights(route, "iris", 30, 8080)
    assert updated is not None
    ours, theirs = updated["spec"]["rules"]
    assert ours["matches"] == [{"path": {"type": "PathPrefix", "value": "/v2"}}]
    assert [(r["name"], r.get("weight"), r["port"]) for r in ours["backendRefs"]] == [
        ("mirror-ish", 0, 80), ("iris-stable", 70, 8080), ("iris-canary", 30, 8080)]
    assert theirs == route["spec"]["rules"][1]
    assert updated["metadata"]["resourceVersion"] == "7"
    assert route_weight(updated, "iris") == 30
    assert route_with_weights(updated, "iris", 30, 8080) is None  # nothing to write


def test_a_route_that_never_names_our_services_is_left_alone():
    route = {"spec": {"rules": [{"backendRefs": [{"name": "someone-else", "port": 80}]}]}}
    assert not routes_us(route, "iris")
    assert route_with_weights(route, "iris", 30, 8080) is None
    assert route_weight(route, "iris") is None


def test_gateway_router_sees_no_weight_without_ready_canary_pods():
    router = router_for(GATEWAY)
    route = route_with_weights({"spec": {"rules": [{"backendRefs": [{"name": "iris", "port": 80}]}]}}, "iris", 40, 8080)
    assert router.observed_weight("iris", TrafficView(3, 0, route)) == 0
    assert router.observed_weight("iris", TrafficView(3, 2, route)) == 40
    replica = router_for(Traffic())
    assert replica.observed_weight("iris", TrafficView(3, 1)) == 25
