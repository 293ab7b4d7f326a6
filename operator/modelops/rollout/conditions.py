"""The rollout's condition reasons, and the conditions it derives from status at the end of a tick.

Condition types and the helper that keeps `lastTransitionTime` are shared words
(`modelops.api.conditions`); the reasons here are the rollout's own (CamelCase, stable: tools and
alerts match on them; docs/events.md lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.api import conditions as cond
from modelops.api.status import ModelDeploymentStatus

if TYPE_CHECKING:
    from modelops.rollout.context import Tick

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
REASON_PODS_FAILING = "PodsFailing"


def derive_conditions(tick: Tick, status: ModelDeploymentStatus, phase: str, message: str) -> ModelDeploymentStatus:
    """`status` with its conditions set from the tick's outcome, its phase and message (kstatus-compatible)."""
    gen = tick.observed.generation
    now = tick.now_text
    canary, stable = status.canary, status.stable
    aborted = canary is not None and canary.aborted
    rolling = canary is not None and not aborted
    stable_full = stable is not None and stable.revision is not None and stable.ready_replicas >= tick.total
    conditions = list(status.conditions)

    def put(type_: str, state: cond.Status, reason: str, text: str) -> None:
        nonlocal conditions
        conditions = cond.set_condition(conditions, type_, state, reason, text, now, gen)

    if aborted:
        old_degraded = cond.find_condition(status.conditions, cond.DEGRADED)
        code = tick.abort_reason_code or (
            old_degraded.reason if old_degraded is not None and old_degraded.status == "True"
            else REASON_ANALYSIS_FAILED
        )
        put(cond.READY, "False", code, message)
        put(cond.RECONCILING, "False", code, message)
        put(cond.STALLED, "True", code, message)
        put(cond.PROGRESSING, "False", code, message)
        put(cond.DEGRADED, "True", code, message)
        return status.model_copy(update={"conditions": conditions})
    progress_reason = {
        "Paused": REASON_PAUSED,
        "Analysing": REASON_ANALYSING,
        "Inconclusive": REASON_ANALYSIS_INCONCLUSIVE,
        "Promoting": REASON_PROMOTING,
        "RollingBack": REASON_ROLLING_BACK,
        "Deploying": REASON_DEPLOYING,
    }.get(phase, REASON_CANARY_PROGRESSING)
    if rolling or not stable_full:
        unavailable = not rolling and stable is not None and stable.deployed_at is not None
        reason = REASON_STABLE_UNAVAILABLE if unavailable else progress_reason
        put(cond.READY, "False", reason, message)
        put(cond.RECONCILING, "True", reason, message)
        put(cond.PROGRESSING, "True", reason, message)
        put(cond.DEGRADED, "True" if unavailable else "False",
            reason if unavailable else REASON_AS_EXPECTED, message if unavailable else "")
    else:
        put(cond.READY, "True", REASON_HEALTHY, message)
        put(cond.RECONCILING, "False", REASON_RECONCILED, "")
        put(cond.PROGRESSING, "True", REASON_ROLLOUT_COMPLETE, message)
        put(cond.DEGRADED, "False", REASON_AS_EXPECTED, "")
    if tick.stalled is not None:
        # kstatus (Flux) reads Reconciling first: a stalled object must not also say it is getting there.
        put(cond.RECONCILING, "False", tick.stalled[0], tick.stalled[1])
        put(cond.STALLED, "True", tick.stalled[0], tick.stalled[1])
    else:
        put(cond.STALLED, "False", REASON_AS_EXPECTED, "")
    return status.model_copy(update={"conditions": conditions})
