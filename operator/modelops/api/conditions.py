"""Status conditions: the types and the one helper that sets a condition.

kstatus-compatible: `Reconciling` (True while the operator is still moving towards spec) and
`Stalled` (True when it cannot get there without help) are the abnormal-true pair that kstatus,
Flux and Argo CD read; `Ready`, `Progressing` and `Degraded` are for people. Used by the rollout
machine (`modelops.rollout.conditions` derives them every tick), the retraining loop (its own
condition types) and the controller (reconcile errors). Reasons belong to whoever sets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from modelops.api.status import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CONDITION_ORDER = (READY, RECONCILING, STALLED, PROGRESSING, DEGRADED)

Status = Literal["True", "False", "Unknown"]


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Conditions with `type_` set; `lastTransitionTime` moves only when the status itself changes."""
    old = find_condition(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:2048],
        last_transition_time=since,
        observed_generation=generation,
    )
    rest = [c for c in conditions if c.type != type_]
    merged = [*rest, new]
    # A fixed order keeps status byte-stable between ticks (no spurious patches).
    rank = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(merged, key=lambda c: (rank.get(c.type, len(rank)), c.type))
