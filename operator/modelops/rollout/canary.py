"""A canary from start to its steps: started (or restarted when superseded), measured, held when
aborted, sent to `promotion` when it is an undo. Called by `machine.next_state` when spec (or an undo
pin) asks for a revision other than stable's."""

from __future__ import annotations

from modelops.api.status import CanaryStatus
from modelops.rollout.abort import hold_aborted
from modelops.rollout.analysis_runs import record_measurement, start_analysis_clock
from modelops.rollout.context import Target, Tick, display_name
from modelops.rollout.events import (
    EVENT_CANARY_STARTED,
    EVENT_CANARY_SUPERSEDED,
    EVENT_PREVIOUS_RELEASED,
    EVENT_ROLLBACK_STARTED,
)
from modelops.rollout.promotion import promote
from modelops.rollout.steps import advance_steps


def run_canary(tick: Tick, target: Target) -> None:
    """One tick of a canary towards `target`: start it, hold it aborted, or measure and advance its steps."""
    if tick.canary is None or tick.canary.revision != target.revision:
        _start_canary(tick, target)
    canary = tick.canary
    assert canary is not None
    if canary.aborted:
        hold_aborted(tick)
        return
    if canary.rollback:
        promote(tick)
        return
    start_analysis_clock(tick)
    record_measurement(tick)
    if tick.canary is not None and tick.canary.aborted:
        hold_aborted(tick)
        return
    advance_steps(tick)


def _start_canary(tick: Tick, target: Target) -> None:
    old = tick.canary
    if old is not None and old.revision is not None and not old.aborted:
        tick.record(old.revision, old.model_version, old.model, "Superseded", f"superseded by {target.revision}")
        tick.event(EVENT_CANARY_SUPERSEDED, f"canary {old.revision} superseded by {target.revision}: restarting "
                   "at step 1")
    if tick.previous is not None and tick.previous.revision != target.revision:
        # A new rollout ends the bake window: the canary track is needed for the new revision.
        tick.event(EVENT_PREVIOUS_RELEASED, f"{tick.previous.revision} let go: a new rollout started")
        tick.previous = None
    rollback = tick.pinned is not None and tick.pinned.revision == target.revision
    tick.canary = CanaryStatus(
        revision=target.revision,
        model_version=target.model_version,
        model=target.model,
        step_index=0,
        step_started_at=tick.now_text,
        rollback=rollback,
    )
    tick.analysis = None
    stable = tick.stable
    assert stable is not None
    name = display_name(tick, target.model_version, target.revision)
    if rollback:
        tick.event(EVENT_ROLLBACK_STARTED, f"rolling back to {name}: straight to full strength, then switched")
    else:
        tick.event(EVENT_CANARY_STARTED, f"canary {name} started next to stable v{stable.model_version} "
                   f"({stable.revision})")
