"""Prometheus metrics of the model server, correct across its worker processes.

Created by each worker (request metrics) and by the supervisor (drift gauges) of
``modelops serve``; scraped from ``/metrics`` on any worker. Uses prometheus_client's
multiprocess mode: every process writes its own memory-mapped file, and a scrape merges them.
The operator's analysis queries these exact names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

LABELS = ("model", "version", "revision")

# Fine enough for a p99 anywhere from 0.25 ms to 5 s.
DURATION_BUCKETS = (
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def enable_multiprocess(directory: Path) -> None:
    """Point prometheus_client at ``directory`` (emptied first); call before creating metrics."""
    if directory.exists():
        for child in directory.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from prometheus_client import values

    # prometheus_client picks its value class at import; whoever imported it first may have done
    # so before the variable was set.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight) so they stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def render() -> tuple[bytes, str]:
    """Merge every process's metrics into the text exposition format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """The per-worker metrics, with label children bound once (label lookups cost per call)."""

    def __init__(self, model: str, version: str, revision: str, task: str, classes: list[Any]) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self._values = (model, version, revision)
        # ``protocol`` is "rest" or "grpc"; ``code`` is the HTTP status, or for gRPC the HTTP status
        # its status code maps to (so the operator's 5xx error rate covers both protocols).
        self._requests = Counter(
            "modelops_requests",
            "Inference requests by protocol and HTTP status code.",
            [*LABELS, "protocol", "code"],
            registry=None,
        )
        duration = Histogram(
            "modelops_request_duration_seconds",
            "Inference request latency, from the first byte parsed to the response written.",
            [*LABELS, "protocol"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )
        self.duration = duration.labels(*self._values, "rest")
        self.grpc_duration = duration.labels(*self._values, "grpc")
        self.batch_size = Histogram(
            "modelops_batch_size", "Rows per model predict call.", LABELS, buckets=BATCH_BUCKETS, registry=None
        ).labels(*self._values)
        self.inflight = Gauge(
            "modelops_inflight_requests",
            "Inference requests received and not yet answered.",
            LABELS,
            multiprocess_mode="livesum",
            registry=None,
        ).labels(*self._values)
        self.task = task
        self._codes: dict[tuple[int, str], Any] = {}
        self._classes: dict[Any, Any] = {}
        if task == "classification":
            self._predictions = Counter(
                "modelops_predictions", "Predicted rows by class.", [*LABELS, "class"], registry=None
            )
            for c in classes:
                self.prediction_child(c)
        else:
            self.prediction_value = Histogram(
                "modelops_prediction_value",
                "Distribution of predicted values (regression).",
                LABELS,
                buckets=_value_buckets(classes),
                registry=None,
            ).labels(*self._values)

    def request(self, code: int, protocol: str = "rest") -> Any:
        child = self._codes.get((code, protocol))
        if child is None:
            child = self._requests.labels(*self._values, protocol, str(code))
            self._codes[(code, protocol)] = child
        return child

    def prediction_child(self, label: Any) -> Any:
        child = self._classes.get(label)
        if child is None:
            child = self._predictions.labels(*self._values, str(label))
            self._classes[label] = child
        return child


def _value_buckets(edges: list[Any]) -> tuple[float, ...]:
    """Regression buckets: the baseline's bin edges when given, else a generic log scale."""
    values = sorted({float(e) for e in edges})
    if len(values) >= 2:
        return tuple(values)
    return (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0)


class DriftGauges:
    """PSI gauges, written only by the supervisor process (so 'mostrecent' is exact)."""

    def __init__(self, model: str, version: str, revision: str) -> None:
        from prometheus_client import Gauge

        self._values = (model, version, revision)
        self._feature = Gauge(
            "modelops_feature_drift_psi",
            "Population stability index of each input feature over the drift window vs the training baseline.",
            [*LABELS, "feature"],
            multiprocess_mode="mostrecent",
            registry=None,
        )
        self._prediction = Gauge(
            "modelops_prediction_drift_psi",
            "Population stability index of predictions over the drift window vs the training baseline.",
            LABELS,
            multiprocess_mode="mostrecent",
            registry=None,
        ).labels(*self._values)
        self._window_rows = Gauge(
            "modelops_drift_window_rows",
            "Rows inside the drift window (PSI is exported once enough are seen).",
            LABELS,
            multiprocess_mode="mostrecent",
            registry=None,
        ).labels(*self._values)

    def set_feature(self, feature: str, value: float) -> None:
        self._feature.labels(*self._values, feature).set(value)

    def set_prediction(self, value: float) -> None:
        self._prediction.set(value)

    def set_window_rows(self, rows: int) -> None:
        self._window_rows.set(rows)


class FeedbackCounters:
    """Per-worker counts of feedback labels by outcome (joined / unknown / expired)."""

    def __init__(self, model: str, version: str, revision: str) -> None:
        from prometheus_client import Counter

        counter = Counter(
            "modelops_feedback_labels",
            "Ground-truth labels received, by whether they joined a remembered prediction.",
            [*LABELS, "outcome"],
            registry=None,
        )
        self._children = {o: counter.labels(model, version, revision, o) for o in ("joined", "unknown", "expired")}

    def count(self, counts: Any) -> None:
        for outcome, n in counts.as_dict().items():
            if n:
                self._children[outcome].inc(n)


class QualityGauges:
    """Rolling accuracy (classifiers) or MAE (regressors) from feedback, written by the supervisor only."""

    def __init__(self, model: str, version: str, revision: str, task: str) -> None:
        from prometheus_client import Gauge

        values = (model, version, revision)
        if task == "classification":
            name, doc = "modelops_feedback_accuracy", "Share of labelled predictions that were right, over the window."
        else:
            name, doc = "modelops_feedback_mae", "Mean absolute error of labelled predictions, over the window."
        quality = Gauge(name, doc, LABELS, multiprocess_mode="mostrecent", registry=None)
        samples = Gauge(
            "modelops_feedback_window_samples",
            "Labelled predictions inside the feedback quality window.",
            LABELS,
            multiprocess_mode="mostrecent",
            registry=None,
        )
        self.collectors = (quality, samples)  # for a registry of its own (tests render one page)
        self._quality = quality.labels(*values)
        self._samples = samples.labels(*values)

    def set_quality(self, value: float) -> None:
        self._quality.set(value)

    def set_samples(self, samples: int) -> None:
        self._samples.set(samples)


class RequestLogCounters:
    """Per-worker counts of the request log: rows queued for writing and rows dropped (queue full)."""

    def __init__(self, model: str, version: str, revision: str) -> None:
        from prometheus_client import Counter

        counter = Counter(
            "modelops_request_log_rows",
            "Sampled inference rows handed to the request log, by outcome (queued, dropped, written, failed).",
            [*LABELS, "outcome"],
            registry=None,
        )
        self._children = {
            o: counter.labels(model, version, revision, o) for o in ("queued", "dropped", "written", "failed")
        }

    def inc(self, outcome: str, n: int = 1) -> None:
        self._children[outcome].inc(n)
