"""Population Stability Index over binned baselines, and a time-slotted sliding window of counts.

Called by the trainer (to build baselines stored in ``metadata.json``), by the model server's
supervisor process (to turn live traffic into PSI gauges, off the request path) and by analysis.
Pure: numpy in, numbers out; the caller passes the clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# Fractions are clipped to this floor before taking logs: an empty bin would make PSI infinite,
# and the common practice (e.g. in credit-risk monitoring) is a small epsilon.
EPSILON = 1e-4

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Baseline:
    """The expected distribution of one feature (or of the predictions).

    ``kind == "numeric"``: ``edges`` are ascending bin edges ``[e0, e1, ..., ek]`` (k bins);
    the first and last bins are open-ended, so live values outside the training range land in
    them. ``kind == "categorical"``: ``categories`` name the bins, by position.
    """

    kind: str
    fractions: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("numeric", "categorical"):
            raise ValueError(f"baseline kind must be numeric or categorical, not {self.kind!r}")
        n = len(self.fractions)
        if n == 0:
            raise ValueError("a baseline needs at least one bin")
        if self.kind == "numeric" and len(self.edges) != n + 1:
            raise ValueError(f"a numeric baseline with {n} bins needs {n + 1} edges, got {len(self.edges)}")
        if self.kind == "categorical" and len(self.categories) != n:
            raise ValueError(f"a categorical baseline with {n} bins needs {n} categories")
        if any(f < 0 for f in self.fractions) or not math.isclose(sum(self.fractions), 1.0, abs_tol=1e-6):
            raise ValueError("baseline fractions must be non-negative and sum to 1")

    @property
    def n_bins(self) -> int:
        return len(self.fractions)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "fractions": list(self.fractions)}
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
        else:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(
            kind=str(data["kind"]),
            fractions=tuple(float(f) for f in data["fractions"]),
            edges=tuple(float(e) for e in data.get("edges", ())),
            categories=tuple(data.get("categories", ())),
        )


def numeric_baseline(values: npt.ArrayLike, bins: int = 10) -> Baseline:
    """Quantile bins of ``values`` (NaNs ignored); ties collapse bins so no bin is empty by design."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError("cannot build a baseline from no finite values")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    edges = np.unique(np.quantile(arr, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        # A constant feature: one bin holding everything.
        edges = np.array([edges[0], edges[0]])
    counts = bin_counts(arr, edges)
    fractions = counts / counts.sum()
    return Baseline(kind="numeric", fractions=tuple(float(f) for f in fractions), edges=tuple(float(e) for e in edges))


def categorical_baseline(labels: Sequence[Any] | npt.NDArray[Any], categories: Sequence[Any]) -> Baseline:
    """Fractions of each category in ``labels``; categories not seen get fraction 0."""
    cats = list(categories)
    if not cats:
        raise ValueError("a categorical baseline needs categories")
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros(len(cats), dtype=np.float64)
    for label in labels:
        item = label.item() if isinstance(label, np.generic) else label
        if item not in index:
            raise ValueError(f"label {item!r} is not one of the categories {cats!r}")
        counts[index[item]] += 1
    if counts.sum() == 0:
        raise ValueError("cannot build a baseline from no labels")
    fractions = counts / counts.sum()
    return Baseline(kind="categorical", fractions=tuple(float(f) for f in fractions), categories=tuple(cats))


def bin_counts(values: npt.ArrayLike, edges: Sequence[float] | FloatArray) -> IntArray:
    """Count ``values`` into the bins given by ``edges``, first and last bins open-ended.

    NaN and infinities are not counted (they are not part of any bin).
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    e = np.asarray(edges, dtype=np.float64)
    n_bins = e.size - 1
    if n_bins < 1:
        raise ValueError("edges must have at least two entries")
    # Inner edges decide the bin; values equal to an inner edge go to the lower bin, like
    # np.histogram's half-open intervals except that the ends are open.
    idx = np.searchsorted(e[1:-1], arr, side="left")
    return np.bincount(idx, minlength=n_bins).astype(np.int64)


def psi(expected: Sequence[float] | FloatArray, actual_counts: Sequence[float] | npt.NDArray[Any]) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins, fractions floored at EPSILON.

    Rules of thumb: < 0.1 no shift, 0.1-0.25 moderate, > 0.25 large. Raises on no data, so a
    caller can never mistake "nothing seen" for "no drift".
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual_counts, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"expected {e.shape[0]} bins, got {a.shape[0]}")
    total = a.sum()
    if total <= 0:
        raise ValueError("no observations to compare with the baseline")
    a_frac = np.clip(a / total, EPSILON, None)
    e_frac = np.clip(e / e.sum(), EPSILON, None)
    return float(np.sum((a_frac - e_frac) * np.log(a_frac / e_frac)))


@dataclass
class SlidingWindowCounts:
    """Bin counts of several series over the last ``window_seconds``, in ``slots`` time slots.

    Each series (a feature, or the predictions) has its own number of bins. Old slots are
    zeroed lazily when the clock moves past them; the window is therefore exact to one slot.
    """

    n_bins: Sequence[int]
    window_seconds: float
    slots: int = 60
    _counts: list[IntArray] = field(init=False, repr=False)
    _slot_epoch: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.window_seconds <= 0 or self.slots < 1:
            raise ValueError("window_seconds must be positive and slots at least 1")
        self._counts = [np.zeros((self.slots, n), dtype=np.int64) for n in self.n_bins]
        self._slot_epoch = np.full(self.slots, -1, dtype=np.int64)

    @property
    def slot_seconds(self) -> float:
        return self.window_seconds / self.slots

    def _slot(self, now: float) -> int:
        epoch = int(now // self.slot_seconds)
        slot = epoch % self.slots
        if self._slot_epoch[slot] != epoch:
            for c in self._counts:
                c[slot] = 0
            self._slot_epoch[slot] = epoch
        return slot

    def add(self, series: int, counts: npt.NDArray[Any], now: float) -> None:
        """Add bin ``counts`` of one series observed at ``now`` (seconds, any monotonic origin)."""
        slot = self._slot(now)
        self._counts[series][slot] += np.asarray(counts, dtype=np.int64)

    def totals(self, series: int, now: float) -> IntArray:
        """Counts of ``series`` summed over the slots still inside the window at ``now``."""
        epoch = int(now // self.slot_seconds)
        live = (self._slot_epoch > epoch - self.slots) & (self._slot_epoch <= epoch)
        result: IntArray = self._counts[series][live].sum(axis=0)
        return result
