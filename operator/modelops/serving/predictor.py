"""A fast ``predict`` over a loaded model: a verified shortcut for linear pipelines.

Built by the model server (modelops.serving.server) from the model modelops.loading.loader loaded,
and used by every worker's micro-batcher (modelops.serving.http); the benchmark times it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts.model_dir import ModelMetadata

FloatArray = npt.NDArray[np.float64]


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
