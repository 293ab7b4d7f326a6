"""Deliberately bad models for tests, demos and benchmarks (never shipped in the product).

The rollout tests need models that fail on some inputs or answer slowly. The product's trainer
takes a ``wrap`` hook; this package supplies the wrappers (modelops_testing.wrappers) and a
`modelops train` with the extra flags (``python -m modelops_testing train ... --slow-ms 40``).
Callers put tests/models on ``sys.path`` / ``PYTHONPATH`` (tests.models does it for the harness).
"""

from __future__ import annotations

from typing import Any

from modelops.training.trainer import Dataset, TrainOptions

# What a skops model server must be told to trust (`modelops serve --trust-type`) to load these.
TRUSTED_TYPES = ("modelops_testing.wrappers.SlowEstimator", "modelops_testing.wrappers.FailAboveEstimator")


def bad_options(
    *, slow_ms: float = 0.0, fail_above: float | None = None, fail_feature: int = 0, **options: Any
) -> TrainOptions:
    """TrainOptions whose model sleeps ``slow_ms`` in every predict and/or raises on rows whose
    feature ``fail_feature`` is above ``fail_above``; ``options`` are the usual TrainOptions fields."""
    opts = TrainOptions(**options)
    opts.extra = {**opts.extra, "slow_ms": slow_ms, "fail_above": fail_above, "fail_feature": fail_feature}

    def wrap(model: Any, data: Dataset) -> Any:
        from modelops_testing.wrappers import FailAboveEstimator, SlowEstimator

        served = model
        if fail_above is not None:
            if not 0 <= fail_feature < data.X.shape[1]:
                raise ValueError(f"--fail-feature must be in [0, {data.X.shape[1]})")
            served = FailAboveEstimator(served, threshold=fail_above, feature_index=fail_feature)
        if slow_ms > 0:
            served = SlowEstimator(served, delay_ms=slow_ms)
        return served

    if slow_ms > 0 or fail_above is not None:
        opts.wrap = wrap
    return opts
