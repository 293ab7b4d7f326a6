"""Text views of a ModelDeployment for `kubectl modelops status` and `kubectl modelops history`.

Pure functions: a ModelDeployment as the API returns it (a dict) and `now` in, text out. The
plugin (modelops.cli.kubectl) fetches the object and prints what these return; the unit tests in
tests/unit/cli/ call them with hand-written statuses. Phase and step wording come from
modelops.rollout.phase so the plugin says what the controller means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelops.api.durations import parse_duration
from modelops.api.rollout_spec import Step
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import (
    AnalysisStatus,
    CanaryStatus,
    Condition,
    HistoryEntry,
    ModelDeploymentStatus,
    TrackStatus,
)
from modelops.api.timefmt import as_utc, format_time, parse_time
from modelops.cli.kubectl_retrain import retraining_lines
from modelops.rollout.phase import describe_step, pause_remaining

STATUS_HISTORY_ENTRIES = 5  # the status view shows the newest few; `history` shows all
NONE = "-"


def parse_spec(obj: Mapping[str, Any]) -> ModelDeploymentSpec | None:
    """The object's spec, or None when it does not parse (the view then says less, but still renders)."""
    try:
        return ModelDeploymentSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return None


def parse_status(obj: Mapping[str, Any]) -> ModelDeploymentStatus:
    """The object's status (empty before the operator's first reconcile); ValidationError if malformed."""
    return ModelDeploymentStatus.model_validate(obj.get("status") or {})


# ------------------------------------------------------------------ small formatters


def human_duration(seconds: float) -> str:
    """A duration the way kubectl prints ages: 45s, 3m20s, 2h5m, 3d4h."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    minutes, sec = divmod(s, 60)
    if minutes < 10:
        return f"{minutes}m{sec}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 3:
        return f"{hours * 60 + minutes}m" if hours == 0 else (f"{hours}h{minutes}m" if minutes else f"{hours}h")
    days, hours = divmod(hours, 24)
    if days == 0:
        return f"{hours}h{minutes}m" if hours < 8 and minutes else f"{hours}h"
    return f"{days}d{hours}h" if days < 8 and hours else f"{days}d"


def age(text: str | None, now: datetime) -> str:
    """`3m ago` for a status timestamp; `-` when absent or unreadable."""
    if not text:
        return NONE
    try:
        moment = parse_time(text)
    except ValueError:
        return text
    delta = (as_utc(now) - moment).total_seconds()
    if delta < 0:
        return f"in {human_duration(-delta)}"
    return f"{human_duration(delta)} ago"


def number(value: float | None) -> str:
    return NONE if value is None else f"{value:.4g}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Columns aligned as kubectl aligns them (three spaces apart, the last column unpadded)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = []
    for row in (header, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append((indent + "   ".join([*cells, str(row[-1])])).rstrip())
    return lines


def _field(label: str, value: str, indent: str = "") -> str:
    return f"{indent}{label + ':':<{14 - len(indent)}}{value}"


# ------------------------------------------------------------------ status


def render_status(obj: Mapping[str, Any], now: datetime) -> str:
    """The at-a-glance view of one ModelDeployment: what serves, what is moving, why, and what happened."""
    metadata = obj.get("metadata") or {}
    spec = parse_spec(obj)
    status = parse_status(obj)
    lines = [
        _field("Name", str(metadata.get("name", NONE))),
        _field("Namespace", str(metadata.get("namespace", NONE))),
        _field("Model", _model_line(spec)),
        _field("Phase", status.phase or NONE),
        _field("Message", status.message or _no_message(status)),
    ]
    generation = metadata.get("generation")
    if generation is not None and status.observed_generation != generation:
        # The most common "why does status look stale": the operator has not caught up with spec yet.
        lines.append(_field("Generation", f"{generation} (status is for {status.observed_generation or 'none'})"))
    lines += _stable_lines(status.stable)
    if status.canary is not None and status.canary.revision is not None:
        lines += _canary_lines(status.canary, spec, now)
    lines += _undo_lines(status, now)
    if status.analysis is not None and (status.canary is not None or status.analysis.metrics):
        lines += _analysis_lines(status.analysis, now)
    lines += retraining_lines(spec, status, now, age, _field)
    lines += _condition_lines(status.conditions, now, status.message)
    if status.history:
        shown = status.history[-STATUS_HISTORY_ENTRIES:]
        more = len(status.history) - len(shown)
        title = f"History (newest {len(shown)} of {len(status.history)}):" if more else "History:"
        lines += ["", title, *history_table(shown, now)]
    return "\n".join(lines) + "\n"


def _model_line(spec: ModelDeploymentSpec | None) -> str:
    if spec is None:
        return "(spec does not parse)"
    model = spec.model
    scaling = spec.serving.autoscaling
    size = (f"autoscaled {scaling.min_replicas}-{scaling.max_replicas} replicas" if scaling is not None
            else f"{spec.serving.replicas} replicas")
    return f"{model.name} v{model.version} ({model.format}, {model.uri}), {size}"


def _no_message(status: ModelDeploymentStatus) -> str:
    if status.phase is None:
        return "no status yet: the operator has not reconciled this object (is it running?)"
    return NONE


def _pods(track: TrackStatus | CanaryStatus) -> str:
    return f"{track.ready_replicas}/{track.replicas} ready"


def _stable_lines(stable: TrackStatus | None) -> list[str]:
    if stable is None or stable.revision is None:
        return ["", "Stable:       none yet"]
    return [
        "",
        "Stable:",
        _field("Revision", stable.revision, "  "),
        _field("Version", stable.model_version or NONE, "  "),
        _field("Pods", _pods(stable), "  "),
    ]


def _canary_lines(canary: CanaryStatus, spec: ModelDeploymentSpec | None, now: datetime) -> list[str]:
    state = "running"
    if canary.aborted:
        state = f"ABORTED: {canary.abort_reason or 'no reason recorded'}"
    elif canary.rollback:
        state = "rolling back (undo): full strength, then switched"
    elif canary.paused:
        state = "paused by user (resume or promote)"
    weight = f"{canary.weight}% desired, {canary.observed_weight}% observed"
    if canary.weight != canary.observed_weight:
        weight += " (router catching up)"
    lines = [
        "",
        "Canary:",
        _field("Revision", canary.revision or NONE, "  "),
        _field("Version", canary.model_version or NONE, "  "),
        _field("State", state, "  "),
        _field("Weight", weight, "  "),
        _field("Pods", _pods(canary), "  "),
    ]
    if canary.rollback:
        return lines  # an undo has no steps
    steps = spec.rollout.steps if spec is not None else None
    lines.append(_field("Step", _step_line(canary, steps, now), "  "))
    if steps:
        lines += _step_list(canary, steps, now)
    return lines


def _step_line(canary: CanaryStatus, steps: Sequence[Step] | None, now: datetime) -> str:
    if steps is None:
        return f"{canary.step_index + 1} (spec does not parse)"
    if canary.step_index >= len(steps):
        return f"{len(steps)}/{len(steps)} done: promoting"
    step = steps[canary.step_index]
    text = f"{canary.step_index + 1}/{len(steps)} {describe_step(step)}"
    if canary.step_started_at:
        text += f", started {age(canary.step_started_at, now)}"
    if canary.aborted:
        return text
    remaining = pause_remaining(step, canary.step_started_at, now)
    if remaining is not None and step.pause is not None and step.pause.duration:
        # The end time as well as the countdown: a --watch screen only redraws when the object changes.
        started = parse_time(canary.step_started_at) if canary.step_started_at else as_utc(now)
        ends = started + parse_duration(step.pause.duration)
        text += f"; {human_duration(remaining)} left (until {format_time(ends)})"
        if canary.paused:
            text += ", but paused by user"
    elif step.pause is not None:
        text += "; waiting for promote"
    elif step.analysis is not None:
        text += f"; {canary.analysis_step_successes}/{step.analysis.count} successful runs"
    return text


def _step_list(canary: CanaryStatus, steps: Sequence[Step], now: datetime) -> list[str]:
    lines = ["  Steps:"]
    for index, step in enumerate(steps):
        if index < canary.step_index:
            mark = "done"
        elif index == canary.step_index:
            mark = "STOPPED" if canary.aborted else "NOW ->"
        else:
            mark = ""
        lines.append(f"    {mark:>7}  {index + 1}. {describe_step(step)}")
    return lines


def _undo_lines(status: ModelDeploymentStatus, now: datetime) -> list[str]:
    lines: list[str] = []
    if status.previous is not None:
        previous = status.previous
        lines.append(
            _field("Previous", f"v{previous.model_version} ({previous.revision}) kept for a quick undo until "
                   f"{previous.until} ({age(previous.until, now)})")
        )
    if status.pinned is not None:
        pinned = status.pinned
        lines.append(
            _field("Pinned", f"v{pinned.model_version} ({pinned.revision}) by undo, until spec moves on from "
                   f"{pinned.replaces}")
        )
    return ["", *lines] if lines else []


def _analysis_lines(analysis: AnalysisStatus, now: datetime) -> list[str]:
    runs = f"{analysis.successes} successful, {analysis.failures} failed, {analysis.inconclusives} inconclusive"
    summary = f"{analysis.phase} (runs: {runs}; last {age(analysis.last_run_at, now)})"
    lines = ["", _field("Analysis", summary)]
    if not analysis.metrics:
        lines.append("  no measurement yet")
        return lines
    rows = [
        [m.name, number(m.value), number(m.stable_value), m.limit or NONE, m.verdict, str(m.samples),
         age(m.measured_at, now)]
        for m in analysis.metrics
    ]
    lines += table(["METRIC", "VALUE", "STABLE", "LIMIT", "VERDICT", "SAMPLES", "MEASURED"], rows)
    # Why a metric did not pass is the first thing an SRE asks; successful ones need no words.
    lines += [f"  {m.name}: {m.message}" for m in analysis.metrics if m.verdict != "Successful" and m.message]
    return lines


def _condition_lines(conditions: Sequence[Condition], now: datetime, message: str | None) -> list[str]:
    if not conditions:
        return []

    def said(text: str) -> str:
        # Conditions usually repeat the status message; saying it once keeps the table readable.
        return "(the message above)" if text and text == message else text or NONE

    rows = [[c.type, c.status, c.reason, age(c.last_transition_time, now), said(c.message)] for c in conditions]
    return ["", "Conditions:", *table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows)]


# ------------------------------------------------------------------ history


def history_table(entries: Sequence[HistoryEntry], now: datetime, indent: str = "  ") -> list[str]:
    if not any(e.source for e in entries):
        rows = [
            [e.revision, e.model_version, e.outcome, e.reason or NONE, f"{e.at} ({age(e.at, now)})"] for e in entries
        ]
        return table(["REVISION", "VERSION", "OUTCOME", "REASON", "AT"], rows, indent)
    rows = [
        [e.revision, e.model_version, e.source or NONE, e.outcome, e.reason or NONE, f"{e.at} ({age(e.at, now)})"]
        for e in entries
    ]
    return table(["REVISION", "VERSION", "SOURCE", "OUTCOME", "REASON", "AT"], rows, indent)


def render_history(obj: Mapping[str, Any], now: datetime) -> str:
    """`kubectl modelops history`: the bounded status.history, oldest first, and what serves now."""
    status = parse_status(obj)
    name = (obj.get("metadata") or {}).get("name", NONE)
    if not status.history:
        return f"no history yet for {name}\n"
    lines = history_table(status.history, now, indent="")
    if status.stable is not None and status.stable.revision is not None:
        lines.append("")
        lines.append(f"stable now: v{status.stable.model_version} ({status.stable.revision})")
    if status.canary is not None and status.canary.revision is not None:
        lines.append(f"canary now: v{status.canary.model_version} ({status.canary.revision})")
    return "\n".join(lines) + "\n"
