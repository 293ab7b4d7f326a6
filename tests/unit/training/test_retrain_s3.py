"""Retraining from and to s3://: a team whose models live on S3 retrains like one on a PVC.

Against a real S3-compatible server on loopback (tests/unit/conftest.py), with credentials from the
environment as the Job gets them from `spec.retraining.job.credentialsSecret`: the dataset, the holdout
and the current model are read from the bucket, the candidate is written to it, and what was written is
a model directory `modelops fetch` verifies and the server loads.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelops.artifacts.digest import sha256_file
from modelops.artifacts.store import ArtifactStore, s3_client
from modelops.cli.main import main
from modelops.loading.loader import load_model_dir
from modelops.retraining.result import parse_result
from modelops.training.trainer import TrainOptions, train

MODELOPS = str(Path(sys.executable).parent / "modelops")
BUCKET = "models"  # the s3 fixture's bucket


@pytest.fixture()
def on_s3(s3: str, tmp_path: Path) -> dict[str, str]:
    """Given a team's bucket: a training set, a frozen holdout and the model serving now (a bad one)."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame = frame.rename(columns={"target": "label"}).sample(frac=1.0, random_state=0)
    frame.iloc[:110].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[110:].to_csv(tmp_path / "holdout.csv", index=False)
    train(TrainOptions(dataset=str(tmp_path / "train.csv"), output=tmp_path / "current", target="label",
                       shuffle_labels=True, name="iris"))
    client = s3_client()
    uploads = {"data/train.csv": tmp_path / "train.csv", "data/holdout.csv": tmp_path / "holdout.csv",
               "iris/1/model.joblib": tmp_path / "current" / "model.joblib",
               "iris/1/metadata.json": tmp_path / "current" / "metadata.json"}
    for key, path in uploads.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    return {"train": f"s3://{BUCKET}/data/train.csv", "holdout": f"s3://{BUCKET}/data/holdout.csv",
            "current": f"s3://{BUCKET}/iris/1/model.joblib",
            "current_sha256": sha256_file(tmp_path / "current" / "model.joblib"),
            "train_sha256": sha256_file(tmp_path / "train.csv"),
            "holdout_sha256": sha256_file(tmp_path / "holdout.csv")}


def test_a_job_trains_from_s3_and_writes_the_candidate_to_s3(on_s3: dict[str, str], tmp_path: Path) -> None:
    # When the Job's own process runs with the builder's arguments, all of them s3:// URIs,
    term = tmp_path / "termination-log"
    output = f"s3://{BUCKET}/iris/retrain-1"
    proc = subprocess.run(
        [MODELOPS, "retrain-job", "--dataset", on_s3["train"], "--target", "label",
         "--dataset-sha256", on_s3["train_sha256"], "--holdout", on_s3["holdout"],
         "--holdout-sha256", on_s3["holdout_sha256"], "--current", on_s3["current"],
         "--current-sha256", on_s3["current_sha256"], "--output", output, "--name", "iris", "--version", "1-r1",
         "--gate-metric", "accuracy", "--min-value", "0.8", "--min-improvement", "0.05",
         "--termination-log", str(term), "--scratch", str(tmp_path / "scratch")],
        capture_output=True, text=True, timeout=300)
    # then the candidate passed the gate against the current model read from the bucket,
    assert proc.returncode == 0, proc.stderr
    result = parse_result(term.read_text())
    assert result.outcome == "Trained" and result.gate is not None and result.gate.passed
    assert result.uri == f"{output}/model.joblib"
    assert result.dataset_sha256 == on_s3["train_sha256"] and result.holdout_sha256 == on_s3["holdout_sha256"]
    # the bucket holds a whole model directory with its lineage,
    store = ArtifactStore()
    assert store.list_files(output) == [f"{output}/{name}" for name in ("metadata.json", "model.joblib",
                                                                        "model.sha256")]
    meta = json.loads(store.read_bytes(f"{output}/metadata.json"))
    assert meta["sha256"] == result.sha256
    assert meta["lineage"]["dataset"] == {"uri": on_s3["train"], "sha256": on_s3["train_sha256"]}
    assert meta["lineage"]["parent"] == {"uri": on_s3["current"], "sha256": on_s3["current_sha256"]}
    # and that candidate is what a serving pod's fetch step verifies and its server loads.
    assert result.sha256 is not None
    served = tmp_path / "served"
    assert main(["fetch", result.uri, "--sha256", result.sha256, "--output", str(served)]) == 0
    loaded = load_model_dir(served)
    assert loaded.sha256 == result.sha256 and loaded.metadata.version == "1-r1"


def test_a_rejected_candidate_is_still_written_and_reported(on_s3: dict[str, str], tmp_path: Path) -> None:
    term = tmp_path / "termination-log"
    output = f"s3://{BUCKET}/iris/retrain-2"
    code = main(["retrain-job", "--dataset", on_s3["train"], "--target", "label", "--holdout", on_s3["holdout"],
                 "--current", on_s3["current"], "--current-sha256", on_s3["current_sha256"], "--output", output,
                 "--name", "iris", "--version", "1-r2", "--gate-metric", "accuracy", "--min-value", "0.99",
                 "--termination-log", str(term), "--scratch", str(tmp_path / "scratch"), "--", "--shuffle-labels"])
    assert code == 0  # a rejection is a result
    result = parse_result(term.read_text())
    assert result.outcome == "Rejected"
    assert ArtifactStore().read_bytes(f"{output}/model.sha256").decode().strip() == result.sha256


def test_from_serving_reads_the_request_log_on_s3(s3: str, tmp_path: Path) -> None:
    # Given servers that log to the bucket (spec.retraining.job.dataset.fromServing with an s3:// output),
    from modelops.serving.datalog import RequestLog, RequestLogConfig
    from modelops.serving.feedback import Label

    served = f"s3://{BUCKET}/iris/served"
    log = RequestLog(RequestLogConfig(served, max_rows=64), ["a", "b"], "iris", "1", "r1").start()
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(120, 2))
    for i, row in enumerate(rows):
        log.offer(f"r{i}", row.reshape(1, -1), np.array([0]))
    log.labels([Label(f"r{i}", 0, int(rows[i, 0] > 0)) for i in range(100)])
    log.close()
    assert log.failed_files == 0
    # when the Job trains on that log and writes to the same bucket,
    term = tmp_path / "term"
    assert main(["retrain-job", "--from-serving", served, "--output", f"s3://{BUCKET}/iris/retrain-3",
                 "--name", "iris", "--version", "2", "--termination-log", str(term),
                 "--scratch", str(tmp_path / "scratch")]) == 0
    # then it trained on the 100 labelled rows.
    result = parse_result(term.read_text())
    assert result.outcome == "Trained" and result.rows == 100
    meta = pd.read_json(io.BytesIO(ArtifactStore().read_bytes(f"s3://{BUCKET}/iris/retrain-3/metadata.json")),
                        typ="series")
    assert [f["name"] for f in meta["features"]] == ["a", "b"]


def test_a_missing_dataset_on_s3_fails_naming_it(s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["retrain-job", "--dataset", f"s3://{BUCKET}/data/nope.csv", "--output", f"s3://{BUCKET}/x",
                 "--name", "iris", "--version", "1", "--termination-log", str(tmp_path / "t"),
                 "--scratch", str(tmp_path / "scratch")])
    assert code == 2
    assert f"s3://{BUCKET}/data/nope.csv: does not exist" in capsys.readouterr().err


def test_modelops_train_reads_its_dataset_from_s3(on_s3: dict[str, str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--dataset", on_s3["train"], "--target", "label", "--output", str(tmp_path / "m")]) == 0
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert meta["dataset"] == on_s3["train"] and meta["name"] == "train"
    assert main(["train", "--dataset", f"s3://{BUCKET}/data/nope.csv", "--output", str(tmp_path / "n")]) == 2
    assert "does not exist" in capsys.readouterr().err
