"""Estimator wrappers that make deliberately slow or failing models for rollout tests and demos.

Test-only: they are not part of the product or its images. `modelops_testing.bad_options` wraps a
fitted pipeline in these; a model server loads them only when it can import this package (the
harness puts tests/models on PYTHONPATH) and, for skops files, when `--trust-type` names them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator


class _Wrapper(BaseEstimator):  # type: ignore[misc]
    """Delegates to a fitted ``estimator``; subclasses change how ``predict`` behaves."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any = None) -> _Wrapper:
        self.estimator.fit(X, y)
        return self

    @property
    def classes_(self) -> Any:
        return self.estimator.classes_

    def _before(self, X: Any) -> None:
        """Hook run before every predict call."""

    def predict(self, X: Any) -> Any:
        self._before(X)
        return self.estimator.predict(X)

    def predict_proba(self, X: Any) -> Any:
        self._before(X)
        return self.estimator.predict_proba(X)


class SlowEstimator(_Wrapper):
    """Sleeps ``delay_ms`` milliseconds on every predict call (once per batch, like a heavy model)."""

    def __init__(self, estimator: Any = None, delay_ms: float = 0.0) -> None:
        super().__init__(estimator)
        self.delay_ms = delay_ms

    def _before(self, X: Any) -> None:
        time.sleep(self.delay_ms / 1000.0)


class FailAboveEstimator(_Wrapper):
    """Raises on any input row whose feature ``feature_index`` exceeds ``threshold``."""

    def __init__(self, estimator: Any = None, threshold: float = 0.0, feature_index: int = 0) -> None:
        super().__init__(estimator)
        self.threshold = threshold
        self.feature_index = feature_index

    def _before(self, X: Any) -> None:
        column = np.asarray(X, dtype=np.float64)[:, self.feature_index]
        bad = int(np.count_nonzero(column > self.threshold))
        if bad:
            raise ValueError(f"injected failure: {bad} row(s) have feature {self.feature_index} above {self.threshold}")
