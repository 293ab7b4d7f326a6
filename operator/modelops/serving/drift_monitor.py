"""Hand live rows from the server's workers to its supervisor, which computes drift.

Workers call :meth:`SharedRing.write` after each predict (one numpy copy into shared memory, no
locks, no math); the supervisor process of ``modelops serve`` calls :meth:`DriftMonitor.tick`
on its own clock, bins the new rows and sets the PSI gauges. Drift is therefore computed in
another process and never delays a request.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts.model_dir import ModelMetadata
from modelops.drift import Baseline, SlidingWindowCounts, bin_counts, psi

FloatArray = npt.NDArray[np.float64]


class SharedRing:
    """One ring buffer of rows per worker, in an anonymous shared mapping made before fork.

    Row layout: the features, then the prediction (class index or value). Each worker writes
    only its own ring and bumps its own counter after the rows are in place, so the single
    reader needs no lock; if it falls behind by more than a ring, it reads the latest ring.
    """

    def __init__(self, workers: int, capacity: int, n_features: int) -> None:
        self.workers = workers
        self.capacity = capacity
        self.width = n_features + 1
        header = 8 * workers
        self._map = mmap.mmap(-1, header + 8 * workers * capacity * self.width)
        self.counters: npt.NDArray[np.int64] = np.frombuffer(self._map, dtype=np.int64, count=workers)
        self.rows: FloatArray = np.frombuffer(
            self._map, dtype=np.float64, offset=header, count=workers * capacity * self.width
        ).reshape(workers, capacity, self.width)

    def write(self, worker: int, X: FloatArray, y: FloatArray) -> None:
        n = X.shape[0]
        if n > self.capacity:
            X, y, n = X[-self.capacity :], y[-self.capacity :], self.capacity
        start = int(self.counters[worker]) % self.capacity
        first = min(n, self.capacity - start)
        ring = self.rows[worker]
        ring[start : start + first, :-1] = X[:first]
        ring[start : start + first, -1] = y[:first]
        if first < n:
            ring[: n - first, :-1] = X[first:]
            ring[: n - first, -1] = y[first:]
        self.counters[worker] += n

    def read_since(self, worker: int, since: int) -> tuple[FloatArray, int]:
        """Rows written by ``worker`` after counter value ``since``, and the new counter value."""
        now = int(self.counters[worker])
        n = min(now - since, self.capacity)
        if n <= 0:
            return np.empty((0, self.width)), now
        start = (now - n) % self.capacity
        ring = self.rows[worker]
        if start + n <= self.capacity:
            return ring[start : start + n].copy(), now
        return np.vstack([ring[start:], ring[: (start + n) % self.capacity]]), now


class DriftMonitor:
    """Supervisor-side: sliding-window bin counts per feature and for predictions, and PSI."""

    def __init__(
        self,
        metadata: ModelMetadata,
        ring: SharedRing,
        window_seconds: float,
        min_rows: int,
        gauges: Any,
    ) -> None:
        self.ring = ring
        self.min_rows = min_rows
        self.gauges = gauges
        self.features = metadata.feature_names
        self.baselines: list[Baseline | None] = []
        for name in self.features:
            raw = metadata.baseline.get(name)
            self.baselines.append(Baseline.from_dict(raw) if raw else None)
        pred = metadata.prediction_baseline
        self.prediction_baseline = Baseline.from_dict(pred) if pred else None
        n_bins = [b.n_bins if b else 1 for b in self.baselines]
        n_bins.append(self.prediction_baseline.n_bins if self.prediction_baseline else 1)
        self.window = SlidingWindowCounts(n_bins=n_bins, window_seconds=window_seconds)
        self._seen = [0] * ring.workers
        self.last: dict[str, float] = {}

    def reset_worker(self, worker: int) -> None:
        """A restarted worker starts its counter again from where the ring says."""
        self._seen[worker] = int(self.ring.counters[worker])

    def collect(self, now: float) -> int:
        """Bin rows written since the last call; returns how many were added."""
        added = 0
        for w in range(self.ring.workers):
            rows, self._seen[w] = self.ring.read_since(w, self._seen[w])
            if rows.shape[0] == 0:
                continue
            added += rows.shape[0]
            for i, base in enumerate(self.baselines):
                if base is not None:
                    self.window.add(i, bin_counts(rows[:, i], base.edges), now)
            pb = self.prediction_baseline
            if pb is not None:
                y = rows[:, -1]
                if pb.kind == "categorical":
                    counts = np.bincount(y.astype(np.int64), minlength=pb.n_bins)[: pb.n_bins]
                else:
                    counts = bin_counts(y, pb.edges)
                self.window.add(len(self.baselines), counts, now)
        return added

    def compute(self, now: float) -> dict[str, float]:
        """PSI per feature (by name) and for predictions (key ``__prediction__``), once the
        window holds ``min_rows`` rows; sets the gauges."""
        result: dict[str, float] = {}
        rows = 0
        for i, base in enumerate(self.baselines):
            if base is None:
                continue
            totals = self.window.totals(i, now)
            rows = max(rows, int(totals.sum()))
            if totals.sum() >= self.min_rows:
                result[self.features[i]] = psi(base.fractions, totals)
        pb = self.prediction_baseline
        if pb is not None:
            totals = self.window.totals(len(self.baselines), now)
            if totals.sum() >= self.min_rows:
                result["__prediction__"] = psi(pb.fractions, totals)
        if self.gauges is not None:
            for name, value in result.items():
                if name == "__prediction__":
                    self.gauges.set_prediction(value)
                else:
                    self.gauges.set_feature(name, value)
            # Last, so a scrape that sees this row count also sees the PSI computed from it.
            self.gauges.set_window_rows(rows)
        self.last = result
        return result
