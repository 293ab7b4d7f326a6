"""The retraining loop's decisions: `next_retraining(spec, status, observed, now)` and `desired_model`.

Called by the controller on every reconcile of a ModelDeployment with `spec.retraining` (after the
rollout machine, with the status it returned). One pass, in order: commands; a candidate lapsed by a
Git edit of spec.model; what became of the candidate (promoted or rolled back by the canary); what
became of the running Job; then the signals (drift of the stable track, quality, PromQL, cron, a
manual request) and, when one fires, the guardrails that may drop it. A dropped trigger is never
queued: its breach starts over and must hold `forDuration` again. Pure: time is an argument.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modelops.api.durations import parse_duration
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import (
    GateResult,
    ModelDeploymentStatus,
    RetrainCandidate,
    RetrainingStatus,
    RetrainJobStatus,
    RetrainRuns,
    RetrainTrigger,
)
from modelops.api.timefmt import as_utc, format_time, parse_time
from modelops.retraining.actions import (
    CONDITION_BLOCKED,
    CONDITION_DRIFT_PERSISTS,
    EVENT_BLOCKED,
    EVENT_CANDIDATE_RECORDED,
    EVENT_CANDIDATE_REJECTED,
    EVENT_CANDIDATE_SUPERSEDED,
    EVENT_COMMAND_HANDLED,
    EVENT_COMMAND_IGNORED,
    EVENT_DRIFT_PERSISTS,
    EVENT_JOB_FAILED,
    EVENT_PROMOTED,
    EVENT_ROLLED_BACK,
    EVENT_SKIPPED,
    EVENT_TRIGGERED,
    SKIP_ALREADY_RUNNING,
    SKIP_BLOCKED,
    SKIP_CANARY,
    SKIP_CANDIDATE_PENDING,
    SKIP_COOLDOWN,
    SKIP_DAILY_BUDGET,
    SKIP_DRIFT_PERSISTS,
    SKIP_IDENTICAL,
    SKIP_NO_NEW_DATA,
    SKIP_UNDO_PINNED,
    CreateJob,
    DeleteJob,
    JobParams,
    RetrainAction,
    RetrainDecision,
)
from modelops.retraining.context import Tick
from modelops.retraining.observed import COMMAND_APPROVE, COMMAND_RETRAIN, RETRAIN_RESET, RetrainObserved
from modelops.retraining.result import JobResult
from modelops.retraining.signals import Fired, fired_signals

JOB_POLL_SECONDS = 30.0  # a safety tick while a Job runs (Job watch events are the fast path)
MAX_VERSION = 63
JOB_SUFFIX = "-retrain-"


def job_name(mdep: str, n: int) -> str:
    """`<mdep>-retrain-<n>`: deterministic, so a restarted operator adopts the run instead of starting one."""
    return f"{mdep}{JOB_SUFFIX}{n}"


def candidate_version(base: str, n: int) -> str:
    """The model version of run n's candidate: `<spec version>-r<n>`, within the 63-character limit."""
    suffix = f"-r{n}"
    return base[: MAX_VERSION - len(suffix)].rstrip("._-") + suffix


def desired_model(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> tuple[ModelSource, str]:
    """The model the pods should run and where it came from ("Retrain" or "Git").

    A candidate counts when promotion is Auto (or it was approved) and spec.model is still the one it
    was trained to replace; the promoted retrain stays desired on the same terms. The moment Git
    changes spec.model both lapse and spec wins. The controller hashes this into the desired revision,
    so the candidate goes out through spec.rollout like any new version.
    """
    rs = status.retraining
    if spec.retraining is None or rs is None:
        return spec.model, "Git"
    candidate = rs.candidate
    if candidate is not None and candidate.replaces_model == spec.model and (
        candidate.approved or spec.retraining.promotion == "Auto"
    ) and not _rolled_back(status, candidate):
        return candidate.model, "Retrain"
    if rs.promoted is not None and rs.promoted.replaces_model == spec.model:
        return rs.promoted.model, "Retrain"
    return spec.model, "Git"


def next_retraining(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observed: RetrainObserved,
                    now: datetime, mdep: str) -> RetrainDecision:
    """One tick of the retraining loop for the ModelDeployment `mdep` (its name: Jobs are named after it)."""
    now = as_utc(now)
    rs = status.retraining or RetrainingStatus()
    if spec.retraining is None:
        # Retraining switched off: stop a run in flight; keep the record (status shows what happened).
        actions: list[RetrainAction] = []
        if rs.job is not None:
            actions.append(DeleteJob(rs.job.name))
            rs = rs.model_copy(update={"job": None})
        new_status = status.model_copy(update={"retraining": rs}) if status.retraining is not None else status
        return RetrainDecision(new_status, tuple(actions), None)
    tick = Tick(spec, spec.retraining, status, rs, observed, now, mdep, [], [])
    manual = _commands(tick)
    _lapse(tick)
    _candidate_outcome(tick)
    _job_outcome(tick)
    _block_if_needed(tick)
    _drift_persists_cleared(tick)
    fired = fired_signals(tick, manual)
    if fired:
        _trigger(tick, fired)
    tick.update(next_run_after=_next_run_after(tick))
    status_out = tick.status.model_copy(update={"retraining": tick.rs})
    return RetrainDecision(status_out, tuple(tick.actions), _requeue(tick))


# ------------------------------------------------------------------ commands


def _commands(tick: Tick) -> bool:
    """Handle new `retrain` / `approve` annotations; True when a manual run was asked for."""
    handled = dict(tick.status.handled_commands)
    manual = False
    for command in tick.observed.commands:
        if handled.get(command.name) == command.nonce:
            continue
        handled[command.name] = command.nonce
        if command.name == COMMAND_RETRAIN and command.value == RETRAIN_RESET:
            tick.update(blocked=False, blocked_reason=None, consecutive_rejections=0, drift_persists=False)
            tick.condition(CONDITION_BLOCKED, False, "Reset", "reset by kubectl modelops retrain --reset")
            tick.condition(CONDITION_DRIFT_PERSISTS, False, "Reset", "reset by kubectl modelops retrain --reset")
            tick.event(EVENT_COMMAND_HANDLED, f"retrain --reset (request {command.nonce}): the loop may run again")
        elif command.name == COMMAND_RETRAIN and command.value == "":
            manual = True
            tick.event(EVENT_COMMAND_HANDLED, f"retrain (request {command.nonce}): a manual run was asked for")
        elif command.name == COMMAND_RETRAIN:
            tick.event(EVENT_COMMAND_IGNORED, f"retrain ignored: unknown value {command.value!r} (want '' or "
                       f"{RETRAIN_RESET!r})", warning=True)
        elif command.name == COMMAND_APPROVE:
            _approve(tick, command.nonce)
    tick.status = tick.status.model_copy(update={"handled_commands": handled})
    return manual


def _approve(tick: Tick, nonce: str) -> None:
    candidate = tick.rs.candidate
    if candidate is None:
        tick.event(EVENT_COMMAND_IGNORED, "approve ignored: no retrained candidate is waiting", warning=True)
        return
    if candidate.approved or tick.retraining.promotion == "Auto":
        tick.event(EVENT_COMMAND_IGNORED, f"approve ignored: candidate {candidate.model.version} needs no approval "
                   f"(promotion {tick.retraining.promotion}, approved {candidate.approved})")
        return
    tick.update(candidate=candidate.model_copy(update={"approved": True}))
    tick.event(EVENT_COMMAND_HANDLED, f"approve (request {nonce}): candidate {candidate.model.version} "
               f"({candidate.sha256[:12]}) goes out through spec.rollout")


# ------------------------------------------------------------------ candidate and job outcomes


def _lapse(tick: Tick) -> None:
    """Git changed spec.model: the candidate (and the promoted retrain) no longer apply."""
    candidate = tick.rs.candidate
    if candidate is not None and candidate.replaces_model != tick.spec.model:
        tick.update(candidate=None)
        message = (f"candidate {candidate.model.version} ({candidate.sha256[:12]}) superseded: spec.model changed "
                   f"to {tick.spec.model.version} in Git")
        tick.event(EVENT_CANDIDATE_SUPERSEDED, message)
        tick.result("Superseded", message, job=candidate.job)
    promoted = tick.rs.promoted
    if promoted is not None and promoted.replaces_model != tick.spec.model:
        # Git's model replaces the retrained one; its lineage is not ours to know.
        tick.update(promoted=None, stable_dataset_sha256=None, retrained_sha256=None)


def _stable_sha(status: ModelDeploymentStatus) -> str | None:
    stable = status.stable
    return stable.model.sha256 if stable is not None and stable.model is not None else None


def _rolled_back(status: ModelDeploymentStatus, candidate: RetrainCandidate) -> bool:
    canary = status.canary
    return (canary is not None and canary.aborted and canary.model is not None
            and canary.model.sha256 == candidate.sha256)


def _candidate_outcome(tick: Tick) -> None:
    candidate = tick.rs.candidate
    if candidate is None:
        return
    if _stable_sha(tick.status) == candidate.sha256:
        tick.update(candidate=None, promoted=candidate, consecutive_rejections=0,
                    stable_dataset_sha256=candidate.dataset_sha256, retrained_sha256=candidate.sha256)
        message = f"retrained model {candidate.model.version} ({candidate.sha256[:12]}) is stable"
        tick.event(EVENT_PROMOTED, message)
        tick.result("Promoted", message, job=candidate.job)
    elif _rolled_back(tick.status, candidate):
        reason = tick.status.canary.abort_reason if tick.status.canary is not None else None
        message = (f"retrained model {candidate.model.version} ({candidate.sha256[:12]}) was rolled back by the "
                   f"canary: {reason or 'aborted'}")
        tick.update(candidate=None, consecutive_rejections=tick.rs.consecutive_rejections + 1)
        tick.event(EVENT_ROLLED_BACK, message, warning=True)
        tick.result("RolledBack", message, job=candidate.job)


def _job_outcome(tick: Tick) -> None:
    job = tick.rs.job
    seen = tick.observed.job
    if job is None:
        return
    if seen is None or seen.name != job.name:
        tick.wake.append(tick.now + timedelta(seconds=JOB_POLL_SECONDS))
        return  # not looked at this tick: nothing is known
    if seen.phase == "Absent":
        # Status says a run started, the Job is not there: the create was lost (crash after the status
        # write). Create it again under the same name; it is still run n.
        tick.actions.append(CreateJob(job.name, job.number, _params(tick, job)))
        tick.wake.append(tick.now + timedelta(seconds=JOB_POLL_SECONDS))
        return
    if seen.phase == "Running":
        if job.phase != "Running":
            tick.update(job=job.model_copy(update={"phase": "Running"}))
        tick.wake.append(tick.now + timedelta(seconds=JOB_POLL_SECONDS))
        return
    tick.update(job=None)
    if seen.phase == "Failed" or seen.result is None:
        message = f"Job {job.name} failed: {seen.reason or 'no result in its termination message'}"
        tick.event(EVENT_JOB_FAILED, message, warning=True)
        tick.result("JobFailed", message, job=job.name)
        return
    _record(tick, job, seen.result)


def _record(tick: Tick, job: RetrainJobStatus, result: JobResult) -> None:
    """A finished run's result: skipped, rejected, or a candidate."""
    if job.replaces_model is not None and job.replaces_model != tick.spec.model:
        message = f"Job {job.name}'s model is superseded: spec.model changed in Git while it ran"
        tick.event(EVENT_CANDIDATE_SUPERSEDED, message)
        tick.result("Superseded", message, job=job.name)
        return
    current_dataset = tick.observed.current_dataset_sha256 or tick.rs.stable_dataset_sha256
    if result.outcome == "NoNewData" or (tick.retraining.guardrails.require_new_data
                                         and current_dataset == result.dataset_sha256):
        _skip(tick, SKIP_NO_NEW_DATA, f"Job {job.name}: dataset {result.dataset_sha256[:12]} is the one the current "
              "model was trained on", job.name)
        return
    assert result.sha256 is not None and result.uri is not None  # parse_result guarantees it
    if result.sha256 in (_stable_sha(tick.status), job.parent_sha256):
        _skip(tick, SKIP_IDENTICAL, f"Job {job.name} produced the stable model's artifact ({result.sha256[:12]})",
              job.name)
        return
    gate = None
    if result.gate is not None:
        g = result.gate
        gate = GateResult(metric=g.metric, candidate=g.candidate, current=g.current, passed=g.passed,
                          message=g.message[:1024])
    if result.outcome == "Rejected" or (gate is not None and not gate.passed):
        numbers = f"{gate.metric} candidate {_num(gate.candidate)} vs current {_num(gate.current)}" if gate else ""
        message = f"Job {job.name}: candidate rejected by the gate: {numbers}. {gate.message if gate else ''}".strip()
        tick.update(consecutive_rejections=tick.rs.consecutive_rejections + 1)
        tick.event(EVENT_CANDIDATE_REJECTED, message, warning=True)
        tick.result("Rejected", message, job=job.name)
        return
    base = job.replaces_model or tick.spec.model
    model = ModelSource(name=base.name, version=result.version or candidate_version(base.version, job.number),
                        uri=result.uri, sha256=result.sha256,
                        format="skops" if result.format == "skops" else "joblib")
    auto = tick.retraining.promotion == "Auto"
    candidate = RetrainCandidate(
        model=model, sha256=result.sha256, dataset_sha256=result.dataset_sha256, rows=result.rows, job=job.name,
        replaces_model=base, replaces_revision=tick.observed.spec_revision,
        replaces_generation=tick.observed.generation, gate=gate, approved=False, recorded_at=tick.stamp,
    )
    tick.update(candidate=candidate)
    scored = f"; gate {gate.metric} {_num(gate.candidate)} vs {_num(gate.current)}" if gate else ""
    then = "goes out through spec.rollout" if auto else "waits for `kubectl modelops approve`"
    message = f"Job {job.name}: candidate {model.version} ({result.sha256[:12]}){scored}; it {then}"
    tick.event(EVENT_CANDIDATE_RECORDED, message)
    tick.result("CandidateRecorded", message, job=job.name)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _block_if_needed(tick: Tick) -> None:
    limit = tick.retraining.guardrails.max_consecutive_rejections
    if tick.rs.blocked or tick.rs.consecutive_rejections < limit:
        return
    reason = (f"{tick.rs.consecutive_rejections} candidates in a row were rejected or rolled back; "
              "fix the data or the model, then `kubectl modelops retrain --reset`")
    tick.update(blocked=True, blocked_reason=reason)
    tick.condition(CONDITION_BLOCKED, True, "TooManyRejections", reason)
    tick.event(EVENT_BLOCKED, reason, warning=True)


def _drift_persists_cleared(tick: Tick) -> None:
    """DriftPersists is about one retrained model: when another model is stable, it no longer holds."""
    if tick.rs.drift_persists and _stable_sha(tick.status) != tick.rs.retrained_sha256:
        tick.update(drift_persists=False)
        tick.condition(CONDITION_DRIFT_PERSISTS, False, "ModelChanged", "another model is stable now")


# ------------------------------------------------------------------ starting a run


def _skip(tick: Tick, reason: str, message: str, job: str | None = None) -> None:
    tick.event(EVENT_SKIPPED, f"{reason}: {message}")
    tick.result("Skipped", message, reason=reason, job=job)


def _canary_in_progress(status: ModelDeploymentStatus) -> bool:
    canary = status.canary
    return canary is not None and canary.revision is not None and not canary.aborted


def _guard(tick: Tick, fired: Fired) -> tuple[str, str] | None:
    """Why this trigger may not start a run now, or None."""
    rs, guard = tick.rs, tick.retraining.guardrails
    manual = fired.trigger.signal == "Manual"
    if rs.job is not None:
        return SKIP_ALREADY_RUNNING, f"Job {rs.job.name} is still running"
    if rs.blocked:
        return SKIP_BLOCKED, rs.blocked_reason or "blocked; `kubectl modelops retrain --reset`"
    if _canary_in_progress(tick.status):
        return SKIP_CANARY, "a canary is in progress"
    if tick.status.pinned is not None:
        return SKIP_UNDO_PINNED, f"an undo pins revision {tick.status.pinned.revision}"
    if rs.candidate is not None:
        return SKIP_CANDIDATE_PENDING, f"candidate {rs.candidate.model.version} has not gone out yet"
    # A person asking is the judgement cooldown and budget stand in for.
    if not manual:
        if rs.runs.last_started_at is not None:
            free = parse_time(rs.runs.last_started_at) + parse_duration(guard.cooldown)
            if tick.now < free:
                return SKIP_COOLDOWN, f"cooldown until {format_time(free)}"
        if _runs_today(tick) >= guard.max_runs_per_day:
            return SKIP_DAILY_BUDGET, f"{guard.max_runs_per_day} runs today already"
    if fired.signals == ("Drift",) and rs.retrained_sha256 is not None \
            and _stable_sha(tick.status) == rs.retrained_sha256:
        return SKIP_DRIFT_PERSISTS, "drift persists against the retrained model's own baseline"
    dataset = tick.retraining.job.dataset.sha256
    current = tick.observed.current_dataset_sha256 or rs.stable_dataset_sha256
    if guard.require_new_data and dataset is not None and dataset == current:
        return SKIP_NO_NEW_DATA, f"dataset {dataset[:12]} is the one the current model was trained on"
    return None


def _day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _runs_today(tick: Tick) -> int:
    runs = tick.rs.runs
    if runs.day_started_at is None or parse_time(runs.day_started_at) != _day_start(tick.now):
        return 0
    return runs.runs_today


def _trigger(tick: Tick, fired: Fired) -> None:
    why_not = _guard(tick, fired)
    trigger = fired.trigger
    if why_not is not None:
        reason, message = why_not
        if reason == SKIP_DRIFT_PERSISTS and not tick.rs.drift_persists:
            tick.update(drift_persists=True)
            tick.condition(CONDITION_DRIFT_PERSISTS, True, "RetrainedModelDrifts",
                           f"{trigger.reason}: retraining again on the same data would not help; check the data "
                           "pipeline, then `kubectl modelops retrain --reset`")
            tick.event(EVENT_DRIFT_PERSISTS, trigger.reason, warning=True)
        # Dropped, not a run: lastResult keeps the last run's outcome (a rejection stays readable).
        message = f"{trigger.signal} trigger dropped ({trigger.reason}): {message}"
        tick.event(EVENT_SKIPPED, f"{reason}: {message}")
        tick.dropped(reason, message)
        return
    n = tick.rs.runs.count + 1
    name = job_name(tick.mdep, n)
    parent = tick.status.stable.model if tick.status.stable is not None else None
    job = RetrainJobStatus(name=name, number=n, started_at=tick.stamp, phase="Pending", trigger=trigger,
                           parent_sha256=parent.sha256 if parent else None, replaces_model=tick.spec.model)
    runs = RetrainRuns(count=n, runs_today=_runs_today(tick) + 1, day_started_at=format_time(_day_start(tick.now)),
                       last_started_at=tick.stamp)
    tick.update(job=job, runs=runs, last_triggered=trigger)
    tick.actions.append(CreateJob(name, n, _params(tick, job)))
    also = f" (also: {', '.join(fired.signals[1:])})" if len(fired.signals) > 1 else ""
    tick.event(EVENT_TRIGGERED, f"{trigger.signal}: {trigger.reason}{also}; starting Job {name}")
    tick.result("Triggered", f"{trigger.signal}: {trigger.reason}", job=name)
    tick.wake.append(tick.now + timedelta(seconds=JOB_POLL_SECONDS))


def _params(tick: Tick, job: RetrainJobStatus) -> JobParams:
    parent = tick.status.stable.model if tick.status.stable is not None else None
    base = job.replaces_model or tick.spec.model
    prefix = tick.retraining.job.output.uri.rstrip("/")
    trigger = job.trigger or RetrainTrigger(at=job.started_at, signal="Manual")
    current = tick.observed.current_dataset_sha256 or tick.rs.stable_dataset_sha256
    return JobParams(trigger=trigger, version=candidate_version(base.version, job.number),
                     output_uri=f"{prefix}/{job.name}", parent=parent,
                     current_dataset_sha256=current if tick.retraining.guardrails.require_new_data else None)


# ------------------------------------------------------------------ timing


def _next_run_after(tick: Tick) -> str | None:
    """When a trigger may next start a run (cooldown end, or the next UTC day when the budget is spent)."""
    after: datetime | None = None
    runs, guard = tick.rs.runs, tick.retraining.guardrails
    if runs.last_started_at is not None:
        after = parse_time(runs.last_started_at) + parse_duration(guard.cooldown)
    if _runs_today(tick) >= guard.max_runs_per_day:
        tomorrow = _day_start(tick.now) + timedelta(days=1)
        after = max(after, tomorrow) if after is not None else tomorrow
    if after is None or after <= tick.now:
        return None
    return format_time(after)


def _requeue(tick: Tick) -> float | None:
    future = [w for w in tick.wake if w > tick.now]
    if tick.rs.breach_since and tick.rs.next_run_after is not None:
        future.append(parse_time(tick.rs.next_run_after))
    if not future:
        return None
    return max(1.0, (min(future) - tick.now).total_seconds())
