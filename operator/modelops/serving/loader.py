"""Load a model directory safely, and wrap the model in a fast predictor.

Called by the model server (``modelops serve``) before it forks its workers, and by the
benchmark to time model loading. Safety rules: a joblib file (a pickle: loading runs code) is
opened only after its sha256 matches; a skops file is loaded with an explicit list of trusted
types and refused if it holds others; a model trained with another scikit-learn minor version
(or numpy major version) is refused unless the caller allows it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.training.artifact import (
    METADATA_FILE,
    SHA256_FILE,
    ModelMetadata,
    find_model_file,
    sha256_file,
)

log = logging.getLogger(__name__)

# Types that skops does not trust by default but that our trainer produces. Everything else a
# skops file asks for is refused, unless the operator of the server names it (`modelops serve
# --trust-type`, which the tests use for their deliberately bad models). Keep this list short.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)

FloatArray = npt.NDArray[np.float64]


class ModelLoadError(Exception):
    """The model directory cannot be served; the message says why and what to do."""


@dataclass
class LoadedModel:
    model: Any
    metadata: ModelMetadata
    path: Path
    sha256: str
    load_seconds: float


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (-1, -1)


def check_versions(metadata: ModelMetadata) -> list[str]:
    """Problems that make the model unsafe to trust in this runtime (empty when compatible)."""
    import sklearn

    problems: list[str] = []
    trained = metadata.versions.get("scikit-learn")
    if trained is None:
        problems.append("metadata.json does not say which scikit-learn version trained the model")
    elif _major_minor(trained) != _major_minor(sklearn.__version__):
        problems.append(f"model was trained with scikit-learn {trained} but this server runs {sklearn.__version__}")
    trained_np = metadata.versions.get("numpy")
    if trained_np is not None and trained_np.split(".")[0] != np.__version__.split(".")[0]:
        problems.append(f"model was trained with numpy {trained_np} but this server runs {np.__version__}")
    return problems


def load_model_dir(
    directory: Path,
    sha256: str | None = None,
    allow_version_mismatch: bool = False,
    trusted_types: Sequence[str] = (),
) -> LoadedModel:
    """Verify and load ``directory``. ``sha256`` overrides the digest in ``model.sha256``;
    ``trusted_types`` are trusted in a skops file besides ``TRUSTED_TYPES``."""
    started = time.perf_counter()
    try:
        model_path, fmt = find_model_file(directory)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelLoadError(str(exc)) from exc
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelLoadError(f"{meta_path} is missing; the server needs the trainer's metadata")
    try:
        metadata = ModelMetadata.model_validate(json.loads(meta_path.read_text()))
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"{meta_path} is not valid model metadata: {exc}") from exc
    if metadata.format != fmt:
        raise ModelLoadError(f"metadata.json says format {metadata.format} but the directory holds {model_path.name}")

    expected = (sha256 or "").strip().lower()
    sha_file = directory / SHA256_FILE
    if not expected and sha_file.is_file():
        words = sha_file.read_text().split()
        expected = words[0].lower() if words else ""
    actual = sha256_file(model_path)
    if fmt == "joblib" and not expected:
        raise ModelLoadError(
            f"refusing to load {model_path}: joblib files run code when loaded and no sha256 was given "
            f"(pass --sha256 or provide {SHA256_FILE})"
        )
    if expected and expected != actual:
        raise ModelLoadError(f"sha256 mismatch for {model_path}: expected {expected}, actual {actual}")

    problems = check_versions(metadata)
    if problems:
        if not allow_version_mismatch:
            raise ModelLoadError(
                "; ".join(problems) + ". Retrain the model with this runtime, or pass --allow-version-mismatch "
                "to serve it anyway"
            )
        for problem in problems:
            log.warning("serving despite version mismatch: %s", problem)

    import warnings

    with warnings.catch_warnings():
        # The version check above already decided; don't let sklearn's pickle warning spam logs.
        warnings.simplefilter("ignore")
        if fmt == "joblib":
            import joblib

            model = joblib.load(model_path)
        else:
            model = _load_skops(model_path, (*TRUSTED_TYPES, *trusted_types))
    n_in = getattr(model, "n_features_in_", None)
    if n_in is None:
        n_in = getattr(getattr(model, "estimator", None), "n_features_in_", None)
    if n_in is not None and int(n_in) != len(metadata.features):
        raise ModelLoadError(f"the model expects {n_in} features but metadata.json lists {len(metadata.features)}")
    return LoadedModel(model, metadata, model_path, actual, time.perf_counter() - started)


def _load_skops(path: Path, trusted: Sequence[str]) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=str(path))
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise ModelLoadError(f"refusing to load {path}: it contains types that are not trusted: {', '.join(refused)}")
    return skops.io.load(str(path), trusted=[t for t in untrusted if t in trusted])


class Predictor:
    """``predict(X)`` for a float64 matrix, with a verified fast path for linear pipelines.

    scikit-learn spends most of a single-row predict on validation and dispatch. For a pipeline
    of exactly ``[StandardScaler,] LogisticRegression | LinearRegression | Ridge`` we fold the
    scaler into one affine map and compute it with numpy. The fast path is used only if it
    reproduces the model's own predictions on probe rows; otherwise we call the model.
    """

    def __init__(self, model: Any, metadata: ModelMetadata, fast_path: bool = True) -> None:
        self.model = model
        self.metadata = metadata
        self.n_features = len(metadata.features)
        self.classes: npt.NDArray[Any] | None = (
            np.asarray(model.classes_) if metadata.task == "classification" and hasattr(model, "classes_") else None
        )
        self.has_proba = hasattr(model, "predict_proba") and metadata.task == "classification"
        self._affine: tuple[FloatArray, FloatArray] | None = None
        self._binary = False
        self.kind = "sklearn"
        affine = _fold_linear(model, metadata.task) if fast_path else None
        if affine is not None:
            self._affine = affine
            self._binary = self.classes is not None and affine[0].shape[1] == 1
            if self._verify(self._probe_rows()):
                self.kind = "fast-linear"
            else:
                self._affine = None

    def _probe_rows(self) -> FloatArray:
        rng = np.random.default_rng(0)
        lows, highs = [], []
        for feature in self.metadata.features:
            edges = self.metadata.baseline.get(feature.name, {}).get("edges", [-3.0, 3.0])
            lows.append(float(edges[0]))
            highs.append(float(edges[-1]))
        lo, hi = np.array(lows), np.array(highs)
        span = np.where(hi > lo, hi - lo, 1.0)
        # Probe inside and well outside the training range.
        rows = rng.uniform(lo - span, hi + span, size=(512, self.n_features))
        if self.metadata.examples:
            rows = np.vstack([np.asarray(self.metadata.examples, dtype=np.float64), rows])
        return rows

    def _verify(self, rows: FloatArray) -> bool:
        try:
            expected = np.asarray(self.model.predict(rows))
        except Exception:
            return False
        got = self._fast(rows)
        if self.classes is not None:
            return bool(np.array_equal(expected, got))
        return bool(np.allclose(expected, got, rtol=1e-9, atol=1e-9))

    def _fast(self, X: FloatArray) -> npt.NDArray[Any]:
        assert self._affine is not None
        weights, bias = self._affine
        scores = X @ weights + bias
        if self.classes is None:
            return scores[:, 0] if scores.shape[1] == 1 else scores
        picked = (scores[:, 0] > 0).astype(np.intp) if self._binary else np.argmax(scores, axis=1)
        labels: npt.NDArray[Any] = self.classes[picked]
        return labels

    def predict(self, X: FloatArray) -> npt.NDArray[Any]:
        if self._affine is not None:
            return self._fast(X)
        return np.asarray(self.model.predict(X))

    def predict_proba(self, X: FloatArray) -> FloatArray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)


def _fold_linear(model: Any, task: str) -> tuple[FloatArray, FloatArray] | None:
    """(W, b) with predict scores = X @ W + b, for the exact pipelines we know; else None."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if type(model) is not Pipeline:
        return None
    steps = [step for _, step in model.steps if step not in (None, "passthrough")]
    scaler = None
    if len(steps) == 2 and type(steps[0]) is StandardScaler:
        scaler, final = steps
    elif len(steps) == 1:
        final = steps[0]
    else:
        return None
    if task == "classification" and type(final) is not LogisticRegression:
        return None
    if task == "regression" and type(final) not in (LinearRegression, Ridge):
        return None
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))  # (outputs, features)
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    if task == "regression" and coef.shape[0] != 1:
        return None
    weights = coef.T.copy()
    bias = intercept.copy()
    if scaler is not None:
        scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std and scaler.scale_ is not None else None
        mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean and scaler.mean_ is not None else None
        if scale is not None:
            weights = weights / scale[:, None]
        if mean is not None:
            bias = bias - mean @ weights
    return weights, bias
