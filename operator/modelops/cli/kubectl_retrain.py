"""The retraining side of `kubectl modelops`: `retrain [--reset]`, `approve`, `retrain export`, and the
Retraining block of `status`.

Pure functions over the ModelDeployment as the API returns it; the plugin (modelops.cli.kubectl) does
the I/O. `retrain` and `approve` are command annotations (`modelops.dev/retrain`, `modelops.dev/approve`)
the controller parses with modelops.retraining.observed.parse_retrain_commands; `export` prints the
`spec.model` patch of the retrained model, for a person to commit to Git (the operator never writes spec).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus, RetrainCandidate, RetrainingStatus
from modelops.cli.kubectl_requests import Request
from modelops.retraining.observed import COMMAND_APPROVE, COMMAND_RETRAIN, RETRAIN_RESET

NONE = "-"


def describe(request: Request) -> str:
    if request.command == COMMAND_RETRAIN:
        return "retrain --reset" if request.value == RETRAIN_RESET else "retrain"
    return "approve the retrained candidate"


def refusal(request: Request, spec: ModelDeploymentSpec | None, status: ModelDeploymentStatus) -> str | None:
    """Why the controller would ignore this retraining request, or None when it may act."""
    if spec is not None and spec.retraining is None:
        return "spec.retraining is not set"
    rs = status.retraining or RetrainingStatus()
    if request.command == COMMAND_APPROVE:
        if rs.candidate is None:
            return "no retrained candidate is waiting"
        if rs.candidate.approved:
            return f"candidate {rs.candidate.model.version} is already approved"
        if spec is not None and spec.retraining is not None and spec.retraining.promotion == "Auto":
            return "promotion is Auto: the candidate goes out without approval"
        return None
    if request.value == RETRAIN_RESET:
        if not rs.blocked and not rs.drift_persists and rs.consecutive_rejections == 0:
            return "nothing to reset: retraining is neither blocked nor held by DriftPersists"
        return None
    if rs.job is not None:
        return f"Job {rs.job.name} is still running"
    if rs.blocked:
        return f"retraining is blocked ({rs.blocked_reason or 'too many rejections'}); use retrain --reset first"
    return None


def export_patch(obj: Mapping[str, Any], output: str = "yaml") -> str:
    """The `spec.model` of the retrained model the pods run (or would run), as a patch to commit."""
    spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
    status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    name = (obj.get("metadata") or {}).get("name", NONE)
    rs = status.retraining
    chosen: RetrainCandidate | None = None
    if rs is not None:
        # The newest retrained model that still applies to this spec.model: a recorded candidate (committing
        # it is the Git way to approve), else the promoted one that serves now.
        for option in (rs.candidate, rs.promoted):
            if option is not None and option.replaces_model == spec.model:
                chosen = option
                break
    if chosen is None:
        raise ValueError(f"{name} has no retrained model to export (spec.model is what runs)")
    patch = {"spec": {"model": chosen.model.wire()}}
    if output == "json":
        return json.dumps(patch, sort_keys=True) + "\n"
    gate = chosen.gate
    scored = f", gate {gate.metric} {_num(gate.candidate)} vs {_num(gate.current)}" if gate else ""
    header = (f"# {name}: retrained model {chosen.model.version} from Job {chosen.job}{scored}.\n"
              f"# Commit this to the ModelDeployment's spec.model in Git "
              f"(it replaces {chosen.replaces_model.version}).\n")
    return header + yaml.safe_dump(patch, sort_keys=False)


def _num(value: float | None) -> str:
    return NONE if value is None else f"{value:.4g}"


def retraining_lines(spec: ModelDeploymentSpec | None, status: ModelDeploymentStatus, now: datetime,
                     age: Any, field: Any) -> list[str]:
    """The Retraining block of `status`: last trigger, run, candidate, result, when the next run may start."""
    retraining = spec.retraining if spec is not None else None
    rs = status.retraining
    if retraining is None and rs is None:
        return []
    lines = [""]
    if retraining is not None:
        lines.append(field("Retraining", f"promotion {retraining.promotion}; triggers: {_triggers(spec)}"))
    else:
        lines.append(field("Retraining", "off (spec.retraining is not set)"))
    if rs is None:
        lines.append("  no trigger yet")
        return lines
    if rs.blocked:
        lines.append(field("BLOCKED", f"{rs.blocked_reason or 'too many rejections'}", "  "))
    if rs.drift_persists:
        lines.append(field("Drift", "persists against the retrained model; no retrain on drift until "
                           "`retrain --reset`", "  "))
    trig = rs.last_triggered
    if trig is not None:
        evidence = trig.signal + (f" {trig.value:.4g}" if trig.value is not None else "")
        sizes = [f"{trig.samples} samples" if trig.samples is not None else "",
                 f"{trig.window} window" if trig.window else ""]
        if any(sizes):
            evidence += f" ({', '.join(x for x in sizes if x)})"
        lines.append(field("Trigger", f"{evidence}, {age(trig.at, now)}" + (f": {trig.reason}" if trig.reason else ""),
                           "  "))
    runs = rs.runs
    run = f"{runs.count} runs, {runs.runs_today} today"
    if rs.job is not None:
        run = f"{rs.job.name} {rs.job.phase}, started {age(rs.job.started_at, now)} ({run})"
    lines.append(field("Runs", run, "  "))
    if rs.candidate is not None:
        c = rs.candidate
        gate = f"; gate {c.gate.metric} {_num(c.gate.candidate)} vs {_num(c.gate.current)}" if c.gate else ""
        waiting = "" if c.approved or (retraining is not None and retraining.promotion == "Auto") \
            else "; waiting for `kubectl modelops approve`"
        lines.append(field("Candidate", f"v{c.model.version} ({c.sha256[:12]}) from {c.job}{gate}{waiting}", "  "))
    if rs.promoted is not None:
        lines.append(field("Retrained", f"v{rs.promoted.model.version} ({rs.promoted.sha256[:12]}) serves; "
                           "`kubectl modelops retrain export` prints the spec.model to commit", "  "))
    if rs.last_result is not None:
        r = rs.last_result
        reason = f" {r.reason}" if r.reason else ""
        lines.append(field("Result", f"{r.outcome}{reason} {age(r.at, now)}: {r.message}", "  "))
    if rs.last_dropped is not None and (rs.last_result is None or rs.last_dropped.at >= rs.last_result.at):
        d = rs.last_dropped
        lines.append(field("Dropped", f"{d.reason} {age(d.at, now)}: {d.message}", "  "))
    if rs.next_run_after:
        lines.append(field("Next run", f"not before {rs.next_run_after} ({age(rs.next_run_after, now)})", "  "))
    return lines


def _triggers(spec: ModelDeploymentSpec | None) -> str:
    if spec is None or spec.retraining is None:
        return NONE
    t = spec.retraining.triggers
    parts = []
    if t.drift is not None:
        limit = f"PSI > {t.drift.threshold:g}" if t.drift.threshold is not None else "PSI > derived threshold"
        parts.append(f"drift ({limit}, >= {t.drift.min_samples} samples, for {t.drift.for_duration})")
    if t.quality is not None:
        bound = f"< {t.quality.below:g}" if t.quality.below is not None else f"> {t.quality.above:g}"
        parts.append(f"quality ({t.quality.metric} {bound} for {t.quality.for_duration})")
    if t.promql is not None:
        parts.append(f"promql (> {t.promql.above:g} for {t.promql.for_duration})")
    if t.schedule is not None:
        parts.append(f"schedule {t.schedule!r}")
    return ", ".join(parts)
