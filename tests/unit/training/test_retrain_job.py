"""`modelops retrain-job` and `modelops evaluate` as the Job runs them: real processes on real files.

Given a current model and a dataset, the run trains a candidate with lineage, scores both on the
frozen holdout, and leaves the result JSON where the kubelet reads the termination message; the
retraining machine's parser reads it back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelops.artifacts.digest import sha256_file
from modelops.cli.main import main
from modelops.retraining.result import parse_result
from modelops.training.trainer import TrainOptions, train

MODELOPS = str(Path(sys.executable).parent / "modelops")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("retrain")
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame = frame.rename(columns={"target": "label"}).sample(frac=1.0, random_state=0)
    (root / "data").mkdir()
    frame.iloc[:110].to_csv(root / "data" / "train.csv", index=False)
    frame.iloc[110:].to_csv(root / "data" / "holdout.csv", index=False)
    # The current model: a bad one (shuffled labels), so a sound retrain beats it.
    train(TrainOptions(dataset=str(root / "data" / "train.csv"), output=root / "current", target="label",
                       shuffle_labels=True, name="iris"))
    return {"root": root, "train": root / "data" / "train.csv", "holdout": root / "data" / "holdout.csv",
            "current": root / "current" / "model.joblib"}


def retrain(world: dict[str, Path], out: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    term = world["root"] / f"{out}.termination-log"
    current_sha = sha256_file(world["current"])
    args = [MODELOPS, "retrain-job", "--dataset", world["train"].as_uri(), "--target", "label",
            "--holdout", world["holdout"].as_uri(), "--current", world["current"].as_uri(),
            "--current-sha256", current_sha, "--output", (world["root"] / "models" / out).as_uri(),
            "--name", "iris", "--version", "1-r1", "--gate-metric", "accuracy", "--min-value", "0.8",
            "--min-improvement", "0.05", "--termination-log", str(term), "--image", "modelops:test",
            "--trigger", json.dumps({"signal": "Drift", "value": 0.4, "samples": 500, "window": "10m"}), *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=300), term


def test_a_good_candidate_passes_with_lineage(world: dict[str, Path]) -> None:
    proc, term = retrain(world, "good")
    assert proc.returncode == 0, proc.stderr
    result = parse_result(term.read_text())
    assert result.outcome == "Trained" and result.gate is not None and result.gate.passed
    assert result.gate.candidate is not None and result.gate.current is not None
    assert result.gate.candidate >= result.gate.current + 0.05
    model = world["root"] / "models" / "good" / "model.joblib"
    assert result.sha256 == sha256_file(model) and result.uri == model.as_uri()
    assert result.dataset_sha256 == sha256_file(world["train"]) and result.rows == 110
    meta = json.loads((model.parent / "metadata.json").read_text())
    lineage = meta["lineage"]
    assert lineage["dataset"] == {"uri": world["train"].as_uri(), "sha256": result.dataset_sha256}
    assert lineage["holdout"]["sha256"] == sha256_file(world["holdout"]) == result.holdout_sha256
    assert lineage["parent"]["sha256"] == sha256_file(world["current"])
    assert lineage["trigger"]["signal"] == "Drift" and lineage["image"] == "modelops:test"
    assert lineage["rows"] == 110


def test_shuffled_labels_are_rejected_by_the_gate_but_the_run_succeeds(world: dict[str, Path]) -> None:
    proc, term = retrain(world, "bad", "--", "--shuffle-labels")
    assert proc.returncode == 0, proc.stderr  # a rejection is a result, not a Job failure
    result = parse_result(term.read_text())
    assert result.outcome == "Rejected" and result.gate is not None and not result.gate.passed
    assert "minValue" in result.gate.message or "minImprovement" in result.gate.message


def test_unchanged_dataset_stops_early_as_no_new_data(world: dict[str, Path]) -> None:
    proc, term = retrain(world, "same", "--skip-if-dataset-sha256", sha256_file(world["train"]))
    assert proc.returncode == 0, proc.stderr
    assert parse_result(term.read_text()).outcome == "NoNewData"
    assert not (world["root"] / "models" / "same" / "model.joblib").exists()


def test_errors_exit_non_zero_with_a_message(world: dict[str, Path]) -> None:
    proc, _ = retrain(world, "wrongsha", "--dataset-sha256", "0" * 64)
    assert proc.returncode == 2 and "is not the expected" in proc.stderr
    # http(s) is read-only: an output there is refused before anything is trained (s3:// outputs are
    # test_retrain_s3.py's).
    proc, _ = retrain(world, "http", "--output", "https://models.example/iris")
    assert proc.returncode == 2 and "read-only" in proc.stderr


def test_evaluate_prints_both_numbers_and_exits_by_verdict(world: dict[str, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    proc, _ = retrain(world, "for-eval")
    assert proc.returncode == 0, proc.stderr
    candidate = str(world["root"] / "models" / "for-eval")
    common = ["evaluate", "--holdout", str(world["holdout"]), "--target", "label", "--metric", "accuracy"]
    current = ["--current", world["current"].as_uri(), "--current-sha256", sha256_file(world["current"])]
    assert main([*common, "--candidate", candidate, *current, "--min-improvement", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "candidate" in out and "current" in out and "PASSED" in out
    # The other way round the bad model is rejected (exit 1), both numbers printed.
    assert main([*common, "--candidate", world["current"].as_uri(), "--candidate-sha256",
                 sha256_file(world["current"]), "--current", candidate, "--min-value", "0.8"]) == 1
    assert "REJECTED" in capsys.readouterr().out
    # mae with --min-value is refused, naming the flag.
    assert main([*common[:-1], "mae", "--candidate", candidate, "--min-value", "1"]) == 2
    assert "--max-value" in capsys.readouterr().err


def test_from_serving_joins_logged_requests_with_feedback(world: dict[str, Path], tmp_path: Path) -> None:
    # The log as the servers write it (modelops.serving.datalog), not a look-alike: requests of one
    # row each, and labels for the first 100 of them through the feedback path.
    from modelops.serving.datalog import RequestLog, RequestLogConfig
    from modelops.serving.feedback import Label

    frame = pd.read_csv(world["train"])
    features = list(frame.columns[:-1])
    served = tmp_path / "served"
    log = RequestLog(RequestLogConfig(served.as_uri(), max_rows=64), features, "iris", "1", "abc").start()
    ids = [f"r{i}" for i in range(len(frame))]
    for rid, row in zip(ids, frame[features].to_numpy(dtype=np.float64), strict=True):
        log.offer(rid, row.reshape(1, -1), np.array([0]))
    log.labels([Label(rid, 0, int(label)) for rid, label in zip(ids[:100], frame["label"].iloc[:100], strict=True)])
    log.close()
    assert sorted(p.name for p in served.iterdir()) == ["labels", "requests"]
    term = tmp_path / "term"
    code = main(["retrain-job", "--from-serving", served.as_uri(), "--output", (tmp_path / "out").as_uri(),
                 "--name", "iris", "--version", "2", "--termination-log", str(term)])
    assert code == 0
    result = parse_result(term.read_text())
    assert result.outcome == "Trained" and result.rows == 100 and result.gate is None
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert [f["name"] for f in meta["features"]] == features
    assert np.isfinite(meta["metrics"]["accuracy"])
