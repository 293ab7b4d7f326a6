"""The canary state machine: `next_state(spec, status, observed, now) -> Decision`, pure.

The controller calls it on every tick of a ModelDeployment (after `analysis_due` told it whether to
measure first) and carries out the returned actions, then writes the returned status. Everything the
machine needs to resume lives in status, so an operator restarted at any moment picks up the same
step with the same remaining pause (`stepStartedAt` + `now`).

One tick is a straight sequence, in the manner of Argo Rollouts' reconcileX steps:
commands -> which revision is wanted -> first deploy | steady | canary (measure, abort, advance
steps, promote) -> bake window -> orphan Deployments -> conditions, phase, message.

Traffic choices (see `modelops.traffic.replica_ratio`): stable keeps full strength until promotion,
so an abort is immediate; a step's weight is reached only once the canary pods that carry it are
ready (and, with GatewayAPI, the route says so). Promotion makes the canary Deployment the stable one
(no restarts): full strength first, then the switch, then the old stable goes (after the bake window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelops.analysis.judging import RunResult, judge_run, record_run
from modelops.api.models import (
    HISTORY_LIMIT,
    AnalysisStatus,
    CanaryStatus,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSource,
    PinnedRevision,
    PreviousStatus,
    Step,
    TrackStatus,
    parse_duration,
)
from modelops.rollout import conditions as cond
from modelops.rollout.actions import (
    EVENT_NORMAL,
    EVENT_WARNING,
    Action,
    Decision,
    DeleteDeployment,
    EmitEvent,
    EnsureDeployment,
    SetRouting,
    Track,
)
from modelops.rollout.legacy import upgrade_status
from modelops.rollout.observed import (
    COMMAND_ABORT,
    COMMAND_PAUSE,
    COMMAND_PROMOTE,
    COMMAND_RESUME,
    COMMAND_RETRY,
    COMMAND_UNDO,
    COMMANDS,
    PROMOTE_FULL,
    Command,
    Observed,
)
from modelops.rollout.phase import derive_phase, describe_step, pause_remaining
from modelops.rollout.timefmt import as_utc, format_time, parse_time
from modelops.traffic.router import Router, router_for

# While waiting on pods the controller is also woken by Deployment events; this is the fallback.
READINESS_POLL_SECONDS = 5.0
# Never ask for a tick sooner than this: a due-but-not-taken measurement must not spin the loop.
MIN_REQUEUE_SECONDS = 1.0

REASON_PODS_FAILING = "PodsFailing"

# Event reasons.
EVENT_DEPLOYING = "Deploying"
EVENT_DEPLOYED = "Deployed"
EVENT_REPLACED = "ReplacedUnready"
EVENT_CANARY_STARTED = "CanaryStarted"
EVENT_CANARY_SUPERSEDED = "CanarySuperseded"
EVENT_STEP_COMPLETED = "StepCompleted"
EVENT_PROMOTING = "Promoting"
EVENT_PROMOTED = "Promoted"
EVENT_ROLLBACK_STARTED = "RollbackStarted"
EVENT_ROLLED_BACK = "RolledBack"
EVENT_ABORTED = "RolloutAborted"
EVENT_ANALYSIS_SUCCESSFUL = "AnalysisSuccessful"
EVENT_ANALYSIS_FAILED = "AnalysisFailed"
EVENT_ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
EVENT_PREVIOUS_RELEASED = "PreviousReleased"
EVENT_PIN_RELEASED = "UndoPinReleased"
EVENT_COMMAND = "CommandHandled"
EVENT_COMMAND_IGNORED = "CommandIgnored"

ABORTED_BY_USER = "aborted by user"


@dataclass(frozen=True)
class _Target:
    revision: str
    model_version: str | None
    model: ModelSource | None


@dataclass
class _Tick:
    """The working state of one call of `next_state`; turned into a Decision at the end."""

    spec: ModelDeploymentSpec
    old: ModelDeploymentStatus
    observed: Observed
    now: datetime
    router: Router
    stable: TrackStatus | None
    canary: CanaryStatus | None
    analysis: AnalysisStatus | None
    previous: PreviousStatus | None
    pinned: PinnedRevision | None
    history: list[HistoryEntry]
    handled: dict[str, str]
    ensures: list[EnsureDeployment] = field(default_factory=list)
    routing: SetRouting | None = None
    events: list[EmitEvent] = field(default_factory=list)
    requeue: list[float] = field(default_factory=list)
    hold: str | None = None  # why the canary does not move on this tick
    stalled: tuple[str, str] | None = None  # (reason, message) when it cannot move on without help
    note: str | None = None  # what status should explain besides the phase (e.g. maxSurge binding)
    abort_reason_code: str | None = None

    @property
    def now_text(self) -> str:
        return format_time(self.now)

    @property
    def total(self) -> int:
        # HPA mode: the autoscaler's choice for the stable Deployment, read back, is the size.
        stable = self.observed.deployment(self.stable.revision) if self.stable is not None else None
        return self.spec.serving.total(stable.replicas if stable is not None else None)

    @property
    def observed_weight(self) -> int:
        """The share the router carries to this tick's canary.

        The controller measured it for the canary in the status it read (`Observed.weight_revision`);
        a canary started on this tick carries nothing yet (the weight read belonged to the one just
        replaced), and saying otherwise would make the status depend on whether the previous tick's
        actions were carried out.
        """
        measured_for = self.observed.weight_revision
        if measured_for is None and self.old.canary is not None:
            measured_for = self.old.canary.revision
        if self.canary is None or measured_for is None or self.canary.revision != measured_for:
            return 0
        return min(max(self.observed.observed_weight, 0), 100)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(EmitEvent(EVENT_WARNING if warning else EVENT_NORMAL, reason, message[:1024]))

    def record(self, revision: str, version: str | None, model: ModelSource | None, outcome: str,
               reason: str) -> None:
        entry = HistoryEntry.model_validate(
            {
                "revision": revision,
                "modelVersion": version or "",
                "outcome": outcome,
                "reason": reason[:1024],
                "at": self.now_text,
                "uri": model.uri if model else None,
                "sha256": model.sha256 if model else None,
                "format": model.format if model else None,
            }
        )
        self.history = [*self.history, entry][-HISTORY_LIMIT:]

    def ensure(self, revision: str, replicas: int, track: Track, model: ModelSource | None) -> None:
        self.ensures = [e for e in self.ensures if e.revision != revision]
        self.ensures.append(EnsureDeployment(revision, max(replicas, 0), track, model))

    def wait(self, seconds: float) -> None:
        self.requeue.append(max(seconds, MIN_REQUEUE_SECONDS))


# ------------------------------------------------------------------ public


def next_state(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observed: Observed, now: datetime
) -> Decision:
    """The status and actions that move this ModelDeployment one tick towards its spec."""
    status = upgrade_status(status)
    tick = _Tick(
        spec=spec,
        old=status,
        observed=observed,
        now=as_utc(now),
        router=router_for(spec.rollout.traffic),
        stable=status.stable,
        canary=status.canary,
        analysis=status.analysis,
        previous=status.previous,
        pinned=status.pinned,
        history=list(status.history),
        handled=dict(status.handled_commands),
    )
    _release_stale_pin(tick)
    _apply_commands(tick)
    target = _target(tick)
    if _deploys_directly(tick, target):
        _deploy_directly(tick, target)
    elif tick.stable is not None and tick.stable.revision == target.revision:
        _steady(tick)
    else:
        _canary(tick, target)
    _bake(tick)
    return _decide(tick)


def next_analysis_at(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> datetime | None:
    """When the next analysis run of the canary is due; None when no run is wanted."""
    canary, analysis = status.canary, status.analysis
    if not spec.rollout.analysis.effective_metrics() or canary is None or canary.aborted or canary.rollback:
        return None
    if canary.step_index >= len(spec.rollout.steps) or analysis is None or analysis.started_at is None:
        return None
    since = parse_time(analysis.last_run_at or analysis.started_at)
    return since + parse_duration(spec.rollout.analysis.interval)


def analysis_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> bool:
    """Whether the controller should measure the canary before this tick's `next_state`."""
    due = next_analysis_at(spec, status)
    return due is not None and as_utc(now) >= due


# ------------------------------------------------------------------ which revision


def _target(tick: _Tick) -> _Target:
    if tick.pinned is not None:
        return _Target(tick.pinned.revision, tick.pinned.model_version, tick.pinned.model)
    desired = tick.observed.desired
    return _Target(desired.revision, desired.model.version, desired.model)


def _release_stale_pin(tick: _Tick) -> None:
    # An undo holds until Git moves on: a new spec revision is a new decision by its owner.
    if tick.pinned is not None and tick.observed.desired.revision != tick.pinned.replaces:
        tick.event(EVENT_PIN_RELEASED, f"spec now asks for {tick.observed.desired.revision}; the undo "
                   f"pin on {tick.pinned.revision} is lifted")
        tick.pinned = None


def _deploys_directly(tick: _Tick, target: _Target) -> bool:
    """First deploy, or a stable that never got a ready pod: nothing to canary against."""
    if tick.stable is None or tick.stable.revision is None:
        return True
    return (
        tick.canary is None
        and tick.stable.revision != target.revision
        and tick.total > 0
        and tick.observed.ready(tick.stable.revision) == 0
        and tick.stable.deployed_at is None
    )


def _deploy_directly(tick: _Tick, target: _Target) -> None:
    old = tick.stable
    if old is None or old.revision != target.revision:
        if old is not None and old.revision is not None:
            tick.record(old.revision, old.model_version, old.model, "Superseded", f"replaced by {target.revision}"
                        " before any pod was ready")
            tick.event(EVENT_REPLACED, f"{old.revision} never had a ready pod; deploying {target.revision} "
                       "directly")
        tick.event(EVENT_DEPLOYING, f"deploying {_name(tick, target.model_version, target.revision)} as stable")
        tick.stable = TrackStatus(revision=target.revision, model_version=target.model_version, model=target.model)
        tick.canary = None
        tick.analysis = None
    _steady(tick)


# ------------------------------------------------------------------ steady state


def _steady(tick: _Tick) -> None:
    stable = tick.stable
    assert stable is not None and stable.revision is not None
    if tick.canary is not None:
        # Spec went back to the stable revision while a canary ran (or after it was aborted).
        if not tick.canary.aborted and tick.canary.revision is not None:
            tick.record(tick.canary.revision, tick.canary.model_version, tick.canary.model, "Superseded",
                        f"spec returned to the stable revision {stable.revision}")
            tick.event(EVENT_CANARY_SUPERSEDED, f"canary {tick.canary.revision} removed: spec asks for the stable "
                       f"revision {stable.revision} again")
        tick.canary = None
    tick.ensure(stable.revision, tick.total, "stable", stable.model)
    baking = tick.previous.revision if tick.previous is not None and tick.router.weighted_route else None
    tick.routing = SetRouting(stable.revision, baking, 0)
    ready = tick.observed.ready(stable.revision)
    if ready >= tick.total:
        if stable.deployed_at is None:
            tick.stable = stable.model_copy(update={"deployed_at": tick.now_text})
            tick.record(stable.revision, stable.model_version, stable.model, "Deployed", "all pods ready")
            tick.event(EVENT_DEPLOYED, f"{_name(tick, stable.model_version, stable.revision)} serves on "
                       f"{ready}/{tick.total} pods")
    else:
        problem = tick.observed.problem(stable.revision)
        if problem:
            tick.stalled = (REASON_PODS_FAILING, f"{stable.revision} pods are not starting: {problem}")
        tick.wait(READINESS_POLL_SECONDS)


# ------------------------------------------------------------------ canary


def _canary(tick: _Tick, target: _Target) -> None:
    if tick.canary is None or tick.canary.revision != target.revision:
        _start_canary(tick, target)
    canary = tick.canary
    assert canary is not None
    if canary.aborted:
        _hold_aborted(tick)
        return
    if canary.rollback:
        _promote(tick)
        return
    _start_analysis_clock(tick)
    _record_measurement(tick)
    if tick.canary is not None and tick.canary.aborted:
        _hold_aborted(tick)
        return
    _advance_steps(tick)


def _start_canary(tick: _Tick, target: _Target) -> None:
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
    name = _name(tick, target.model_version, target.revision)
    if rollback:
        tick.event(EVENT_ROLLBACK_STARTED, f"rolling back to {name}: straight to full strength, then switched")
    else:
        tick.event(EVENT_CANARY_STARTED, f"canary {name} started next to stable v{stable.model_version} "
                   f"({stable.revision})")


def _start_analysis_clock(tick: _Tick) -> None:
    # Background analysis starts once the canary carries traffic; the first run is an interval later.
    if not tick.spec.rollout.analysis.effective_metrics() or tick.observed_weight <= 0:
        return
    if tick.analysis is None:
        tick.analysis = AnalysisStatus(phase="Running", started_at=tick.now_text)
    elif tick.analysis.started_at is None:
        tick.analysis = tick.analysis.model_copy(update={"started_at": tick.now_text, "phase": "Running"})


def _record_measurement(tick: _Tick) -> None:
    measurement, canary = tick.observed.measurement, tick.canary
    metrics = tick.spec.rollout.analysis.effective_metrics()
    if measurement is None or canary is None or not metrics or measurement.canary_revision != canary.revision:
        return
    last = tick.analysis.last_run_at if tick.analysis is not None else None
    if last is not None and parse_time(last) >= as_utc(measurement.taken_at):
        return  # already counted: the same measurement seen again must not count twice
    settings = tick.spec.rollout.analysis
    taken = format_time(measurement.taken_at)
    run = judge_run(metrics, measurement.readings, settings.min_requests, settings.no_data, taken)
    previous_phase = tick.analysis.phase if tick.analysis is not None else None
    tick.analysis = record_run(tick.analysis, run, taken)
    steps = tick.spec.rollout.steps
    if canary.step_index < len(steps) and steps[canary.step_index].analysis is not None:
        counted = canary.analysis_step_successes + 1 if run.verdict == "Successful" else 0
        tick.canary = canary.model_copy(update={"analysis_step_successes": counted})
    _announce_run(tick, run, previous_phase)
    failed = run.first_failure
    if failed is not None and tick.analysis.failures > settings.failure_limit:
        reason = (
            f"analysis failed: {failed.message} ({tick.analysis.failures} failed runs, "
            f"failureLimit {settings.failure_limit})"
        )
        _abort(tick, reason, cond.REASON_ANALYSIS_FAILED)


def _announce_run(tick: _Tick, run: RunResult, previous_phase: str | None) -> None:
    if run.verdict == "Failed":
        failed = run.first_failure
        tick.event(EVENT_ANALYSIS_FAILED, failed.message if failed else "analysis failed", warning=True)
    elif run.verdict == "Inconclusive" and previous_phase != "Inconclusive":
        unsure = run.first_inconclusive
        tick.event(EVENT_ANALYSIS_INCONCLUSIVE, unsure.message if unsure else "analysis inconclusive", warning=True)
    elif run.verdict == "Successful" and previous_phase != "Successful":
        tick.event(EVENT_ANALYSIS_SUCCESSFUL, "; ".join(m.message for m in run.metrics))


def _abort(tick: _Tick, reason: str, code: str) -> None:
    canary = tick.canary
    assert canary is not None and canary.revision is not None
    tick.canary = canary.model_copy(update={"aborted": True, "abort_reason": reason[:2048], "weight": 0,
                                            "paused": False})
    tick.abort_reason_code = code
    tick.record(canary.revision, canary.model_version, canary.model, "Aborted", reason)
    tick.event(EVENT_ABORTED, f"canary {canary.revision} aborted, weight 0: {reason}", warning=True)


def _hold_aborted(tick: _Tick) -> None:
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


def _weight_at(steps: list[Step], index: int) -> int:
    """The weight in force at step `index`: the last setWeight at or before it."""
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def _advance_steps(tick: _Tick) -> None:
    steps = tick.spec.rollout.steps
    while True:
        canary = tick.canary
        assert canary is not None
        if canary.step_index >= len(steps):
            _promote(tick)
            return
        step = steps[canary.step_index]
        weight = _weight_at(steps, canary.step_index)
        tick.canary = canary = canary.model_copy(update={"weight": weight})
        if not _step_done(tick, step, weight):
            break
        if not _analysis_allows_moving_on(tick, last=canary.step_index == len(steps) - 1):
            break
        tick.event(EVENT_STEP_COMPLETED, f"step {canary.step_index + 1}/{len(steps)} {describe_step(step)} done"
                   f" (weight {weight}%, observed {tick.observed_weight}%)")
        tick.canary = canary.model_copy(
            update={"step_index": canary.step_index + 1, "step_started_at": tick.now_text,
                    "analysis_step_successes": 0}
        )
    _route_canary(tick, steps)
    _ask_for_next_run(tick)


def _canary_pods_ready(tick: _Tick, weight: int) -> bool:
    canary = tick.canary
    assert canary is not None
    needed = tick.router.plan(tick.total, weight).canary
    return tick.observed.ready(canary.revision) >= needed


def _report_pod_problem(tick: _Tick, revision: str | None) -> None:
    """A canary whose pods cannot start holds at its weight (it never takes traffic) and says why."""
    problem = tick.observed.problem(revision)
    if problem:
        tick.hold = f"{tick.hold}: {problem}"
        tick.stalled = (REASON_PODS_FAILING, f"canary {revision} pods are not starting: {problem}")


def _step_done(tick: _Tick, step: Step, weight: int) -> bool:
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
            _report_pod_problem(tick, canary.revision)
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
            tick.stalled = (cond.REASON_NO_METRICS, tick.hold)
            return False
        if canary.analysis_step_successes < step.analysis.count:
            tick.hold = f"analysis: {canary.analysis_step_successes}/{step.analysis.count} successful runs"
            return False
        return True
    return True


def _analysis_allows_moving_on(tick: _Tick, last: bool) -> bool:
    """Inconclusive holds; promotion needs a successful run when metrics are configured.

    Silence never promotes: no run yet, or a latest run without a verdict, keeps the step.
    """
    settings = tick.spec.rollout.analysis
    if not settings.effective_metrics():
        return True
    analysis = tick.analysis
    if analysis is not None and analysis.phase == "Inconclusive":
        unsure = next((m for m in analysis.metrics if m.verdict in ("Inconclusive", "Error")), None)
        detail = unsure.message if unsure is not None else "no verdict"
        tick.hold = f"holding: analysis inconclusive ({detail})"
        if analysis.consecutive_inconclusives > settings.inconclusive_limit:
            tick.stalled = (
                cond.REASON_INCONCLUSIVE_LIMIT,
                f"analysis inconclusive {analysis.consecutive_inconclusives} times in a row (inconclusiveLimit "
                f"{settings.inconclusive_limit}): {detail}; holding until a run succeeds (or promote / abort)",
            )
        return False
    if last and (analysis is None or analysis.phase != "Successful"):
        tick.hold = "waiting for a successful analysis run before promotion"
        return False
    return True


def _route_canary(tick: _Tick, steps: list[Step]) -> None:
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None and canary is not None
    assert canary.revision is not None
    weight = canary.weight
    plan = tick.router.plan(tick.total, weight)
    # The route moves to a step's weight only once the pods that carry it are ready.
    current = steps[canary.step_index] if canary.step_index < len(steps) else None
    route_weight = weight
    if current is not None and current.set_weight is not None and not _canary_pods_ready(tick, weight):
        route_weight = _weight_at(steps, canary.step_index - 1) if canary.step_index > 0 else 0
    if tick.canary is not None and canary.paused:
        route_weight = min(route_weight, max(tick.observed_weight, 0))
    tick.ensure(stable.revision, plan.stable, "stable", stable.model)
    tick.ensure(canary.revision, plan.canary, "canary", canary.model)
    tick.routing = SetRouting(stable.revision, canary.revision, route_weight)
    if plan.surge_limited:
        needs = (f"needs {plan.wanted} canary pods" if plan.wanted is not None
                 else "cannot be carried while stable keeps full strength (promotion does that)")
        tick.note = f"weight {weight}% {needs}; capped at maxSurge {plan.max_surge}: carrying {plan.share}%"


def _ask_for_next_run(tick: _Tick) -> None:
    status = _status_so_far(tick)
    due = next_analysis_at(tick.spec, status)
    if due is not None:
        tick.wait((due - tick.now).total_seconds())
    elif tick.spec.rollout.analysis.effective_metrics() and tick.analysis is None:
        tick.wait(READINESS_POLL_SECONDS)  # waiting for the canary to carry traffic


def _promote(tick: _Tick) -> None:
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
        _report_pod_problem(tick, revision)
        tick.wait(READINESS_POLL_SECONDS)
        return
    if tick.router.weighted_route and tick.observed_weight != 100:
        tick.wait(READINESS_POLL_SECONDS)
        return
    _switch(tick)


def _switch(tick: _Tick) -> None:
    stable, canary = tick.stable, tick.canary
    assert stable is not None and stable.revision is not None
    assert canary is not None and canary.revision is not None
    bake = parse_duration(tick.spec.rollout.bake_time)
    name = _name(tick, canary.model_version, canary.revision)
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
    # The canary is at full strength (checked by `_promote`): it is deployed from this moment.
    tick.stable = TrackStatus(revision=canary.revision, model_version=canary.model_version, model=canary.model,
                              deployed_at=tick.now_text)
    tick.canary = None
    _steady(tick)


def _bake(tick: _Tick) -> None:
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


# ------------------------------------------------------------------ commands


def _apply_commands(tick: _Tick) -> None:
    order = {name: i for i, name in enumerate(COMMANDS)}
    for command in sorted(tick.observed.commands, key=lambda c: order.get(c.name, len(order))):
        if command.name not in order or tick.handled.get(command.name) == command.nonce:
            continue
        tick.handled[command.name] = command.nonce
        refusal = _HANDLERS[command.name](tick, command)
        if refusal is None:
            value = f" {command.value}" if command.value else ""
            tick.event(EVENT_COMMAND, f"{command.name}{value} (request {command.nonce})")
        else:
            tick.event(EVENT_COMMAND_IGNORED, f"{command.name} ignored: {refusal}", warning=True)


def _running_canary(tick: _Tick) -> CanaryStatus | None:
    canary = tick.canary
    if canary is None or canary.aborted or canary.rollback:
        return None
    return canary


def _command_abort(tick: _Tick, command: Command) -> str | None:
    if _running_canary(tick) is None:
        return "no canary in progress"
    _abort(tick, ABORTED_BY_USER, cond.REASON_ABORTED_BY_USER)
    return None


def _command_retry(tick: _Tick, command: Command) -> str | None:
    canary = tick.canary
    if canary is None or not canary.aborted:
        return "no aborted canary to retry"
    tick.canary = canary.model_copy(
        update={"aborted": False, "abort_reason": None, "step_index": 0, "step_started_at": tick.now_text,
                "weight": 0, "paused": False, "analysis_step_successes": 0}
    )
    tick.analysis = None
    return None


def _command_pause(tick: _Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress"
    if not canary.paused:
        tick.canary = canary.model_copy(update={"paused": True, "paused_at": tick.now_text})
    return None


def _command_resume(tick: _Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress"
    steps = tick.spec.rollout.steps
    at_open_pause = (
        canary.step_index < len(steps)
        and steps[canary.step_index].pause is not None
        and not steps[canary.step_index].pause.duration  # type: ignore[union-attr]
    )
    stalled = tick.analysis is not None and tick.analysis.consecutive_inconclusives > 0
    if not (canary.paused or at_open_pause or stalled):
        return "nothing is paused"
    update: dict[str, object] = {"paused": False, "paused_at": None}
    if canary.paused and canary.paused_at and canary.step_started_at:
        # The step's clock stood still while paused: a timed pause keeps the time it had left.
        held = tick.now - parse_time(canary.paused_at)
        update["step_started_at"] = format_time(parse_time(canary.step_started_at) + held)
    if at_open_pause and not canary.paused:
        update.update(step_index=canary.step_index + 1, step_started_at=tick.now_text, analysis_step_successes=0)
    tick.canary = canary.model_copy(update=update)
    if stalled and tick.analysis is not None:
        tick.analysis = tick.analysis.model_copy(update={"consecutive_inconclusives": 0})
    return None


def _command_promote(tick: _Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress (after an abort, use retry)"
    steps = len(tick.spec.rollout.steps)
    index = steps if command.value == PROMOTE_FULL else min(canary.step_index + 1, steps)
    tick.canary = canary.model_copy(
        update={"step_index": index, "step_started_at": tick.now_text, "paused": False,
                "analysis_step_successes": 0}
    )
    return None


def _command_undo(tick: _Tick, command: Command) -> str | None:
    stable = tick.stable
    if stable is None or stable.revision is None:
        return "nothing deployed yet"
    wanted = command.value.strip()
    found = _undo_target(tick, wanted, stable.revision)
    if found is None:
        return f"no earlier revision {wanted or ''} with a known model in history".replace("  ", " ")
    if found.revision == stable.revision:
        return f"{found.revision} is already stable (to stop a canary, use abort)"
    tick.pinned = PinnedRevision(revision=found.revision, model_version=found.model_version, model=found.model,
                                 replaces=tick.observed.desired.revision)
    return None


def _undo_target(tick: _Tick, wanted: str, stable_revision: str) -> _Target | None:
    previous = tick.previous
    if previous is not None and wanted in ("", previous.revision):
        return _Target(previous.revision, previous.model_version, previous.model)
    for entry in reversed(tick.history):
        if entry.outcome not in ("Promoted", "Deployed") or entry.uri is None:
            continue
        if (wanted and entry.revision != wanted) or (not wanted and entry.revision == stable_revision):
            continue
        model = ModelSource(
            name=tick.spec.model.name,
            version=entry.model_version,
            uri=entry.uri,
            sha256=entry.sha256,
            format="skops" if entry.format == "skops" else "joblib",
        )
        return _Target(entry.revision, entry.model_version, model)
    return None


_HANDLERS = {
    COMMAND_ABORT: _command_abort,
    COMMAND_UNDO: _command_undo,
    COMMAND_RETRY: _command_retry,
    COMMAND_PAUSE: _command_pause,
    COMMAND_RESUME: _command_resume,
    COMMAND_PROMOTE: _command_promote,
}


# ------------------------------------------------------------------ the decision


def _name(tick: _Tick, version: str | None, revision: str | None) -> str:
    return f"{tick.spec.model.name} v{version} ({revision})"


def _with_observations(tick: _Tick) -> None:
    """Copy what was observed of the tracks into status (counts, observed weight)."""
    observed = tick.observed
    if tick.stable is not None:
        found = observed.deployment(tick.stable.revision)
        tick.stable = tick.stable.model_copy(
            update={"replicas": found.replicas if found else 0, "ready_replicas": found.ready_replicas if found else 0}
        )
    if tick.canary is not None:
        found = observed.deployment(tick.canary.revision)
        tick.canary = tick.canary.model_copy(
            update={
                "replicas": found.replicas if found else 0,
                "ready_replicas": found.ready_replicas if found else 0,
                "observed_weight": tick.observed_weight,
            }
        )


def _status_so_far(tick: _Tick) -> ModelDeploymentStatus:
    return tick.old.model_copy(
        update={
            "observed_generation": tick.observed.generation,
            "stable": tick.stable,
            "canary": tick.canary,
            "analysis": tick.analysis,
            "previous": tick.previous,
            "pinned": tick.pinned,
            "history": tick.history,
            "handled_commands": tick.handled,
        }
    )


def _conditions(tick: _Tick, status: ModelDeploymentStatus, phase: str, message: str) -> ModelDeploymentStatus:
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
            else cond.REASON_ANALYSIS_FAILED
        )
        put(cond.READY, "False", code, message)
        put(cond.RECONCILING, "False", code, message)
        put(cond.STALLED, "True", code, message)
        put(cond.PROGRESSING, "False", code, message)
        put(cond.DEGRADED, "True", code, message)
        return status.model_copy(update={"conditions": conditions})
    progress_reason = {
        "Paused": cond.REASON_PAUSED,
        "Analysing": cond.REASON_ANALYSING,
        "Inconclusive": cond.REASON_ANALYSIS_INCONCLUSIVE,
        "Promoting": cond.REASON_PROMOTING,
        "RollingBack": cond.REASON_ROLLING_BACK,
        "Deploying": cond.REASON_DEPLOYING,
    }.get(phase, cond.REASON_CANARY_PROGRESSING)
    if rolling or not stable_full:
        unavailable = not rolling and stable is not None and stable.deployed_at is not None
        reason = cond.REASON_STABLE_UNAVAILABLE if unavailable else progress_reason
        put(cond.READY, "False", reason, message)
        put(cond.RECONCILING, "True", reason, message)
        put(cond.PROGRESSING, "True", reason, message)
        put(cond.DEGRADED, "True" if unavailable else "False",
            reason if unavailable else cond.REASON_AS_EXPECTED, message if unavailable else "")
    else:
        put(cond.READY, "True", cond.REASON_HEALTHY, message)
        put(cond.RECONCILING, "False", cond.REASON_RECONCILED, "")
        put(cond.PROGRESSING, "True", cond.REASON_ROLLOUT_COMPLETE, message)
        put(cond.DEGRADED, "False", cond.REASON_AS_EXPECTED, "")
    if tick.stalled is not None:
        # kstatus (Flux) reads Reconciling first: a stalled object must not also say it is getting there.
        put(cond.RECONCILING, "False", tick.stalled[0], tick.stalled[1])
        put(cond.STALLED, "True", tick.stalled[0], tick.stalled[1])
    else:
        put(cond.STALLED, "False", cond.REASON_AS_EXPECTED, "")
    return status.model_copy(update={"conditions": conditions})


def _tracked(tick: _Tick) -> set[str | None]:
    """The revisions status keeps a Deployment for: stable, canary, previous. Everything else goes."""
    return {t.revision for t in (tick.stable, tick.canary, tick.previous) if t is not None}


def _orphans(tick: _Tick) -> list[DeleteDeployment]:
    """Delete every observed Deployment of no track: derived from status alone on every tick, so a
    deletion lost after the status write (crash, conflict) is done by the next tick."""
    keep = _tracked(tick)
    return [DeleteDeployment(d.revision) for d in tick.observed.deployments if d.revision not in keep]


def _ordered_actions(tick: _Tick) -> tuple[Action, ...]:
    """Scale-ups, then the routing change, then scale-downs, deletions and events.

    A revision that left every track during the tick (the old stable at a switch) is not ensured:
    the decision must be the one a later tick derives from the new status alone.
    """

    def grows(ensure: EnsureDeployment) -> bool:
        found = tick.observed.deployment(ensure.revision)
        return found is None or ensure.replicas >= found.replicas

    keep = _tracked(tick)
    ensures = [e for e in tick.ensures if e.revision in keep]
    ups = [e for e in ensures if grows(e)]
    downs = [e for e in ensures if not grows(e)]
    routing: list[Action] = [tick.routing] if tick.routing is not None else []
    return (*ups, *routing, *downs, *_orphans(tick), *tick.events)


def _decide(tick: _Tick) -> Decision:
    _with_observations(tick)
    status = _status_so_far(tick)
    phase, message = derive_phase(tick.spec, status, tick.now, tick.hold)
    if tick.stalled is not None and tick.stalled[1] not in message:
        message = f"{message}; {tick.stalled[1]}"
    if tick.note is not None:
        message = f"{message}; {tick.note}"
    status = status.model_copy(update={"phase": phase, "message": message[:2048]})
    status = _conditions(tick, status, phase, message)
    # Round-trip through validation so the status we hand back is exactly what the API stores.
    status = ModelDeploymentStatus.model_validate(status.model_dump(by_alias=True))
    requeue = min(tick.requeue) if tick.requeue else None
    return Decision(status=status, actions=_ordered_actions(tick), requeue_after=requeue)
