"""The PSI threshold a drift reading must exceed, derived from the window's sample size.

Called by `modelops.retraining.machine` for every drift reading when `triggers.drift.threshold`
is unset. Why a χ² critical value: PSI is Jeffreys' divergence Σ (q-p)·ln(q/p) between the window's
bin fractions q and the baseline's p. For q near p, (q-p)·ln(q/p) ≈ (q-p)²/p, so
N·PSI ≈ Σ N(q-p)²/p, which is Pearson's X² statistic of the window's counts against the baseline:
χ²-distributed with B-1 degrees of freedom when nothing drifted (B bins, N rows, a baseline estimated
from many more rows than N). A window of 100 rows and 10 bins therefore has PSI ≈ χ²(9)/100, mean
0.09: the fixed 0.2 is exceeded by 1.8 % of no-drift windows per feature and, over 30 features, by
about 40 % of windows (the figure in issue 8). The derived threshold is the χ²(B-1) quantile at
1 - alpha/k (Šidák-corrected across the k series watched, so the false-alarm chance of a whole window is
alpha) divided by N, and never below a floor (a shift too small to matter is not worth a retrain however
many rows prove it).

The χ² approximation alone is not enough for small windows: PSI punishes an under-filled bin far
more than X² does ((q-p)·ln(q/p) with q floored at 1e-4 makes an empty 10 % bin alone worth 0.69),
and with 100 rows over 10 bins an empty bin somewhere among 30 features happens in about 1 % of
windows. Simulated no-drift windows put the true 1-3·10⁻⁵ quantile of N·PSI at 82 for N = 100,
B = 10 against χ²'s 36.5 (it converges by N ≈ 1,000). So the threshold adds to the χ² bulk term the
PSI of the rarest under-fill still allowed: one bin holding its alpha/(kB) binomial lower quantile, the
rest spread evenly (a union bound over bins; quantile bins make each bin's baseline share 1/B). The
sum is conservative (about 1.0 at N = 100, B = 10, where the simulated quantile is 0.82).
`tests/unit/retraining/test_threshold.py` checks the false alarm rate over 500 simulated windows.
Pure: numbers in, a number out.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from modelops.drift.psi import psi


def sidak_alpha(alpha: float, tests: int) -> float:
    """Per-test significance so that k independent tests raise any alarm with probability `alpha`."""
    if not 0 < alpha < 1:
        raise ValueError(f"significance must be in (0, 1), not {alpha}")
    if tests < 1:
        raise ValueError(f"tests must be at least 1, not {tests}")
    # -expm1(log1p(-a)/k) is 1-(1-a)^(1/k) without cancellation for tiny a.
    return -math.expm1(math.log1p(-alpha) / tests)


@lru_cache(maxsize=1024)
def chi2_critical(dof: int, alpha: float) -> float:
    """The value a χ²(dof) variable exceeds with probability `alpha`."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {dof}")
    # Imported here: scipy.stats costs the operator ~40 MiB, and only objects that retrain on drift use it.
    from scipy.stats import chi2

    return float(chi2.isf(alpha, dof))


def derived_threshold(samples: int, bins: int, tests: int, alpha: float, floor: float) -> float:
    """The PSI above which a window of `samples` rows over `bins` bins is drift at family-wise `alpha`
    across `tests` series, never below `floor`."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if bins < 2:
        # One bin carries no information about the distribution: PSI is always 0.
        return math.inf
    per_test = sidak_alpha(alpha, tests)
    bulk = chi2_critical(bins - 1, per_test) / samples
    return max(floor, bulk + underfill_psi(samples, bins, per_test / bins))


@lru_cache(maxsize=4096)
def underfill_psi(samples: int, bins: int, alpha: float) -> float:
    """PSI of a window whose one bin (baseline share 1/bins) holds its `alpha` lower-quantile count."""
    from scipy.stats import binom

    share = 1.0 / bins
    low = float(binom.ppf(alpha, samples, share))
    rest = (samples - low) / (bins - 1)
    counts = np.array([low, *([rest] * (bins - 1))], dtype=np.float64)
    return psi(np.full(bins, share), counts)
