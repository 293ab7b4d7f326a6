"""Routers: replica counts for a weight, HTTPRoute weights, and the weight observed back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from modelops.api.models import Traffic
from modelops.traffic.gateway_api import route_patch, route_weight
from modelops.traffic.replica_ratio import canary_replicas, observed_weight, replica_plan
from modelops.traffic.router import TrafficView, router_for


def test_canary_replicas_round_up_and_keep_at_least_one():
    assert canary_replicas(3, 10) == 1
    assert canary_replicas(3, 50) == 2
    assert canary_replicas(10, 10) == 1
    assert canary_replicas(10, 25) == 3
    assert canary_replicas(3, 100) == 3
    assert canary_replicas(3, 0) == 0
    assert replica_plan(3, 50).stable == 3  # stable keeps full strength


@given(total=st.integers(1, 100), weight=st.integers(1, 100))
def test_canary_replicas_cover_the_weight_without_exceeding_total(total: int, weight: int):
    replicas = canary_replicas(total, weight)
    assert 1 <= replicas <= total
    assert replicas * 100 >= total * weight


def test_observed_weight_is_the_share_of_ready_pods():
    assert observed_weight(3, 1) == 25
    assert observed_weight(0, 0) == 0
    assert observed_weight(0, 2) == 100


def test_route_patch_keeps_matches_and_sets_both_track_weights():
    route = {"spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
         "backendRefs": [{"name": "someone-else", "port": 80}]},
    ]}}
    patch = route_patch(route, "iris", 30, 8080)
    rule = patch["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v2"}}]
    assert [(r["name"], r["weight"], r["port"]) for r in rule["backendRefs"]] == [
        ("iris-stable", 70, 8080), ("iris-canary", 30, 8080)]
    assert route_weight({"spec": patch["spec"]}, "iris") == 30
    assert route_weight(route, "iris") is None


def test_gateway_router_sees_no_weight_without_ready_canary_pods():
    router = router_for(Traffic.model_validate({"router": "GatewayAPI", "httpRoute": {"name": "r"}}))
    route = {"spec": route_patch({}, "iris", 40, 8080)["spec"]}
    assert router.observed_weight("iris", TrafficView(3, 0, route)) == 0
    assert router.observed_weight("iris", TrafficView(3, 2, route)) == 40
    replica = router_for(Traffic())
    assert replica.observed_weight("iris", TrafficView(3, 1)) == 25
