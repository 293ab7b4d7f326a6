"""False retraining triggers on no-drift traffic: the derived drift threshold vs fixed PSI thresholds.

`make bench-retraining` (python -m benchmarks.retraining.false_alarms) simulates 500 windows of 100
and of 1,000 rows drawn from the training distribution (30 numeric features with 10 quantile bins and
a 3-class prediction 60/30/10, PSI computed by the servers' own code, modelops.drift.psi) and feeds
each window as the stable track's drift reading to the real retraining machine
(modelops.retraining.machine.next_retraining, forDuration 0s so every breaching window fires).
It prints, per window size and threshold, how many windows would have triggered a retrain, and the
retraining machine's cost per tick. Target (issue 8): 0 with the defaults.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus, TrackStatus
from modelops.drift.psi import bin_counts, categorical_baseline, numeric_baseline, psi
from modelops.retraining.machine import next_retraining
from modelops.retraining.observed import DriftObservation, DriftReading, RetrainObserved

FEATURES = 30
CLASSES = [0, 1, 2]
SHARES = [0.6, 0.3, 0.1]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def spec(threshold: float | None) -> ModelDeploymentSpec:
    drift: dict[str, Any] = {"minSamples": 100, "forDuration": "0s"}
    if threshold is not None:
        drift["threshold"] = threshold
    return ModelDeploymentSpec.model_validate({
        "model": {"name": "m", "version": "1", "uri": "file:///m/model.skops", "format": "skops"},
        "retraining": {"triggers": {"drift": drift},
                       "job": {"dataset": {"uri": "file:///d.csv"}, "output": {"uri": "file:///out"}}},
    })


def windows(rows: int, count: int, seed: int) -> list[DriftObservation]:
    rng = np.random.default_rng(seed)
    training = rng.normal(size=(20_000, FEATURES))
    baselines = [numeric_baseline(training[:, i]) for i in range(FEATURES)]
    prediction = categorical_baseline(rng.choice(CLASSES, size=20_000, p=SHARES), CLASSES)
    out = []
    for _ in range(count):
        window = rng.normal(size=(rows, FEATURES))
        readings = [DriftReading(f"f{i}", psi(b.fractions, bin_counts(window[:, i], b.edges)), rows, b.n_bins)
                    for i, b in enumerate(baselines)]
        counts = np.bincount(rng.choice(CLASSES, size=rows, p=SHARES), minlength=3)
        readings.append(DriftReading("prediction", psi(prediction.fractions, counts), rows, 3))
        out.append(DriftObservation("stable1", 600.0, tuple(readings)))
    return out


def false_triggers(threshold: float | None, observations: list[DriftObservation]) -> tuple[int, float]:
    """Windows that fired a drift trigger (each judged afresh), and seconds per retraining-machine tick."""
    the_spec = spec(threshold)
    status = ModelDeploymentStatus(stable=TrackStatus(revision="stable1"))
    fired = 0
    started = time.perf_counter()
    for i, observation in enumerate(observations):
        decision = next_retraining(the_spec, status, RetrainObserved(1, drift=observation),
                                   T0 + timedelta(minutes=10 * i), "m")
        fired += any(e.reason in ("RetrainTriggered", "RetrainSkipped") for e in decision.events)
    return fired, (time.perf_counter() - started) / len(observations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"false drift triggers over {args.windows} no-drift windows ({FEATURES} features + prediction)")
    print(f"{'rows/window':>11}  {'threshold':<22} {'windows fired':>13}  {'rate':>7}  {'us/tick':>8}")
    for rows in (100, 1000):
        observations = windows(rows, args.windows, args.seed + rows)
        for label, threshold in (("derived (default)", None), ("fixed 0.2 (old default)", 0.2), ("fixed 0.1", 0.1)):
            fired, per_tick = false_triggers(threshold, observations)
            print(f"{rows:>11}  {label:<22} {fired:>13}  {fired / args.windows:>7.1%}  {per_tick * 1e6:>8.0f}")


if __name__ == "__main__":
    main()
