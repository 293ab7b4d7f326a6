"""The retraining signals: drift of the stable track, quality, PromQL and cron, each a breach that
must hold `forDuration` before it fires, plus a manual request. Called by `machine.next_retraining`
once per pass; what fired goes on to the guardrails (`machine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from modelops.api.durations import parse_duration
from modelops.api.status import RetrainSignal, RetrainTrigger
from modelops.api.timefmt import format_time, parse_time
from modelops.retraining.context import Tick
from modelops.retraining.observed import PREDICTION_SERIES, DriftObservation
from modelops.retraining.threshold import derived_threshold

# When several signals fire in one tick the run's evidence names the first of these.
SIGNAL_ORDER: tuple[RetrainSignal, ...] = ("Manual", "Drift", "Quality", "PromQL", "Schedule")


@dataclass(frozen=True)
class Fired:
    """What fired this pass: the evidence of the first signal (by SIGNAL_ORDER) and every signal that fired."""

    trigger: RetrainTrigger
    signals: tuple[RetrainSignal, ...]


def fired_signals(tick: Tick, manual: bool) -> Fired | None:
    """Update each signal's breach and return what fired this tick (the first by SIGNAL_ORDER)."""
    triggers = tick.retraining.triggers
    since = dict(tick.rs.breach_since)
    evidence: dict[RetrainSignal, RetrainTrigger] = {}
    if manual:
        evidence["Manual"] = RetrainTrigger(at=tick.stamp, signal="Manual", reason="kubectl modelops retrain")
    if triggers.drift is not None and tick.observed.drift is not None:
        breach = _drift_breach(tick, tick.observed.drift)
        _hold(tick, since, "Drift", breach, parse_duration(triggers.drift.for_duration), evidence)
    if triggers.quality is not None and tick.observed.quality is not None:
        _hold(tick, since, "Quality", _quality_breach(tick), parse_duration(triggers.quality.for_duration), evidence)
    if triggers.promql is not None and tick.observed.promql is not None:
        _hold(tick, since, "PromQL", _promql_breach(tick), parse_duration(triggers.promql.for_duration), evidence)
    if triggers.schedule is not None:
        fire = _schedule_fired(tick, triggers.schedule)
        if fire is not None:
            evidence["Schedule"] = RetrainTrigger(at=tick.stamp, signal="Schedule",
                                                  reason=f"schedule {triggers.schedule!r} fired at {format_time(fire)}")
    for signal in evidence:
        since.pop(signal, None)  # fired: a run or a drop; either way the breach starts over
    tick.update(breach_since=since)
    if not evidence:
        return None
    first = next(s for s in SIGNAL_ORDER if s in evidence)
    return Fired(evidence[first], tuple(s for s in SIGNAL_ORDER if s in evidence))


def _hold(tick: Tick, since: dict[str, str], signal: RetrainSignal, breach: RetrainTrigger | None,
          hold: timedelta, evidence: dict[RetrainSignal, RetrainTrigger]) -> None:
    if breach is None:
        since.pop(signal, None)
        return
    began = parse_time(since[signal]) if signal in since else tick.now
    since[signal] = format_time(began)
    if tick.now - began >= hold:
        evidence[signal] = breach.model_copy(update={"reason": f"{breach.reason}, held {_dur(tick.now - began)}"})
    else:
        tick.wake.append(began + hold)


def _dur(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def _drift_breach(tick: Tick, drift: DriftObservation) -> RetrainTrigger | None:
    """The worst breaching series of the stable track's window, or None (no breach, or too few rows)."""
    config = tick.retraining.triggers.drift
    assert config is not None
    stable = tick.status.stable.revision if tick.status.stable is not None else None
    if stable is None or drift.revision != stable:
        return None  # only the stable track's traffic is evidence
    watched = set(config.features) | {PREDICTION_SERIES} if config.features else None
    readings = [r for r in drift.readings if watched is None or r.series in watched]
    if not readings or any(r.samples < config.min_samples for r in readings):
        return None
    worst: tuple[float, str, float, int] | None = None
    for reading in readings:
        limit = config.threshold
        if limit is None:
            limit = derived_threshold(reading.samples, reading.bins, len(readings), config.significance,
                                      config.min_psi)
        if not math.isfinite(reading.psi) or reading.psi <= limit:
            continue
        ratio = reading.psi / limit if limit > 0 else math.inf
        if worst is None or ratio > worst[0]:
            worst = (ratio, reading.series, limit, reading.samples)
    if worst is None:
        return None
    _, series, limit, samples = worst
    psi = next(r.psi for r in readings if r.series == series)
    return RetrainTrigger(at=tick.stamp, signal="Drift", value=psi, samples=samples,
                          window=config.window, reason=f"PSI of {series} {psi:.3g} > {limit:.3g}")


def _quality_breach(tick: Tick) -> RetrainTrigger | None:
    config = tick.retraining.triggers.quality
    reading = tick.observed.quality
    assert config is not None and reading is not None
    stable = tick.status.stable.revision if tick.status.stable is not None else None
    if reading.revision != stable or reading.value is None or reading.samples < config.min_samples:
        return None
    if reading.metric != config.metric:
        return None
    if config.metric == "accuracy" and config.below is not None and reading.value < config.below:
        why = f"accuracy {reading.value:.4g} < {config.below:g}"
    elif config.metric == "mae" and config.above is not None and reading.value > config.above:
        why = f"mae {reading.value:.4g} > {config.above:g}"
    else:
        return None
    window = f"{int(reading.window_seconds)}s" if reading.window_seconds else None
    return RetrainTrigger(at=tick.stamp, signal="Quality", value=reading.value, samples=reading.samples,
                          window=window, reason=why)


def _promql_breach(tick: Tick) -> RetrainTrigger | None:
    config = tick.retraining.triggers.promql
    reading = tick.observed.promql
    assert config is not None and reading is not None
    if reading.value is None or not math.isfinite(reading.value) or reading.value <= config.above:
        return None
    return RetrainTrigger(at=tick.stamp, signal="PromQL", value=reading.value,
                          reason=f"query {reading.value:.4g} > {config.above:g}")


CRON_SHORTHANDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                   "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _schedule_fired(tick: Tick, schedule: str) -> datetime | None:
    """The newest cron time in (last check, now], or None; the first tick only starts the clock."""
    schedule = CRON_SHORTHANDS.get(schedule, schedule)
    checked = tick.rs.schedule_checked_at
    naive_now = tick.now.replace(tzinfo=None)
    try:
        upcoming = next(CronSim(schedule, naive_now))
    except (CronSimError, StopIteration):
        return None  # the CRD's regex let through something cron does not accept; nothing to fire
    tick.wake.append(upcoming.replace(tzinfo=UTC))
    if checked is None:
        # The clock starts now; afterwards it moves only when a fire is handled, so a quiet tick writes nothing.
        tick.update(schedule_checked_at=tick.stamp)
        return None
    last = parse_time(checked).replace(tzinfo=None)
    # CronSim iterates strictly after its start; the newest fire <= now is one step back from now+1s.
    previous = next(CronSim(schedule, naive_now + timedelta(seconds=1), reverse=True), None)
    if previous is not None and last < previous <= naive_now:
        tick.update(schedule_checked_at=tick.stamp)
        return previous.replace(tzinfo=UTC)
    return None
