"""PSI and the sliding window of drift/: the statistics the server exports and analysis judges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelops.drift import Baseline, SlidingWindowCounts, bin_counts, categorical_baseline, numeric_baseline, psi


def test_same_distribution_has_near_zero_psi() -> None:
    rng = np.random.default_rng(1)
    base = numeric_baseline(rng.normal(size=20_000), bins=10)
    live = bin_counts(rng.normal(size=20_000), base.edges)
    assert psi(base.fractions, live) < 0.01


def test_shifted_distribution_has_large_psi() -> None:
    rng = np.random.default_rng(2)
    base = numeric_baseline(rng.normal(size=20_000), bins=10)
    live = bin_counts(rng.normal(loc=1.5, size=20_000), base.edges)
    assert psi(base.fractions, live) > 0.25


def test_psi_matches_hand_computation() -> None:
    expected = [0.5, 0.5]
    actual = [30, 70]
    by_hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)


def test_psi_refuses_no_data_and_mismatched_bins() -> None:
    with pytest.raises(ValueError, match="no observations"):
        psi([0.5, 0.5], [0, 0])
    with pytest.raises(ValueError, match="bins"):
        psi([0.5, 0.5], [1, 2, 3])


def test_bin_counts_open_ends_and_nan() -> None:
    counts = bin_counts([-100.0, 0.5, 1.0, 1.5, 100.0, float("nan"), float("inf")], [0.0, 1.0, 2.0])
    # Below the first edge lands in bin 0, above the last in the last bin; NaN/inf are dropped.
    assert counts.tolist() == [3, 2]


def test_constant_feature_baseline() -> None:
    base = numeric_baseline(np.full(100, 3.0))
    assert base.n_bins == 1
    assert base.fractions == (1.0,)


def test_categorical_baseline_and_roundtrip() -> None:
    base = categorical_baseline(np.array([0, 0, 1, 2]), [0, 1, 2])
    assert base.fractions == (0.5, 0.25, 0.25)
    assert Baseline.from_dict(base.to_dict()) == base
    with pytest.raises(ValueError, match="not one of"):
        categorical_baseline([5], [0, 1])


def test_baseline_validation() -> None:
    with pytest.raises(ValueError, match="edges"):
        Baseline(kind="numeric", fractions=(1.0,), edges=(0.0,))
    with pytest.raises(ValueError, match="sum to 1"):
        Baseline(kind="categorical", fractions=(0.2, 0.2), categories=("a", "b"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=300),
    st.lists(st.integers(0, 10_000), min_size=10, max_size=10),
)
def test_psi_is_non_negative_and_zero_iff_same(values: list[float], counts: list[int]) -> None:
    base = numeric_baseline(values, bins=10)
    if sum(counts[: base.n_bins]) == 0:
        return
    value = psi(base.fractions, counts[: base.n_bins])
    assert value >= 0
    same = np.asarray(base.fractions) * 1000
    assert psi(base.fractions, same) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=500), st.integers(1, 20))
def test_baseline_fractions_sum_to_one_and_cover_training_data(values: list[float], bins: int) -> None:
    base = numeric_baseline(values, bins=bins)
    assert sum(base.fractions) == pytest.approx(1.0)
    assert int(bin_counts(values, base.edges).sum()) == len(values)


def test_sliding_window_forgets_old_slots() -> None:
    window = SlidingWindowCounts(n_bins=[2], window_seconds=60, slots=6)  # 10 s slots
    window.add(0, np.array([5, 0]), now=0.0)
    window.add(0, np.array([0, 3]), now=35.0)
    assert window.totals(0, now=35.0).tolist() == [5, 3]
    # At t=65 the slot of t=0 has left the window; the one of t=35 has not.
    assert window.totals(0, now=65.0).tolist() == [0, 3]
    assert window.totals(0, now=200.0).tolist() == [0, 0]


def test_sliding_window_reuses_slot_after_wraparound() -> None:
    window = SlidingWindowCounts(n_bins=[1, 3], window_seconds=10, slots=2)
    window.add(1, np.array([1, 1, 1]), now=1.0)
    window.add(1, np.array([2, 0, 0]), now=11.0)  # same slot index, next lap: old counts cleared
    assert window.totals(1, now=11.0).tolist() == [2, 0, 0]
    assert window.totals(0, now=11.0).tolist() == [0]
