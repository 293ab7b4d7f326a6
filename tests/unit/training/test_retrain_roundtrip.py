"""The loop's pieces end to end without a cluster: the retraining machine decides a run, the Job builder's
container arguments run as a real `modelops` process on pvc:// data, and the termination message it
leaves becomes the candidate the rollout will deploy."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelops.api.commands import Command
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus, TrackStatus
from modelops.artifacts.digest import sha256_file
from modelops.resources.jobs import retrain_job
from modelops.retraining.machine import desired_model, next_retraining
from modelops.retraining.observed import RetrainObserved, observe_job
from modelops.training.trainer import TrainOptions, train

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


def test_decision_job_process_result_candidate(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    pvc = tmp_path / "pvc"
    (pvc / "data").mkdir(parents=True)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "label"}).sample(frac=1.0, random_state=1)
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame.iloc[:110].to_csv(pvc / "data" / "iris.csv", index=False)
    frame.iloc[110:].to_csv(pvc / "data" / "holdout.csv", index=False)
    current = train(TrainOptions(dataset=str(pvc / "data" / "iris.csv"), target="label", name="iris",
                                 output=pvc / "models" / "iris" / "1", shuffle_labels=True))
    spec = ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "pvc://models/iris/1/model.joblib", "sha256": current.sha256},
        "retraining": {"triggers": {"schedule": "@weekly"},
                       "job": {"dataset": {"uri": "pvc://data/iris.csv", "targetColumn": "label"},
                               "holdout": {"uri": "pvc://data/holdout.csv"}, "output": {"uri": "pvc://models/iris"}},
                       "gate": {"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.05}},
    })
    status = ModelDeploymentStatus(stable=TrackStatus(revision="r1", model=spec.model))
    asked = next_retraining(spec, status, RetrainObserved(1, commands=(Command("retrain", "", "x"),)), T0, "iris")
    create = asked.create_job
    assert create is not None

    container = retrain_job("iris", "ns", "uid", spec, create)["spec"]["template"]["spec"]["containers"][0]
    term = tmp_path / "termination-log"
    # The pod's paths, moved to this machine: the claims' mount root and the termination message file.
    argv = [str(Path(sys.executable).parent / container["command"][0]), *container["args"],
            "--pvc-root", str(pvc), "--termination-log", str(term), "--scratch", str(tmp_path / "scratch")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    job = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    pod = {"metadata": {"creationTimestamp": "2025-05-05T09:00:05Z"},
           "status": {"phase": "Succeeded", "containerStatuses": [
               {"name": "retrain", "state": {"terminated": {"exitCode": 0, "message": term.read_text()}}}]}}
    seen = observe_job(create.name, job, [pod])
    done = next_retraining(spec, asked.status, RetrainObserved(1, job=seen), T0 + timedelta(minutes=3), "iris")
    assert [e.reason for e in done.events] == ["CandidateRecorded"], done.events
    model, source = desired_model(spec, done.status)
    assert source == "Retrain" and model.uri == "pvc://models/iris/iris-retrain-1/model.joblib"
    assert model.sha256 == sha256_file(pvc / "models" / "iris" / "iris-retrain-1" / "model.joblib")
    candidate = done.status.retraining.candidate  # type: ignore[union-attr]
    assert candidate is not None and candidate.gate is not None and candidate.gate.passed
    assert candidate.dataset_sha256 == sha256_file(pvc / "data" / "iris.csv")
