"""Routers: replica counts for a weight, HTTPRoute weights, and the weight observed back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from modelops.api.models import Traffic
from modelops.traffic.gateway_api import route_weight, route_with_weights, routes_us
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
    router = router_for(Traffic.model_validate({"router": "GatewayAPI", "httpRoute": {"name": "r"}}))
    route = route_with_weights({"spec": {"rules": [{"backendRefs": [{"name": "iris", "port": 80}]}]}}, "iris", 40, 8080)
    assert router.observed_weight("iris", TrafficView(3, 0, route)) == 0
    assert router.observed_weight("iris", TrafficView(3, 2, route)) == 40
    replica = router_for(Traffic())
    assert replica.observed_weight("iris", TrafficView(3, 1)) == 25
