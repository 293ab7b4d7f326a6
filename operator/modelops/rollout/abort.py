"""Aborting a canary (analysis failed, or `kubectl modelops abort`) and holding it aborted.

Called from the analysis runs, the commands and `canary.run_canary`: weight 0 at once, the stable
track back at full strength before the canary shrinks.
"""

from __future__ import annotations

from modelops.rollout.actions import SetRouting
from modelops.rollout.context import READINESS_POLL_SECONDS, Tick
from modelops.rollout.events import EVENT_ABORTED


def abort(tick: Tick, reason: str, code: str) -> None:
    """Abort the running canary: weight 0, recorded in history, announced; `code` is the conditions' reason."""
    canary = tick.canary
    assert canary is not None and canary.revision is not None
    tick.canary = canary.model_copy(update={"aborted": True, "abort_reason": reason[:2048], "weight": 0,
                                            "paused": False})
    tick.abort_reason_code = code
    tick.record(canary.revision, canary.model_version, canary.model, "Aborted", reason)
    tick.event(EVENT_ABORTED, f"canary {canary.revision} aborted, weight 0: {reason}", warning=True)


def hold_aborted(tick: Tick) -> None:
    """Weight 0 at once; the canary shrinks only once stable is back at full strength."""
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None
    assert canary is not None and canary.revision is not None
    tick.ensure(stable.revision, tick.total, "stable", stable.model)
    tick.routing = SetRouting(stable.revision, canary.revision, 0)
    existing = tick.observed.deployment(canary.revision)
    if existing is not None:
        stable_full = tick.observed.ready(stable.revision) >= tick.total
        tick.ensure(canary.revision, 0 if stable_full else existing.replicas, "canary", canary.model)
        if not stable_full:
            tick.wait(READINESS_POLL_SECONDS)
