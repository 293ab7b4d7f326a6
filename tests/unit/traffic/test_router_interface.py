"""The Router interface: each router's route, track Services, route check and desired route for a weight,
as plain data, so the controller carries them out without knowing which router it holds."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelops.api.rollout_spec import Traffic
from modelops.traffic.factory import ROUTERS, router_for
from modelops.traffic.gateway_api import TRACK_SERVICE_PORT, GatewayAPI, route_weight
from modelops.traffic.replica_ratio import ReplicaRatio
from modelops.traffic.router import RouteFault, RouteRef, TrackService, TrafficView

REPLICA = Traffic.model_validate({"router": "ReplicaRatio", "maxSurge": 4})
GATEWAY = Traffic.model_validate({"router": "GatewayAPI", "httpRoute": {"name": "web"}})


def user_route(*refs: dict[str, Any]) -> dict[str, Any]:
    """An HTTPRoute as a user writes it, read back from the cache."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "11"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": list(refs)}]}}


def weights(route: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["name"], r["weight"], r["port"]) for r in route["spec"]["rules"][0]["backendRefs"]]


# ------------------------------------------------------------ the factory


def test_every_router_the_api_accepts_has_a_router_of_that_name():
    names = set(get_args(Traffic.model_fields["router"].annotation))
    assert set(ROUTERS) == names
    for name in names:
        traffic = Traffic.model_validate({"router": name, "httpRoute": {"name": "web"}})
        assert router_for(traffic).name == name


def test_the_factory_passes_each_router_its_part_of_the_spec():
    assert router_for(REPLICA) == ReplicaRatio(max_surge=4)
    assert router_for(Traffic()) == ReplicaRatio()
    assert router_for(GATEWAY) == GatewayAPI(http_route="web")


# ------------------------------------------------------------ ReplicaRatio: nothing to write


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_replica_ratio_has_no_route_no_track_services_and_nothing_to_write(weight: int):
    router = router_for(REPLICA)
    assert router.route_ref() is None
    assert router.track_services("rev-a", "rev-b") == ()
    assert router.check_route("iris", "ns", None) is None
    assert router.desired_route("iris", user_route({"name": "iris", "port": 80}), weight) is None
    assert not router.weighted_route


# ------------------------------------------------------------ GatewayAPI: the HTTPRoute


def test_gateway_api_routes_through_the_users_http_route_over_two_track_services():
    router = router_for(GATEWAY)
    assert router.route_ref() == RouteRef("HTTPRoute", "web")
    assert router.weighted_route
    # Given a canary: each track Service selects its own revision.
    assert router.track_services("rev-a", "rev-b") == (TrackService("stable", "rev-a"),
                                                       TrackService("canary", "rev-b"))
    # Given none yet: the canary Service selects stable, so a weight on it never lands on no pods.
    assert router.track_services("rev-a", None) == (TrackService("stable", "rev-a"),
                                                    TrackService("canary", "rev-a"))


def test_gateway_api_route_check_says_what_is_wrong_with_the_route():
    router = router_for(GATEWAY)
    missing = router.check_route("iris", "ns", None)
    assert missing is not None and missing.fault is RouteFault.MISSING
    assert missing.message == "HTTPRoute web not found in ns"

    someone_elses = router.check_route("iris", "ns", user_route({"name": "shop", "port": 80}))
    assert someone_elses is not None and someone_elses.fault is RouteFault.NOT_OURS
    assert "iris, iris-stable or iris-canary" in someone_elses.message

    # Naming the one Service, or a track Service, makes it ours to weight.
    for ours in ("iris", "iris-stable", "iris-canary"):
        assert router.check_route("iris", "ns", user_route({"name": ours, "port": 80})) is None


def test_gateway_api_desired_route_carries_the_weight_on_the_track_services():
    router = router_for(GATEWAY)
    # Given the user's route pointing at the one Service, when the step asks for 30%:
    desired = router.desired_route("iris", user_route({"name": "iris", "port": 80}), 30)
    # then our backendRef became the two weighted track refs, on the track Services' port,
    assert desired is not None
    assert weights(desired) == [("iris-stable", 70, TRACK_SERVICE_PORT), ("iris-canary", 30, TRACK_SERVICE_PORT)]
    # the parents and the resourceVersion it was read at are kept (a concurrent change fails the write),
    assert desired["spec"]["parentRefs"] == [{"name": "gw"}]
    assert desired["metadata"]["resourceVersion"] == "11"
    # and writing the same weight again is nothing to write.
    assert router.desired_route("iris", desired, 30) is None


def test_gateway_api_leaves_other_backends_of_the_rule_alone():
    router = router_for(GATEWAY)
    route = user_route({"name": "legacy", "port": 8000, "weight": 5}, {"name": "iris", "port": 80})
    desired = router.desired_route("iris", route, 100)
    assert desired is not None
    assert weights(desired) == [("legacy", 5, 8000), ("iris-stable", 0, 80), ("iris-canary", 100, 80)]


@given(weight=st.integers(0, 100), ready_canary=st.integers(1, 10))
def test_gateway_api_observes_the_weight_its_desired_route_carries(weight: int, ready_canary: int):
    router = router_for(GATEWAY)
    desired = router.desired_route("iris", user_route({"name": "iris", "port": 80}), weight)
    assert desired is not None
    assert route_weight(desired, "iris") == weight
    assert router.observed_weight("iris", TrafficView(3, ready_canary, desired)) == weight
    assert router.observed_weight("iris", TrafficView(3, 0, desired)) == 0  # no ready canary: nothing carried


@given(weight=st.integers(-50, 200))
def test_gateway_api_weights_are_percentages_whatever_it_is_asked(weight: int):
    desired = router_for(GATEWAY).desired_route("iris", user_route({"name": "iris", "port": 80}), weight)
    assert desired is not None
    (_, stable, _), (_, canary, _) = weights(desired)
    assert stable + canary == 100 and 0 <= canary <= 100


def test_gateway_api_without_a_route_name_writes_nothing():
    # The API requires httpRoute under GatewayAPI; a router built without one still does no harm.
    router = GatewayAPI()
    assert router.route_ref() is None
    assert router.track_services("rev-a", "rev-b") == ()
    assert router.check_route("iris", "ns", None) is None
