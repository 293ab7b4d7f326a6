"""Background analysis of the canary: when a run is due, counting its verdict, whether it lets the
canary move on.

The controller asks `analysis_due` before a tick (and measures when it says so); the tick records the
measurement (`record_measurement`), which may abort the canary. Judging itself is
`modelops.analysis.judging`.
"""

from __future__ import annotations

from datetime import datetime

from modelops.analysis.judging import RunResult, judge_run, record_run
from modelops.api.durations import parse_duration
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import AnalysisStatus, ModelDeploymentStatus
from modelops.api.timefmt import as_utc, format_time, parse_time
from modelops.rollout.abort import abort
from modelops.rollout.conditions import REASON_ANALYSIS_FAILED, REASON_INCONCLUSIVE_LIMIT
from modelops.rollout.context import READINESS_POLL_SECONDS, Tick, status_so_far
from modelops.rollout.events import EVENT_ANALYSIS_FAILED, EVENT_ANALYSIS_INCONCLUSIVE, EVENT_ANALYSIS_SUCCESSFUL


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


def start_analysis_clock(tick: Tick) -> None:
    # Background analysis starts once the canary carries traffic; the first run is an interval later.
    """Start background analysis once the canary carries traffic (the first run is an interval later)."""
    if not tick.spec.rollout.analysis.effective_metrics() or tick.observed_weight <= 0:
        return
    if tick.analysis is None:
        tick.analysis = AnalysisStatus(phase="Running", started_at=tick.now_text)
    elif tick.analysis.started_at is None:
        tick.analysis = tick.analysis.model_copy(update={"started_at": tick.now_text, "phase": "Running"})


def record_measurement(tick: Tick) -> None:
    """Count the measurement the controller took for this canary (once), and abort past failureLimit."""
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
        abort(tick, reason, REASON_ANALYSIS_FAILED)


def _announce_run(tick: Tick, run: RunResult, previous_phase: str | None) -> None:
    if run.verdict == "Failed":
        failed = run.first_failure
        tick.event(EVENT_ANALYSIS_FAILED, failed.message if failed else "analysis failed", warning=True)
    elif run.verdict == "Inconclusive" and previous_phase != "Inconclusive":
        unsure = run.first_inconclusive
        tick.event(EVENT_ANALYSIS_INCONCLUSIVE, unsure.message if unsure else "analysis inconclusive", warning=True)
    elif run.verdict == "Successful" and previous_phase != "Successful":
        tick.event(EVENT_ANALYSIS_SUCCESSFUL, "; ".join(m.message for m in run.metrics))


def analysis_allows_moving_on(tick: Tick, last: bool) -> bool:
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
                REASON_INCONCLUSIVE_LIMIT,
                f"analysis inconclusive {analysis.consecutive_inconclusives} times in a row (inconclusiveLimit "
                f"{settings.inconclusive_limit}): {detail}; holding until a run succeeds (or promote / abort)",
            )
        return False
    if last and (analysis is None or analysis.phase != "Successful"):
        tick.hold = "waiting for a successful analysis run before promotion"
        return False
    return True


def ask_for_next_run(tick: Tick) -> None:
    """Ask for a tick when the next analysis run is due (or soon, while waiting for traffic)."""
    status = status_so_far(tick)
    due = next_analysis_at(tick.spec, status)
    if due is not None:
        tick.wait((due - tick.now).total_seconds())
    elif tick.spec.rollout.analysis.effective_metrics() and tick.analysis is None:
        tick.wait(READINESS_POLL_SECONDS)  # waiting for the canary to carry traffic
