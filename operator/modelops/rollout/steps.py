"""The canary's steps: setWeight, pause and analysis, in order, and the routing that follows them.

Called by `canary.run_canary` for a running canary; each step is done or holds the tick (`tick.hold`
says why). The arithmetic of pods per weight is the router's (`modelops.traffic`).
"""

from __future__ import annotations

import math

from modelops.api.rollout_spec import Step
from modelops.rollout.actions import SetRouting
from modelops.rollout.analysis_runs import analysis_allows_moving_on, ask_for_next_run
from modelops.rollout.conditions import REASON_NO_METRICS
from modelops.rollout.context import READINESS_POLL_SECONDS, Tick, report_pod_problem
from modelops.rollout.events import EVENT_STEP_COMPLETED
from modelops.rollout.phase import describe_step, pause_remaining
from modelops.rollout.promotion import promote


def weight_at(steps: list[Step], index: int) -> int:
    """The weight in force at step `index`: the last setWeight at or before it."""
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def advance_steps(tick: Tick) -> None:
    """Take the canary through as many steps as are done this tick, then route it (or promote it)."""
    steps = tick.spec.rollout.steps
    while True:
        canary = tick.canary
        assert canary is not None
        if canary.step_index >= len(steps):
            promote(tick)
            return
        step = steps[canary.step_index]
        weight = weight_at(steps, canary.step_index)
        tick.canary = canary = canary.model_copy(update={"weight": weight})
        if not _step_done(tick, step, weight):
            break
        if not analysis_allows_moving_on(tick, last=canary.step_index == len(steps) - 1):
            break
        tick.event(EVENT_STEP_COMPLETED, f"step {canary.step_index + 1}/{len(steps)} {describe_step(step)} done"
                   f" (weight {weight}%, observed {tick.observed_weight}%)")
        tick.canary = canary.model_copy(
            update={"step_index": canary.step_index + 1, "step_started_at": tick.now_text,
                    "analysis_step_successes": 0}
        )
    _route_canary(tick, steps)
    ask_for_next_run(tick)


def _canary_pods_ready(tick: Tick, weight: int) -> bool:
    canary = tick.canary
    assert canary is not None
    needed = tick.router.plan(tick.total, weight).canary
    return tick.observed.ready(canary.revision) >= needed


def _step_done(tick: Tick, step: Step, weight: int) -> bool:
    canary = tick.canary
    assert canary is not None
    if canary.paused:
        tick.hold = "paused by user"
        return False
    if step.set_weight is not None:
        needed = tick.router.plan(tick.total, weight).canary
        ready = tick.observed.ready(canary.revision)
        if ready < needed:
            tick.hold = f"waiting for canary pods: {ready}/{needed} ready"
            report_pod_problem(tick, canary.revision)
            tick.wait(READINESS_POLL_SECONDS)
            return False
        if tick.router.weighted_route and tick.observed_weight != weight:
            tick.hold = f"waiting for the route to carry {weight}% (now {tick.observed_weight}%)"
            tick.wait(READINESS_POLL_SECONDS)
            return False
        return True
    if step.pause is not None:
        remaining = pause_remaining(step, canary.step_started_at, tick.now)
        if remaining is None:
            tick.hold = "paused until promoted"
            return False
        if remaining > 0:
            tick.hold = f"pause, {math.ceil(remaining)}s left"
            tick.wait(remaining)
            return False
        return True
    if step.analysis is not None:
        if not tick.spec.rollout.analysis.effective_metrics():
            tick.hold = "analysis step, but spec.rollout.analysis is disabled: promote or enable analysis"
            tick.stalled = (REASON_NO_METRICS, tick.hold)
            return False
        if canary.analysis_step_successes < step.analysis.count:
            tick.hold = f"analysis: {canary.analysis_step_successes}/{step.analysis.count} successful runs"
            return False
        return True
    return True


def _route_canary(tick: Tick, steps: list[Step]) -> None:
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None and canary is not None
    assert canary.revision is not None
    weight = canary.weight
    plan = tick.router.plan(tick.total, weight)
    # The route moves to a step's weight only once the pods that carry it are ready.
    current = steps[canary.step_index] if canary.step_index < len(steps) else None
    route_weight = weight
    if current is not None and current.set_weight is not None and not _canary_pods_ready(tick, weight):
        route_weight = weight_at(steps, canary.step_index - 1) if canary.step_index > 0 else 0
    if tick.canary is not None and canary.paused:
        route_weight = min(route_weight, max(tick.observed_weight, 0))
    tick.ensure(stable.revision, plan.stable, "stable", stable.model)
    tick.ensure(canary.revision, plan.canary, "canary", canary.model)
    tick.routing = SetRouting(stable.revision, canary.revision, route_weight)
    if plan.surge_limited:
        needs = (f"needs {plan.wanted} canary pods" if plan.wanted is not None
                 else "cannot be carried while stable keeps full strength (promotion does that)")
        tick.note = f"weight {weight}% {needs}; capped at maxSurge {plan.max_surge}: carrying {plan.share}%"
