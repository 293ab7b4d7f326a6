"""ReplicaRatio router: the canary weight as a share of ready pods behind one Service (no mesh needed).

The `ReplicaRatio` router (chosen by `traffic.factory.router_for`) is called by the rollout state
machine to size the canary, and by the controller to read the weight it observably carries; it has
no route, no track Services and nothing to write. Choice: the stable track keeps full
strength for the whole canary, so an abort is a weight of 0 at once (scale the canary to 0; stable
capacity never dipped). The canary share is then `canary / (canary + stable)`, so a weight `w` needs
`canary ~ stable * w / (100 - w)` pods: the canary gets the pod count whose share is the closest to
`w` that whole pods allow (at least one pod while `w > 0`, or it would never see a request).

Every canary pod is an extra pod, so their number is capped by `spec.rollout.traffic.maxSurge`
(default: as many as `spec.serving.replicas`, i.e. weights up to 50% are carried as asked and the
pods at most double). When the cap binds the canary carries less than the step's weight; status says
so (`ReplicaPlan.surge_limited`). The observed share is what status reports as `observedWeight`,
computed by `share_percent` both here (from ready pods) and in the plan (what the machine expects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modelops.api.rollout_spec import Traffic
from modelops.traffic.router import ReplicaPlan, RouteProblem, RouteRef, TrackService, TrafficView

__all__ = ["ReplicaPlan", "ReplicaRatio", "closest_canary", "observed_weight", "replica_plan", "share_percent"]


def share_percent(stable: int, canary: int) -> int:
    """The percent of requests `canary` of `stable + canary` equal pods carry, rounded to the nearest.

    Kept within 1..99 while both tracks have pods, so a canary is never shown at 0% or 100% while it
    shares the Service with stable pods.
    """
    stable, canary = max(stable, 0), max(canary, 0)
    if canary == 0:
        return 0
    if stable == 0:
        return 100
    nearest = int(Fraction(100 * canary, stable + canary) + Fraction(1, 2))
    return min(max(nearest, 1), 99)


def closest_canary(stable: int, weight: int) -> int | None:
    """The canary pod count (>= 1) whose share next to `stable` pods is closest to `weight` percent.

    Ties go to the smaller count. 0 when there is nothing to share (weight <= 0); None when no
    count is close enough because the weight needs the stable track gone (weight >= 100).
    """
    if weight <= 0:
        return 0
    if stable <= 0:
        return 1  # alone behind the Service: one pod carries everything
    if weight >= 100:
        return None
    ideal = Fraction(stable * weight, 100 - weight)
    candidates = {max(1, int(ideal)), max(1, int(ideal) + 1)}
    target = Fraction(weight, 100)

    def error(canary: int) -> tuple[Fraction, int]:
        return abs(Fraction(canary, canary + stable) - target), canary

    return min(candidates, key=error)


def replica_plan(total: int, weight: int, max_surge: int | None = None) -> ReplicaPlan:
    """Stable at full strength, canary sized for the weight and capped at `max_surge` extra pods.

    `max_surge` None means `total` (the pods at most double).
    """
    stable = max(total, 0)
    cap = stable if max_surge is None else max(max_surge, 0)
    wanted = closest_canary(stable, weight)
    if weight <= 0 or stable == 0:
        return ReplicaPlan(stable=stable, canary=0, share=0, wanted=0)  # nothing to share (or scaled to 0)
    canary = cap if wanted is None else min(wanted, cap)
    limited = wanted is None or wanted > cap
    return ReplicaPlan(stable=stable, canary=canary, share=share_percent(stable, canary), wanted=wanted,
                       max_surge=cap if limited else None)


def observed_weight(ready_stable: int, ready_canary: int) -> int:
    """The percent of requests the ready pods send to the canary now (`share_percent` of ready pods)."""
    return share_percent(ready_stable, ready_canary)


@dataclass(frozen=True)
class ReplicaRatio:
    """Weight = share of ready pods behind the one Service that selects both tracks."""

    max_surge: int | None = None  # spec.rollout.traffic.maxSurge
    name = "ReplicaRatio"
    weighted_route = False

    @classmethod
    def from_traffic(cls, traffic: Traffic) -> ReplicaRatio:
        return cls(max_surge=traffic.max_surge)

    def plan(self, total: int, weight: int) -> ReplicaPlan:
        return replica_plan(total, weight, self.max_surge)

    def observed_weight(self, mdep: str, view: TrafficView) -> int:
        return observed_weight(view.ready_stable, view.ready_canary)

    # The one Service over both tracks already carries the weight: no route, nothing to write.
    def route_ref(self) -> RouteRef | None:
        return None

    def track_services(self, stable_revision: str, canary_revision: str | None) -> tuple[TrackService, ...]:
        return ()

    def check_route(self, mdep: str, namespace: str, route: Mapping[str, Any] | None) -> RouteProblem | None:
        return None

    def desired_route(self, mdep: str, route: Mapping[str, Any], weight: int) -> dict[str, Any] | None:
        return None
