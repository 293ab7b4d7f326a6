"""The hand-off of live rows from workers to the supervisor, and PSI computed from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from modelops.loading.loader import load_model_dir
from modelops.serving.drift_monitor import DriftMonitor, SharedRing


def test_ring_round_trip_and_wraparound() -> None:
    ring = SharedRing(workers=2, capacity=5, n_features=2)
    X = np.arange(8, dtype=np.float64).reshape(4, 2)
    ring.write(1, X, np.array([0.0, 1.0, 2.0, 3.0]))
    rows, seen = ring.read_since(1, 0)
    assert seen == 4 and rows[:, :2].tolist() == X.tolist() and rows[:, 2].tolist() == [0, 1, 2, 3]
    ring.write(1, X[:3] + 100, np.array([7.0, 8.0, 9.0]))  # wraps around the end of the ring
    rows, seen = ring.read_since(1, seen)
    assert seen == 7 and rows[:, 2].tolist() == [7, 8, 9]
    assert ring.read_since(0, 0)[0].shape == (0, 3)  # the other worker wrote nothing


def test_reader_that_falls_behind_gets_the_latest_ring() -> None:
    ring = SharedRing(workers=1, capacity=4, n_features=1)
    for i in range(10):
        ring.write(0, np.array([[float(i)]]), np.array([0.0]))
    rows, seen = ring.read_since(0, 0)
    assert seen == 10 and rows[:, 0].tolist() == [6, 7, 8, 9]
    big = np.arange(6, dtype=np.float64).reshape(6, 1)
    ring.write(0, big, np.zeros(6))  # more than a ring at once: the last rows are kept
    rows, _ = ring.read_since(0, seen)
    assert rows[:, 0].tolist() == [2, 3, 4, 5]


class Gauges:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set_feature(self, feature: str, value: float) -> None:
        self.values[feature] = value

    def set_prediction(self, value: float) -> None:
        self.values["prediction"] = value

    def set_window_rows(self, rows: int) -> None:
        self.values["rows"] = rows


def test_monitor_psi_from_worker_rows(iris_joblib: Path) -> None:
    from sklearn.datasets import load_iris

    meta = load_model_dir(iris_joblib).metadata
    ring = SharedRing(workers=2, capacity=1000, n_features=4)
    gauges = Gauges()
    monitor = DriftMonitor(meta, ring, window_seconds=60, min_rows=100, gauges=gauges)
    X = load_iris().data
    y = load_iris().target.astype(np.float64)
    ring.write(0, X[:50], y[:50])
    assert monitor.collect(now=1.0) == 50
    assert monitor.compute(now=1.0) == {}  # too few rows: nothing exported, never "no drift"
    assert gauges.values == {"rows": 50}
    ring.write(1, X[50:], y[50:])
    monitor.collect(now=2.0)
    result = monitor.compute(now=2.0)
    assert gauges.values["rows"] == 150
    assert all(v < 0.05 for v in result.values())  # the training data itself
    ring.write(0, X + 5, np.full(150, 2.0))
    monitor.collect(now=3.0)
    assert monitor.compute(now=3.0)["petal_length_cm"] > 0.25
    # Past the window everything is forgotten again.
    monitor.collect(now=200.0)
    assert monitor.compute(now=200.0) == {}
