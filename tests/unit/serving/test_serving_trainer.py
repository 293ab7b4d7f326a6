"""`modelops train`: the model directory it writes and the deliberately bad models it can make."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelops.cli.main import main
from modelops.training.trainer import TrainOptions, load_dataset, train
from modelops_testing import bad_options


def test_cli_writes_a_complete_model_directory(tmp_path: Path) -> None:
    out = tmp_path / "wine"
    assert main(["train", "--dataset", "wine", "--output", str(out), "--format", "skops", "--version", "7"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    digest = hashlib.sha256((out / "model.skops").read_bytes()).hexdigest()
    assert (out / "model.sha256").read_text().strip() == digest == meta["sha256"]
    assert meta["name"] == "wine" and meta["version"] == "7" and meta["format"] == "skops"
    assert meta["task"] == "classification"
    assert len(meta["features"]) == 13 and meta["features"][0] == {"name": "alcohol", "dtype": "float64"}
    assert meta["classes"] == [0, 1, 2]
    assert set(meta["versions"]) == {"scikit-learn", "joblib", "numpy", "python"}
    assert meta["metrics"]["accuracy"] > 0.85
    for feature in meta["features"]:
        base = meta["baseline"][feature["name"]]
        assert len(base["edges"]) == len(base["fractions"]) + 1
        assert sum(base["fractions"]) == pytest.approx(1.0)
    assert meta["prediction_baseline"]["kind"] == "categorical"
    assert not list(out.glob(".*tmp"))  # no temp files left behind


def test_regression_dataset(tmp_path: Path) -> None:
    meta = train(TrainOptions(dataset="diabetes", output=tmp_path))
    assert meta.task == "regression"
    assert meta.classes == []
    assert meta.prediction_baseline is not None and meta.prediction_baseline["kind"] == "numeric"
    assert meta.metrics["r2"] > 0.3


def test_shuffled_labels_make_a_worse_model(tmp_path: Path) -> None:
    good = train(TrainOptions(dataset="breast_cancer", output=tmp_path / "good"))
    bad = train(TrainOptions(dataset="breast_cancer", output=tmp_path / "bad", shuffle_labels=True))
    assert bad.metrics["accuracy"] < good.metrics["accuracy"] - 0.2


def test_csv_and_parquet_datasets(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.integers(0, 5, size=200)})
    frame["label"] = np.where(frame.x1 + frame.x2 > 2, "yes", "no")
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for path in ("d.csv", "d.parquet"):
        meta = train(TrainOptions(dataset=str(tmp_path / path), output=tmp_path / f"out-{path}", target="label"))
        assert meta.classes == ["no", "yes"]
        assert [f.dtype for f in meta.features] == ["float64", "int64"]
        assert meta.name == "d"


def test_bad_dataset_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither one of"):
        load_dataset("nope")
    pd.DataFrame({"name": ["a", "b"], "y": [0, 1]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match=r"must be numeric.*name"):
        load_dataset(str(tmp_path / "s.csv"))
    with pytest.raises(ValueError, match="target column 'zz'"):
        load_dataset(str(tmp_path / "s.csv"), target="zz")
    assert main(["train", "--dataset", "nope", "--output", str(tmp_path / "x")]) == 2


def test_slow_and_failing_options_are_recorded(tmp_path: Path) -> None:
    meta = train(bad_options(dataset="iris", output=tmp_path, slow_ms=3, fail_above=6.5))
    assert meta.options["slow_ms"] == 3 and meta.options["fail_above"] == 6.5


def test_product_trainer_has_no_test_only_models(tmp_path: Path) -> None:
    # --slow-ms / --fail-above belong to the test trainer (tests/models), not to `modelops train`.
    with pytest.raises(SystemExit) as exited:
        main(["train", "--dataset", "iris", "--output", str(tmp_path / "m"), "--slow-ms", "3"])
    assert exited.value.code == 2
