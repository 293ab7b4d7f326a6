"""Judging canary metric readings: readings in, verdicts out (pure, no I/O).

The providers (`prometheus.py`, `scrape.py`) turn the world into `MetricReading`s; the rollout state
machine (`modelops.rollout.analysis_runs`) calls `judge_run` on them and `record_run` to fold the run into
`status.analysis`. The vocabulary is Argo Rollouts': Successful / Failed / Inconclusive / Error.

Rules, in order, for one metric:
1. the provider failed (unreachable, timeout, bad answer) -> Error (counts as inconclusive: the
   rollout holds; `noData` does not turn an outage into a failure);
2. fewer than `minRequests` canary requests in the window, or no value / NaN -> Inconclusive, or
   Failed when `noData: Failed` (silence is never a pass);
3. an absolute `max` / `min` exceeded -> Failed;
4. `vsStable.maxIncrease`: the canary may be at most `stable * (1 + maxIncrease)`. Without a stable
   value the comparison cannot be made -> Inconclusive (same `noData` rule). A stable value of zero
   (or below) gives no scale for a relative increase: if the metric also has an absolute `max`, that
   limit alone judges; otherwise the canary must not be above the stable value.
5. otherwise Successful.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from modelops.api.rollout_spec import Metric
from modelops.api.status import AnalysisStatus, MetricResult

Verdict = Literal["Successful", "Failed", "Inconclusive", "Error"]
SUCCESSFUL: Verdict = "Successful"
FAILED: Verdict = "Failed"
INCONCLUSIVE: Verdict = "Inconclusive"
ERROR: Verdict = "Error"

RunPhase = Literal["Successful", "Failed", "Inconclusive"]

NoDataPolicy = Literal["Inconclusive", "Failed"]

TRACK_CANARY = "canary"
TRACK_STABLE = "stable"


@dataclass(frozen=True)
class MetricReading:
    """What a provider measured for one metric over one window, for both tracks."""

    name: str
    canary: float | None
    stable: float | None = None
    samples: int = 0  # canary requests in the window: the evidence behind `canary`
    error: str | None = None  # the provider could not measure (unreachable, timeout, bad query)


@dataclass(frozen=True)
class RunResult:
    """One analysis run: every metric's result and the run's aggregate verdict."""

    verdict: RunPhase
    metrics: tuple[MetricResult, ...]

    @property
    def first_failure(self) -> MetricResult | None:
        """The first Failed metric, which names the reason of an abort."""
        return next((m for m in self.metrics if m.verdict == FAILED), None)

    @property
    def first_inconclusive(self) -> MetricResult | None:
        return next((m for m in self.metrics if m.verdict in (INCONCLUSIVE, ERROR)), None)


def _is_missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def describe_limit(metric: Metric, stable: float | None = None) -> str:
    """The limits of a metric as a person reads them, e.g. `max 0.02, stable +20% (0.3)`."""
    parts: list[str] = []
    if metric.max is not None:
        parts.append(f"max {_fmt(metric.max)}")
    if metric.min is not None:
        parts.append(f"min {_fmt(metric.min)}")
    if metric.vs_stable is not None:
        text = f"stable +{_fmt(metric.vs_stable.max_increase * 100)}%"
        if not _is_missing(stable) and stable is not None and stable > 0:
            text += f" ({_fmt(stable * (1 + metric.vs_stable.max_increase))})"
        parts.append(text)
    return ", ".join(parts)


def judge_metric(
    metric: Metric,
    reading: MetricReading | None,
    min_requests: int,
    no_data: NoDataPolicy,
    measured_at: str,
) -> MetricResult:
    """Judge one metric's reading against its absolute limits and the stable track."""
    canary = None if reading is None or _is_missing(reading.canary) else reading.canary
    stable = None if reading is None or _is_missing(reading.stable) else reading.stable
    samples = reading.samples if reading is not None else 0

    def result(verdict: Verdict, message: str) -> MetricResult:
        return MetricResult(
            name=metric.name,
            value=canary,
            stable_value=stable,
            limit=describe_limit(metric, stable)[:256],
            verdict=verdict,
            samples=samples,
            message=message[:1024],
            measured_at=measured_at,
        )

    silent: Verdict = FAILED if no_data == "Failed" else INCONCLUSIVE
    if reading is None:
        return result(silent, f"{metric.name}: no reading")
    if reading.error is not None:
        return result(ERROR, f"{metric.name}: {reading.error}")
    if samples < min_requests:
        return result(silent, f"{metric.name}: only {samples} requests, {min_requests} needed")
    if canary is None:
        return result(silent, f"{metric.name}: no data for the canary")
    if metric.max is not None and canary > metric.max:
        return result(FAILED, f"{metric.name} = {_fmt(canary)} above max {_fmt(metric.max)}")
    if metric.min is not None and canary < metric.min:
        return result(FAILED, f"{metric.name} = {_fmt(canary)} below min {_fmt(metric.min)}")
    if metric.vs_stable is not None:
        if stable is None:
            return result(silent, f"{metric.name}: no data for the stable track to compare with")
        increase = metric.vs_stable.max_increase
        if stable > 0:
            allowed = stable * (1 + increase)
            if canary > allowed:
                return result(
                    FAILED,
                    f"{metric.name} = {_fmt(canary)} above stable {_fmt(stable)} "
                    f"+{_fmt(increase * 100)}% = {_fmt(allowed)}",
                )
        elif metric.max is None and canary > stable:
            # A zero stable value has no scale for a relative increase: any rise is unbounded.
            return result(FAILED, f"{metric.name} = {_fmt(canary)} above stable {_fmt(stable)}")
    return result(SUCCESSFUL, f"{metric.name} = {_fmt(canary)} within limits")


def judge_run(
    metrics: Sequence[Metric],
    readings: Sequence[MetricReading],
    min_requests: int,
    no_data: NoDataPolicy,
    measured_at: str,
) -> RunResult:
    """Judge every metric; the run Fails if any metric Failed, is Inconclusive if any was
    Inconclusive or Error, and is Successful only when every metric was."""
    by_name = {r.name: r for r in readings}
    results = tuple(judge_metric(m, by_name.get(m.name), min_requests, no_data, measured_at) for m in metrics)
    verdicts = {r.verdict for r in results}
    phase: RunPhase
    if FAILED in verdicts:
        phase = "Failed"
    elif verdicts & {INCONCLUSIVE, ERROR} or not results:
        phase = "Inconclusive"
    else:
        phase = "Successful"
    return RunResult(verdict=phase, metrics=results)


def record_run(analysis: AnalysisStatus | None, run: RunResult, measured_at: str) -> AnalysisStatus:
    """Fold one run into status.analysis: totals for the canary, plus the in-a-row counters."""
    current = analysis or AnalysisStatus()
    success = run.verdict == "Successful"
    failed = run.verdict == "Failed"
    inconclusive = run.verdict == "Inconclusive"
    return current.model_copy(
        update={
            "phase": run.verdict,
            "successes": current.successes + int(success),
            "failures": current.failures + int(failed),
            "inconclusives": current.inconclusives + int(inconclusive),
            "consecutive_successes": current.consecutive_successes + 1 if success else 0,
            "consecutive_inconclusives": current.consecutive_inconclusives + 1 if inconclusive else 0,
            "last_run_at": measured_at,
            "metrics": list(run.metrics),
        }
    )
