"""The router interface alone (Flagger's `pkg/router/router.go`): what every traffic router answers, and
the plain-data types it answers with. It imports no router; `modelops.traffic.factory.router_for`
chooses one from spec.rollout.traffic.

A router owns everything that differs between ways of moving traffic, so neither the state machine
(`modelops.rollout`) nor the controller ever branches on the router's kind:
- `plan`: how many pods each track runs for a canary weight;
- `observed_weight`: which weight it observably carries now (from ready pods and the route as read);
- `route_ref`: the object it writes weights into (the controller reads it from its cache), or None;
- `track_services`: the per-track Services it routes to (the controller builds and ensures them);
- `check_route`: whether that object exists and names our Services (a problem, or None);
- `desired_route`: that object with the weight set, as plain data (None: nothing to write).
All of it is pure: observations in, desired objects out; `modelops.controller.reconcile` does the I/O.

Adding a router:
1. one module in `modelops/traffic/` with a frozen dataclass implementing `Router` and a
   `from_traffic(traffic)` constructor, importing from here (never from the factory or the controller);
2. its name in `modelops.api.rollout_spec.Traffic.router` (the enum) and in `factory.ROUTERS`;
3. the RBAC for the object it writes (`manifests/`, `charts/`). A route of a kind the operator does
   not watch yet (only HTTPRoute today) also needs its watch in `controller/kube.py` and `cache.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

TRACK_STABLE = "stable"
TRACK_CANARY = "canary"


@dataclass(frozen=True)
class ReplicaPlan:
    """How many pods each track should run for a weight, and the share that carries."""

    stable: int
    canary: int
    share: int  # percent of requests the canary carries once these pods are ready
    wanted: int | None = None  # canary pods the weight needs without the cap (None: no count suffices)
    max_surge: int | None = None  # the cap on canary pods that applied

    @property
    def surge_limited(self) -> bool:
        """Whether maxSurge kept the canary below the pods its weight needs."""
        return self.max_surge is not None and (self.wanted is None or self.wanted > self.canary)


@dataclass(frozen=True)
class TrafficView:
    """What the controller observed of the traffic path this tick."""

    ready_stable: int
    ready_canary: int
    route: Mapping[str, Any] | None = None  # the router's route object as read (`route_ref`), if any


@dataclass(frozen=True)
class RouteRef:
    """The object a router writes its weights into, in the ModelDeployment's namespace."""

    kind: str  # the cache's store of that kind holds it (`Cache.stores()`)
    name: str


@dataclass(frozen=True)
class TrackService:
    """A Service over one track (`<mdep>-<track>`, selecting `revision`) the router sends traffic to."""

    track: str  # TRACK_STABLE or TRACK_CANARY
    revision: str


class RouteFault(Enum):
    """What is wrong with a route; the controller turns each into a condition reason of its own."""

    MISSING = "missing"
    NOT_OURS = "not ours"  # it names none of our Services: nothing of it is ours to weight


@dataclass(frozen=True)
class RouteProblem:
    fault: RouteFault
    message: str


class Router(Protocol):
    name: str  # the value of spec.rollout.traffic.router
    # Whether the route weight is a separate write that must follow the canary pods being ready.
    weighted_route: bool

    def plan(self, total: int, weight: int) -> ReplicaPlan: ...

    def observed_weight(self, mdep: str, view: TrafficView) -> int: ...

    def route_ref(self) -> RouteRef | None:
        """The route to read and write; None when the router carries the weight without one."""
        ...

    def track_services(self, stable_revision: str, canary_revision: str | None) -> tuple[TrackService, ...]:
        """The track Services to ensure before the route is written (none: the one Service suffices)."""
        ...

    def check_route(self, mdep: str, namespace: str, route: Mapping[str, Any] | None) -> RouteProblem | None:
        """Why the route (as read; None: not found) cannot carry our weights, or None when it can."""
        ...

    def desired_route(self, mdep: str, route: Mapping[str, Any], weight: int) -> dict[str, Any] | None:
        """The route with `weight`% to the canary, keeping its resourceVersion; None when unchanged."""
        ...
