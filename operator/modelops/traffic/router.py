"""The one small router interface the state machine and controller use, and the factory choosing it.

A router answers two questions: how many pods each track runs for a canary weight (`plan`), and which
weight it observably carries now (`observed_weight`, from ready pods and, for GatewayAPI, the route).
`gateway_api.route_with_weights` is the extra write the GatewayAPI router needs; ReplicaRatio needs none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelops.api.rollout_spec import Traffic
from modelops.traffic import gateway_api, replica_ratio
from modelops.traffic.replica_ratio import ReplicaPlan

REPLICA_RATIO = "ReplicaRatio"
GATEWAY_API = "GatewayAPI"


@dataclass(frozen=True)
class TrafficView:
    """What the controller observed of the traffic path this tick."""

    ready_stable: int
    ready_canary: int
    route: Mapping[str, Any] | None = None  # the HTTPRoute as read, GatewayAPI only


class Router(Protocol):
    name: str
    # Whether the route weight is a separate write that must follow the canary pods being ready.
    weighted_route: bool

    def plan(self, total: int, weight: int) -> ReplicaPlan: ...

    def observed_weight(self, mdep: str, view: TrafficView) -> int: ...


@dataclass(frozen=True)
class ReplicaRatioRouter:
    """Weight = share of ready pods behind the one Service."""

    max_surge: int | None = None  # spec.rollout.traffic.maxSurge
    name = REPLICA_RATIO
    weighted_route = False

    def plan(self, total: int, weight: int) -> ReplicaPlan:
        return replica_ratio.replica_plan(total, weight, self.max_surge)

    def observed_weight(self, mdep: str, view: TrafficView) -> int:
        return replica_ratio.observed_weight(view.ready_stable, view.ready_canary)


class GatewayAPIRouter:
    """Weight = HTTPRoute backendRef weights over the two track Services."""

    name = GATEWAY_API
    weighted_route = True

    def plan(self, total: int, weight: int) -> ReplicaPlan:
        # The route sets the share exactly; the canary needs the capacity for it at the same load per
        # pod as stable: ceil(total * weight), at least one pod while weight > 0. Never more than total.
        stable = max(total, 0)
        canary = 0 if weight <= 0 or stable == 0 else max(1, math.ceil(stable * min(weight, 100) / 100))
        return ReplicaPlan(stable=stable, canary=canary, share=min(max(weight, 0), 100), wanted=canary)

    def observed_weight(self, mdep: str, view: TrafficView) -> int:
        if view.ready_canary <= 0 or view.route is None:
            return 0  # a weight onto no ready pods carries nothing (the gateway answers 503)
        return gateway_api.route_weight(view.route, mdep) or 0


def router_for(traffic: Traffic) -> Router:
    """The router named by spec.rollout.traffic."""
    if traffic.router == GATEWAY_API:
        return GatewayAPIRouter()
    return ReplicaRatioRouter(max_surge=traffic.max_surge)
