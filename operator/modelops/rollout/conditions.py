"""Status conditions: types, reason constants and the one helper that sets a condition.

kstatus-compatible: `Reconciling` (True while the operator is still moving towards spec) and
`Stalled` (True when it cannot get there without help) are the abnormal-true pair that kstatus,
Flux and Argo CD read; `Ready`, `Progressing` and `Degraded` are for people. Called by
`modelops.rollout.machine` at the end of every tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from modelops.api.models import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CONDITION_ORDER = (READY, RECONCILING, STALLED, PROGRESSING, DEGRADED)

# Reasons (CamelCase, stable: tools and alerts match on them).
REASON_HEALTHY = "Healthy"
REASON_DEPLOYING = "Deploying"
REASON_STABLE_UNAVAILABLE = "StableUnavailable"
REASON_CANARY_PROGRESSING = "CanaryProgressing"
REASON_PAUSED = "Paused"
REASON_ANALYSING = "Analysing"
REASON_ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
REASON_INCONCLUSIVE_LIMIT = "InconclusiveLimitExceeded"
REASON_NO_METRICS = "NoAnalysisMetrics"
REASON_PROMOTING = "Promoting"
REASON_ROLLING_BACK = "RollingBack"
REASON_ROLLOUT_COMPLETE = "RolloutComplete"
REASON_ANALYSIS_FAILED = "AnalysisFailed"
REASON_ABORTED_BY_USER = "AbortedByUser"
REASON_RECONCILED = "Reconciled"
REASON_AS_EXPECTED = "AsExpected"

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
