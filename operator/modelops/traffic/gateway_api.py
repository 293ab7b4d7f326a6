"""GatewayAPI router: the canary weight as backendRef weights of the user's HTTPRoute (exact weights).

The controller owns two track Services, `<mdep>-stable` and `<mdep>-canary`; the HTTPRoute is the
user's. This module rewrites only the backendRefs that name our Services into the two weighted refs
(`100 - w` and `w`), leaving every other rule and backend alone, and reads the weight back from a
route. Pure: the controller reads the route from its cache (`GatewayAPI.route_ref`), ensures the track
Services (`track_services`), checks the route (`check_route`), and writes `desired_route` back with the
resourceVersion it read.

Pods: the route sets the share exactly, so the canary needs the capacity for its share of the load
at the same load per pod as stable (`GatewayAPI.plan`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelops.api.rollout_spec import Traffic
from modelops.traffic.router import (
    TRACK_CANARY,
    TRACK_STABLE,
    ReplicaPlan,
    RouteFault,
    RouteProblem,
    RouteRef,
    TrackService,
    TrafficView,
)

ROUTE_KIND = "HTTPRoute"
STABLE_SUFFIX = f"-{TRACK_STABLE}"
CANARY_SUFFIX = f"-{TRACK_CANARY}"
# The track Services' `http` port (`modelops.resources.builders`), the port of our backendRefs.
TRACK_SERVICE_PORT = 80


def stable_service(mdep: str) -> str:
    return f"{mdep}{STABLE_SUFFIX}"


def canary_service(mdep: str) -> str:
    return f"{mdep}{CANARY_SUFFIX}"


def backend_refs(mdep: str, weight: int, port: int) -> list[dict[str, Any]]:
    """The two weighted backendRefs for a canary weight in percent."""
    w = min(max(weight, 0), 100)
    return [
        {"group": "", "kind": "Service", "name": stable_service(mdep), "port": port, "weight": 100 - w},
        {"group": "", "kind": "Service", "name": canary_service(mdep), "port": port, "weight": w},
    ]


def _is_ours(ref: Mapping[str, Any], mdep: str) -> bool:
    return (ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")
            and ref.get("name") in (mdep, stable_service(mdep), canary_service(mdep)))


def routes_us(route: Mapping[str, Any], mdep: str) -> bool:
    """Whether any rule of the route has a backendRef naming our Services (`<mdep>`, `-stable`, `-canary`)."""
    rules = (route.get("spec") or {}).get("rules") or []
    return any(_is_ours(ref, mdep) for rule in rules for ref in rule.get("backendRefs") or [])


def route_with_weights(route: Mapping[str, Any], mdep: str, weight: int, port: int) -> dict[str, Any] | None:
    """The route with `weight`% to the canary in every rule that names our Services; None if unchanged.

    Only the backendRefs naming `<mdep>`, `<mdep>-stable` or `<mdep>-canary` are rewritten (into the
    two weighted track refs, where the first of them stood); other rules, other backends, matches and
    filters are the user's and stay as they are. metadata.resourceVersion is kept, so writing the
    result back fails on a concurrent change instead of undoing it.
    """
    spec = dict(route.get("spec") or {})
    new_rules = []
    for rule in spec.get("rules") or []:
        refs = list(rule.get("backendRefs") or [])
        positions = [i for i, ref in enumerate(refs) if _is_ours(ref, mdep)]
        if not positions:
            new_rules.append(rule)
            continue
        others = [ref for ref in refs if not _is_ours(ref, mdep)]
        at = positions[0]
        before = sum(1 for i in range(at) if not _is_ours(refs[i], mdep))
        new_refs = [*others[:before], *backend_refs(mdep, weight, port), *others[before:]]
        new_rules.append({**dict(rule), "backendRefs": new_refs})
    if new_rules == list(spec.get("rules") or []):
        return None
    return {**dict(route), "spec": {**spec, "rules": new_rules}}


def route_weight(route: Mapping[str, Any], mdep: str) -> int | None:
    """The canary weight the route carries now, in percent of the first of our rules' two tracks.

    None when the route does not (yet) point at our track Services.
    """
    rules = [rule for rule in (route.get("spec") or {}).get("rules") or []
             if any(_is_ours(ref, mdep) for ref in rule.get("backendRefs") or [])]
    if not rules:
        return None
    refs = rules[0].get("backendRefs") or []
    weights = {ref.get("name"): int(ref.get("weight", 1)) for ref in refs}
    stable = weights.get(stable_service(mdep))
    canary = weights.get(canary_service(mdep))
    if stable is None and canary is None:
        return None
    total = (stable or 0) + (canary or 0)
    if total == 0:
        return 0
    return (100 * (canary or 0)) // total


@dataclass(frozen=True)
class GatewayAPI:
    """Weight = HTTPRoute backendRef weights over the two track Services."""

    http_route: str | None = None  # spec.rollout.traffic.httpRoute.name (required by the API)
    name = "GatewayAPI"
    weighted_route = True

    @classmethod
    def from_traffic(cls, traffic: Traffic) -> GatewayAPI:
        return cls(http_route=traffic.http_route.name if traffic.http_route is not None else None)

    def plan(self, total: int, weight: int) -> ReplicaPlan:
        # ceil(total * weight), at least one pod while weight > 0, never more than total.
        stable = max(total, 0)
        canary = 0 if weight <= 0 or stable == 0 else max(1, math.ceil(stable * min(weight, 100) / 100))
        return ReplicaPlan(stable=stable, canary=canary, share=min(max(weight, 0), 100), wanted=canary)

    def observed_weight(self, mdep: str, view: TrafficView) -> int:
        if view.ready_canary <= 0 or view.route is None:
            return 0  # a weight onto no ready pods carries nothing (the gateway answers 503)
        return route_weight(view.route, mdep) or 0

    def route_ref(self) -> RouteRef | None:
        return RouteRef(ROUTE_KIND, self.http_route) if self.http_route is not None else None

    def track_services(self, stable_revision: str, canary_revision: str | None) -> tuple[TrackService, ...]:
        if self.http_route is None:
            return ()
        # Before a canary exists its Service selects stable too, so a weight on it never hits no pods.
        return (TrackService(TRACK_STABLE, stable_revision),
                TrackService(TRACK_CANARY, canary_revision or stable_revision))

    def check_route(self, mdep: str, namespace: str, route: Mapping[str, Any] | None) -> RouteProblem | None:
        if self.http_route is None:
            return None
        if route is None:
            return RouteProblem(RouteFault.MISSING, f"HTTPRoute {self.http_route} not found in {namespace}")
        if not routes_us(route, mdep):
            return RouteProblem(RouteFault.NOT_OURS, (
                f"HTTPRoute {self.http_route} has no backendRef naming {mdep}, {stable_service(mdep)} or "
                f"{canary_service(mdep)}: nothing of it is ours to weight"))
        return None

    def desired_route(self, mdep: str, route: Mapping[str, Any], weight: int) -> dict[str, Any] | None:
        return route_with_weights(route, mdep, weight, TRACK_SERVICE_PORT)
