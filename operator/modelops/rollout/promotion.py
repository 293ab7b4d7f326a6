"""Promotion and undo: the canary to full strength, the switch that makes it stable, and the bake
window in which the replaced revision is kept for a quick undo. Called by `steps` (last step done),
`canary` (an undo goes straight here) and `machine.next_state` (the bake window, every tick)."""

from __future__ import annotations

from datetime import timedelta

from modelops.api.durations import parse_duration
from modelops.api.status import PreviousStatus, TrackStatus
from modelops.api.timefmt import format_time, parse_time
from modelops.rollout.actions import SetRouting
from modelops.rollout.context import READINESS_POLL_SECONDS, Tick, display_name, report_pod_problem
from modelops.rollout.events import EVENT_PREVIOUS_RELEASED, EVENT_PROMOTED, EVENT_PROMOTING, EVENT_ROLLED_BACK
from modelops.rollout.stable import steady


def promote(tick: Tick) -> None:
    """Canary to full strength, route all to it, then it becomes stable and the old stable goes."""
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None
    assert canary is not None and canary.revision is not None
    revision = canary.revision
    was = tick.old.canary
    already = (
        was is not None and was.revision == revision and not was.aborted
        and was.step_index >= len(tick.spec.rollout.steps)
    )
    if not already and not canary.rollback:
        tick.event(EVENT_PROMOTING, f"promoting canary {revision}: scaling to {tick.total} pods")
    tick.canary = canary = canary.model_copy(update={"weight": 100, "paused": False})
    tick.ensure(stable.revision, tick.total, "stable", stable.model)
    tick.ensure(revision, tick.total, "canary", canary.model)
    ready = tick.observed.ready(revision) >= tick.total
    tick.routing = SetRouting(stable.revision, revision, 100 if ready else tick.observed_weight)
    if not ready:
        tick.hold = f"waiting for {tick.total} canary pods to be ready"
        report_pod_problem(tick, revision)
        tick.wait(READINESS_POLL_SECONDS)
        return
    if tick.router.weighted_route and tick.observed_weight != 100:
        tick.wait(READINESS_POLL_SECONDS)
        return
    _switch(tick)


def _switch(tick: Tick) -> None:
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None
    assert canary is not None and canary.revision is not None
    bake = parse_duration(tick.spec.rollout.bake_time)
    name = display_name(tick, canary.model_version, canary.revision)
    if canary.rollback:
        tick.record(stable.revision, stable.model_version, stable.model, "Rolledback", f"undo to {canary.revision}")
        tick.event(EVENT_ROLLED_BACK, f"rolled back to {name}; {stable.revision} let go")
        tick.previous = None
    else:
        tick.record(canary.revision, canary.model_version, canary.model, "Promoted", "all steps done")
        if bake > timedelta(0):
            until = format_time(tick.now + bake)
            tick.previous = PreviousStatus(revision=stable.revision, model_version=stable.model_version,
                                           model=stable.model, until=until)
            tick.event(EVENT_PROMOTED, f"{name} promoted to stable; {stable.revision} kept until {until} for a "
                       "quick undo")
        else:
            tick.previous = None
            tick.event(EVENT_PROMOTED, f"{name} promoted to stable; {stable.revision} let go")
    # The canary is at full strength (checked by `promote`): it is deployed from this moment.
    tick.stable = TrackStatus(revision=canary.revision, model_version=canary.model_version, model=canary.model,
                              deployed_at=tick.now_text)
    tick.canary = None
    steady(tick)


def bake(tick: Tick) -> None:
    """The bake window: keep the replaced revision for a quick undo until `previous.until`, then let it go."""
    previous = tick.previous
    if previous is None:
        return
    if tick.stable is not None and previous.revision == tick.stable.revision:
        tick.previous = None
        return
    remaining = (parse_time(previous.until) - tick.now).total_seconds()
    if remaining <= 0:
        tick.event(EVENT_PREVIOUS_RELEASED, f"bake time over: {previous.revision} let go")
        tick.previous = None
        return
    if tick.canary is not None and tick.canary.revision == previous.revision:
        return  # an undo is bringing it back
    # Under ReplicaRatio the one Service would send traffic to running old pods: keep the
    # Deployment at 0. Under GatewayAPI it idles at full strength behind the canary Service at weight 0.
    replicas = tick.total if tick.router.weighted_route else 0
    tick.ensure(previous.revision, replicas, "previous", previous.model)
    tick.wait(remaining)
