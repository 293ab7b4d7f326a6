"""`kubectl modelops retrain [--reset]`, `approve`, `retrain export` and the Retraining block of `status`:
requests the controller parses and acts on, refusals said at once, and the export a person commits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from modelops.cli import kubectl_retrain
from modelops.cli.kubectl import parse_args
from modelops.cli.kubectl_requests import new_request
from modelops.cli.kubectl_view import render_status
from modelops.retraining.machine import next_retraining
from modelops.retraining.observed import JobObservation, RetrainObserved, parse_retrain_commands

from tests.unit.retraining.helpers import MDEP, T0, drift, make_spec, stable_status, tick, trained


def obj(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> dict[str, Any]:
    return {"metadata": {"name": MDEP, "namespace": "ml", "generation": 1}, "spec": spec.wire(),
            "status": status.wire()}


def with_candidate(spec: ModelDeploymentSpec) -> ModelDeploymentStatus:
    a = tick(spec, stable_status(), T0, drift_obs=drift(0.9))
    b = tick(spec, a.status, T0 + timedelta(minutes=5), drift_obs=drift(0.9))
    name = b.create_job.name  # type: ignore[union-attr]
    return tick(spec, b.status, T0 + timedelta(minutes=10),
                job=JobObservation(name, "Succeeded", result=trained())).status


def test_arguments() -> None:
    assert (parse_args(["retrain", "iris"]).name, parse_args(["retrain", "iris"]).export) == ("iris", False)
    assert parse_args(["retrain", "iris", "--reset"]).reset
    exported = parse_args(["retrain", "export", "iris", "-o", "json"])
    assert (exported.name, exported.export, exported.output) == ("iris", True, "json")
    assert parse_args(["approve", "iris", "--wait"]).wait
    with pytest.raises(SystemExit):
        parse_args(["retrain", "iris", "other"])


def test_requests_reach_the_controller_and_act() -> None:
    spec = make_spec(promotion="Manual")
    status = with_candidate(spec)
    approve = new_request("approve")
    assert kubectl_retrain.refusal(approve, spec, status) is None
    commands = parse_retrain_commands({approve.annotation: approve.annotation_value})
    decision = next_retraining(spec, status, RetrainObserved(1, commands=commands), T0 + timedelta(hours=1), MDEP)
    assert decision.status.retraining.candidate.approved  # type: ignore[union-attr]
    assert decision.status.handled_commands["approve"] == approve.nonce
    # Asked again: the plugin says at once it is already approved.
    assert "already approved" in str(kubectl_retrain.refusal(new_request("approve"), spec, decision.status))


def test_refusals() -> None:
    spec = make_spec()
    assert "Auto" in str(kubectl_retrain.refusal(new_request("approve"), spec, with_candidate(spec)))
    assert "no retrained candidate" in str(kubectl_retrain.refusal(new_request("approve"), spec, stable_status()))
    assert "nothing to reset" in str(kubectl_retrain.refusal(new_request("retrain", "reset"), spec, stable_status()))
    off = spec.model_copy(update={"retraining": None})
    assert "not set" in str(kubectl_retrain.refusal(new_request("retrain"), off, stable_status()))
    running = tick(spec, stable_status(), T0, commands=(parse_retrain_commands({"modelops.dev/retrain": "n"})))
    assert "still running" in str(kubectl_retrain.refusal(new_request("retrain"), spec, running.status))


def test_export_prints_the_spec_model_patch_to_commit() -> None:
    spec = make_spec(promotion="Manual")
    status = with_candidate(spec)
    text = kubectl_retrain.export_patch(obj(spec, status))
    assert text.startswith(f"# {MDEP}: retrained model 1-r1 from Job {MDEP}-retrain-1, gate accuracy 0.95 vs 0.9")
    patch = yaml.safe_load(text)
    assert patch == {"spec": {"model": status.retraining.candidate.model.wire()}}  # type: ignore[union-attr]
    assert ModelDeploymentSpec.model_validate({**spec.wire(), **patch["spec"]}).model.version == "1-r1"
    with pytest.raises(ValueError, match="no retrained model"):
        kubectl_retrain.export_patch(obj(spec, stable_status()))


def test_status_shows_the_retraining_block() -> None:
    spec = make_spec(promotion="Manual")
    status = with_candidate(spec)
    text = render_status(obj(spec, status), T0 + timedelta(minutes=12))
    block = text[text.index("Retraining:"):]
    assert "promotion Manual; triggers: drift (PSI > derived threshold, >= 100 samples, for 5m)" in block
    assert "Trigger:    Drift 0.9 (500 samples, 10m window), 7m ago: PSI of f0 0.9 > 0.1, held 300s" in block
    assert "Runs:" in block and "1 runs, 1 today" in block
    assert f"Candidate:  v1-r1 (bbbbbbbbbbbb) from {MDEP}-retrain-1; gate accuracy 0.95 vs 0.9; waiting for" in block
    assert "Result:" in block and "CandidateRecorded" in block
    assert "Next run:" in block and "2025-03-03T13:05:00Z" in block
