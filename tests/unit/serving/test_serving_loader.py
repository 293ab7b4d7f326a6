"""Loading a model directory: digests, trusted types, version checks, and the fast predictor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skops.io
from modelops.loading.loader import ModelLoadError, load_model_dir
from modelops.serving.predictor import Predictor
from modelops.training.trainer import TrainOptions, train
from modelops_testing import TRUSTED_TYPES as TEST_TYPES
from modelops_testing import bad_options


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_joblib_loads_when_digest_matches(iris_joblib: Path) -> None:
    loaded = load_model_dir(iris_joblib)
    assert loaded.metadata.name == "iris"
    assert loaded.sha256 == (iris_joblib / "model.sha256").read_text().strip()


def test_joblib_refused_on_digest_mismatch(iris_joblib: Path, tmp_path: Path) -> None:
    d = copy(iris_joblib, tmp_path / "m")
    with (d / "model.joblib").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelLoadError, match=r"sha256 mismatch.*expected [0-9a-f]{64}, actual [0-9a-f]{64}"):
        load_model_dir(d)


def test_joblib_refused_without_any_digest(iris_joblib: Path, tmp_path: Path) -> None:
    d = copy(iris_joblib, tmp_path / "m")
    (d / "model.sha256").unlink()
    with pytest.raises(ModelLoadError, match="no sha256"):
        load_model_dir(d)
    # An explicit digest is enough.
    digest = json.loads((d / "metadata.json").read_text())["sha256"]
    assert load_model_dir(d, sha256=digest).sha256 == digest


def test_explicit_digest_overrides_file(iris_joblib: Path) -> None:
    with pytest.raises(ModelLoadError, match="expected 00000"):
        load_model_dir(iris_joblib, sha256="0" * 64)


def test_skops_loads(iris_skops: Path) -> None:
    loaded = load_model_dir(iris_skops)
    assert loaded.metadata.format == "skops"


def test_skops_with_untrusted_type_refused(iris_skops: Path, tmp_path: Path) -> None:
    d = copy(iris_skops, tmp_path / "m")
    model = skops.io.load(str(d / "model.skops"))
    # A type no one put on our trusted list (any non-default class will do).
    from fractions import Fraction

    model.evil = Fraction(1, 3)
    (d / "model.skops").write_bytes(skops.io.dumps(model))
    (d / "model.sha256").unlink()
    with pytest.raises(ModelLoadError, match=r"not trusted: fractions.Fraction"):
        load_model_dir(d)


def test_wrappers_are_trusted_only_when_named(tmp_path: Path) -> None:
    train(bad_options(dataset="iris", output=tmp_path, format="skops", slow_ms=1, fail_above=7.0))
    with pytest.raises(ModelLoadError, match=r"not trusted: modelops_testing.wrappers.FailAboveEstimator"):
        load_model_dir(tmp_path)
    loaded = load_model_dir(tmp_path, trusted_types=TEST_TYPES)
    assert type(loaded.model).__name__ == "SlowEstimator"
    with pytest.raises(ValueError, match="injected failure"):
        loaded.model.predict(np.array([[7.5, 3.0, 5.0, 2.0]]))


def test_version_mismatch_refused_unless_allowed(iris_joblib: Path, tmp_path: Path) -> None:
    d = copy(iris_joblib, tmp_path / "m")
    meta = json.loads((d / "metadata.json").read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(
        ModelLoadError, match=r"trained with scikit-learn 0\.24\.2 but this server runs .*--allow-version-mismatch"
    ):
        load_model_dir(d)
    assert load_model_dir(d, allow_version_mismatch=True).metadata.versions["scikit-learn"] == "0.24.2"


def test_missing_metadata_refused(iris_joblib: Path, tmp_path: Path) -> None:
    d = copy(iris_joblib, tmp_path / "m")
    (d / "metadata.json").unlink()
    with pytest.raises(ModelLoadError, match=r"metadata.json is missing"):
        load_model_dir(d)


@pytest.mark.parametrize(
    ("dataset", "estimator", "kind"),
    [
        ("iris", "linear", "fast-linear"),
        ("breast_cancer", "linear", "fast-linear"),
        ("diabetes", "linear", "fast-linear"),
        ("wine", "forest", "sklearn"),
        ("diabetes", "hgb", "sklearn"),
    ],
)
def test_predictor_matches_the_model(tmp_path: Path, dataset: str, estimator: str, kind: str) -> None:
    train(TrainOptions(dataset=dataset, output=tmp_path, estimator=estimator))
    loaded = load_model_dir(tmp_path)
    predictor = Predictor(loaded.model, loaded.metadata)
    assert predictor.kind == kind
    rng = np.random.default_rng(5)
    from sklearn import datasets

    X = getattr(datasets, f"load_{dataset}")().data
    X = np.vstack([X, X + rng.normal(scale=X.std(axis=0), size=X.shape)])
    expected = loaded.model.predict(X)
    got = predictor.predict(X)
    if loaded.metadata.task == "classification":
        assert np.array_equal(expected, got)
    else:
        assert np.allclose(expected, got, rtol=1e-9, atol=1e-9)
    for i in range(5):  # single rows take the same path
        assert np.allclose(predictor.predict(X[i : i + 1]), loaded.model.predict(X[i : i + 1]))


def test_wrapped_model_never_takes_fast_path(tmp_path: Path) -> None:
    train(bad_options(dataset="iris", output=tmp_path, fail_above=6.0))
    loaded = load_model_dir(tmp_path)
    predictor = Predictor(loaded.model, loaded.metadata)
    assert predictor.kind == "sklearn"
    with pytest.raises(ValueError, match="injected failure"):
        predictor.predict(np.array([[6.5, 3.0, 5.0, 2.0]]))


def test_fast_path_can_be_turned_off(tmp_path: Path) -> None:
    train(TrainOptions(dataset="iris", output=tmp_path))
    loaded = load_model_dir(tmp_path)
    assert Predictor(loaded.model, loaded.metadata).kind == "fast-linear"
    plain = Predictor(loaded.model, loaded.metadata, fast_path=False)
    assert plain.kind == "sklearn"
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    assert np.array_equal(plain.predict(rows), loaded.model.predict(rows))
