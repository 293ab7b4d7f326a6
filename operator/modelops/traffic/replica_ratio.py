"""ReplicaRatio router: the canary weight as a share of ready pods behind one Service (no mesh needed).

Called by the rollout state machine (to size the canary) and by the controller (to read the weight
the router observably carries). Choice: the stable track keeps full strength for the whole canary,
and the canary gets `ceil(total * weight / 100)` pods (at least one while weight > 0). So an abort is
a weight of 0 at once (scale the canary to 0; stable capacity never dipped), at the price of a coarse
share: the canary carries `canary / (canary + total)` of requests, e.g. 1 of 4 pods (25%) at
setWeight 10 with 3 replicas. The observed share, not the step's weight, is what status reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaPlan:
    """How many pods each track should run for a weight."""

    stable: int
    canary: int


def canary_replicas(total: int, weight: int) -> int:
    """Canary pods for `weight` percent of `total`: rounded up, at least 1 while weight > 0."""
    if weight <= 0 or total <= 0:
        return 0
    return max(1, math.ceil(total * min(weight, 100) / 100))


def replica_plan(total: int, weight: int) -> ReplicaPlan:
    """Stable at full strength, canary sized for the weight (see the module docstring)."""
    return ReplicaPlan(stable=max(total, 0), canary=canary_replicas(total, weight))


def observed_weight(ready_stable: int, ready_canary: int) -> int:
    """The percent of ready pods that run the canary (rounded down, so never overstated at 100)."""
    ready = max(ready_stable, 0) + max(ready_canary, 0)
    if ready == 0:
        return 0
    return (100 * max(ready_canary, 0)) // ready
