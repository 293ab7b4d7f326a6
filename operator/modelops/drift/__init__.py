"""Drift statistics (PSI over binned baselines) shared by the model server and analysis.

Pure core: numpy only, no I/O. The trainer calls :func:`numeric_baseline` /
:func:`categorical_baseline` to store a baseline next to the model; the model server's
supervisor feeds live rows into a :class:`SlidingWindowCounts` and reads :func:`psi` back.
"""

from modelops.drift.psi import (
    Baseline,
    SlidingWindowCounts,
    bin_counts,
    categorical_baseline,
    numeric_baseline,
    psi,
)

__all__ = [
    "Baseline",
    "SlidingWindowCounts",
    "bin_counts",
    "categorical_baseline",
    "numeric_baseline",
    "psi",
]
