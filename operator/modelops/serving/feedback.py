"""Ground truth for served predictions: the feedback endpoint and rolling accuracy / MAE.

Clients POST labels for earlier predictions by the request id the inference response carried
(``POST /v2/models/<name>[/versions/<v>]/feedback``, body ``{"id": "...", "label": ...}`` or a batch
``{"feedback": [{"id": ..., "label": ...}, ...]}``; ``label`` is a scalar for a one-row request or
a list with one label per row). The answer is ``200 {"joined": n, "unknown": n, "expired": n}``:
an id the server no longer (or never) knew is counted, not refused. A malformed body is a 400
naming the field.

Who calls what: the supervisor of ``modelops serve`` makes one :class:`FeedbackJournal` before it
forks (an anonymous shared mapping, like :class:`~modelops.serving.drift_monitor.SharedRing`);
each worker records every answered prediction with :meth:`FeedbackJournal.record` and joins
labels with :func:`handle_feedback` (a label may reach another worker than its prediction did,
hence the shared rings); the supervisor turns the joined outcomes into gauges with
:class:`QualityMonitor`. The join is bounded twice: ``capacity`` rows per worker (a ring keyed
by a 64-bit hash of the request id) and ``join_window_s`` seconds.

Concurrency: each worker writes only its own prediction ring and its own outcome ring. A label
joined by one worker clears the key of the matched slot in the other worker's ring (a single
8-byte store) so a second label for the same row counts as unknown; a slot being overwritten
while it is read can at worst miss one join, never join the wrong id, because the key is
compared again after the values are read.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import mmap
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from modelops.serving.drift_monitor import SharedRing

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
FEEDBACK_SUFFIX = b"/feedback"
MAX_ITEMS = 10_000


class FeedbackError(Exception):
    """A malformed feedback body; the message names the field."""


@dataclass(frozen=True)
class Label:
    """One label for one row of an earlier request."""

    request_id: str
    row: int
    value: Any


@dataclass
class JoinCounts:
    joined: int = 0
    unknown: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"joined": self.joined, "unknown": self.unknown, "expired": self.expired}


def id_key(request_id: str) -> int:
    """A nonzero 64-bit key for a request id (0 marks an empty or consumed slot)."""
    key = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "little")
    return key or 1


class FeedbackJournal:
    """Recent predictions of every worker, keyed by request id, plus each worker's join outcomes.

    Made before fork so all workers and the supervisor share the same pages. Per worker and slot:
    key (uint64), row index, monotonic time, prediction (class index or value).
    """

    def __init__(self, workers: int, capacity: int, join_window_s: float, classes: list[Any] | None) -> None:
        if capacity < 1:
            raise ValueError(f"feedback capacity must be at least 1, got {capacity}")
        self.workers = workers
        self.capacity = capacity
        self.join_window_s = join_window_s
        # None: a regressor; else the class labels in the order predictions index them.
        self.classes = classes
        self._class_index = {_label_text(c): i for i, c in enumerate(classes or [])}
        n = workers * capacity
        self._map = mmap.mmap(-1, 8 * workers + 8 * 4 * n)
        self.counters: npt.NDArray[np.int64] = np.frombuffer(self._map, dtype=np.int64, count=workers)
        offset = 8 * workers
        self.keys: npt.NDArray[np.uint64] = np.frombuffer(self._map, np.uint64, n, offset).reshape(workers, capacity)
        offset += 8 * n
        self.rows: npt.NDArray[np.int64] = np.frombuffer(self._map, np.int64, n, offset).reshape(workers, capacity)
        offset += 8 * n
        self.times: FloatArray = np.frombuffer(self._map, np.float64, n, offset).reshape(workers, capacity)
        offset += 8 * n
        self.values: FloatArray = np.frombuffer(self._map, np.float64, n, offset).reshape(workers, capacity)
        # Joined outcomes (1/0 for a classifier, absolute error for a regressor) for the supervisor.
        self.outcomes = SharedRing(workers, capacity, 1)

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"

    # -- worker side ---------------------------------------------------------------------------
    def record(self, worker: int, request_id: str, predictions: npt.NDArray[Any], now: float | None = None) -> None:
        """Remember the predictions of one answered request (one slot per row)."""
        n = int(predictions.shape[0])
        if n == 0:
            return
        if n > self.capacity:  # a request larger than the ring keeps its last rows
            predictions = predictions[-self.capacity :]
        now = time.monotonic() if now is None else now
        key = id_key(request_id)
        start = int(self.counters[worker])
        if n == 1:  # the common case, without numpy's per-call overhead of fancy indexing
            slot = start % self.capacity
            p = predictions[0]
            p = p.item() if hasattr(p, "item") else p
            value = float(p) if self.classes is None else float(self._class_index.get(_label_text(p), -1))
            keys = self.keys[worker]
            keys[slot] = 0
            self.rows[worker, slot] = 0
            self.times[worker, slot] = now
            self.values[worker, slot] = value
            keys[slot] = key
            self.counters[worker] = start + 1
            return
        values = self._prediction_values(predictions)
        m = int(values.shape[0])
        slots = (start + np.arange(m)) % self.capacity
        # Keys last: a reader that sees a key sees the rest of its slot.
        self.keys[worker, slots] = 0
        self.rows[worker, slots] = np.arange(n - m, n)
        self.times[worker, slots] = now
        self.values[worker, slots] = values
        self.keys[worker, slots] = np.uint64(key)
        self.counters[worker] = start + m

    def _prediction_values(self, predictions: npt.NDArray[Any]) -> FloatArray:
        if self.classes is None:
            return np.asarray(predictions, dtype=np.float64).reshape(-1)
        # Few distinct classes per request: map those, then index (no Python work per row).
        uniques, inverse = np.unique(predictions, return_inverse=True)
        mapped = np.asarray([self._class_index.get(_label_text(u), -1) for u in uniques.tolist()], dtype=np.float64)
        return mapped[inverse.reshape(-1)]

    def join(self, worker: int, labels: list[Label], now: float | None = None) -> JoinCounts:
        """Match labels with remembered predictions; joined outcomes go to this worker's ring."""
        now = time.monotonic() if now is None else now
        counts = JoinCounts()
        scores: list[float] = []
        label_keys = [id_key(label.request_id) for label in labels]
        distinct = np.asarray(sorted(set(label_keys)), dtype=np.uint64)
        # One pass over every ring per distinct id, or one isin pass for a large body.
        if distinct.shape[0] == 1:
            ws, ss = np.nonzero(self.keys == distinct[0])
        else:
            ws, ss = np.nonzero(np.isin(self.keys, distinct))
        candidates: dict[int, list[tuple[int, int]]] = {}
        for w, slot in zip(ws.tolist(), ss.tolist(), strict=True):
            candidates.setdefault(int(self.keys[w, slot]), []).append((w, slot))
        for label, int_key in zip(labels, label_keys, strict=True):
            key = np.uint64(int_key)
            found = False
            expired = False
            for w, slot in candidates.get(int_key, ()):
                row, at, value = int(self.rows[w, slot]), float(self.times[w, slot]), float(self.values[w, slot])
                if self.keys[w, slot] != key or row != label.row:
                    continue
                if now - at > self.join_window_s:
                    expired = True
                    continue
                self.keys[w, slot] = 0  # consumed: a repeated label for this row is unknown
                scores.append(self._score(value, label.value))
                found = True
                break
            if found:
                counts.joined += 1
            elif expired:
                counts.expired += 1
            else:
                counts.unknown += 1
        if scores:
            column = np.asarray(scores, dtype=np.float64)
            self.outcomes.write(worker, np.full((column.shape[0], 1), now), column)
        return counts

    def _score(self, predicted: float, label: Any) -> float:
        if self.classes is None:
            return abs(predicted - float(label))
        index = self._class_index.get(_label_text(label))
        return 1.0 if index is not None and index == int(predicted) else 0.0


def _label_text(value: Any) -> str:
    """Labels compare by their text, so 1, 1.0 and "1" name the same class as numpy's 1."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- the endpoint ------------------------------------------------------------------------------


def parse_feedback(body: bytes, regression: bool) -> list[Label]:
    """Decode a feedback body into labels, or raise FeedbackError naming the bad field."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FeedbackError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FeedbackError("body must be a JSON object with 'id' and 'label', or 'feedback': [...]")
    if "feedback" in doc:
        items = doc["feedback"]
        if not isinstance(items, list) or not items:
            raise FeedbackError("'feedback' must be a non-empty list of {'id', 'label'} objects")
        if len(items) > MAX_ITEMS:
            raise FeedbackError(f"'feedback' holds {len(items)} items; at most {MAX_ITEMS} per request")
        where = [f"feedback[{i}]" for i in range(len(items))]
    else:
        items, where = [doc], [""]
    labels: list[Label] = []
    for item, at in zip(items, where, strict=True):
        prefix = f"{at}." if at else ""
        if not isinstance(item, dict):
            raise FeedbackError(f"{at or 'body'} must be an object with 'id' and 'label'")
        if "id" not in item:
            raise FeedbackError(f"{prefix}id is required")
        request_id = item["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, str | int) or request_id == "":
            raise FeedbackError(f"{prefix}id must be a non-empty string (the inference response's id)")
        if "label" not in item:
            raise FeedbackError(f"{prefix}label is required")
        value = item["label"]
        values = value if isinstance(value, list) else [value]
        if not values:
            raise FeedbackError(f"{prefix}label must not be an empty list")
        for row, v in enumerate(values):
            field = f"{prefix}label" + (f"[{row}]" if isinstance(value, list) else "")
            if v is None or isinstance(v, dict | list):
                raise FeedbackError(f"{field} must be a number or a string, got {orjson.dumps(v).decode()}")
            if regression and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise FeedbackError(f"{field} must be a number (the model is a regressor), got {v!r}")
            labels.append(Label(str(request_id), row, v))
    return labels


def handle_feedback(
    journal: FeedbackJournal | None, worker: int, body: bytes, metrics: Any = None, sink: Any = None
) -> tuple[int, bytes]:
    """Answer one feedback request: (HTTP status, JSON body). Never raises."""
    if journal is None:
        return 404, orjson.dumps({"error": "feedback is disabled on this server"})
    try:
        labels = parse_feedback(body, regression=journal.classes is None)
    except FeedbackError as exc:
        return 400, orjson.dumps({"error": f"invalid feedback: {exc}"})
    counts = journal.join(worker, labels)
    if metrics is not None:
        metrics.count(counts)
    if sink is not None:
        sink.labels(labels)
    return 200, orjson.dumps(counts.as_dict())


# -- the supervisor side -----------------------------------------------------------------------


class QualityMonitor:
    """Supervisor-side: rolling accuracy (classifier) or MAE (regressor) over the joined outcomes."""

    def __init__(self, journal: FeedbackJournal, window_s: float, gauges: Any) -> None:
        self.journal = journal
        self.window_s = window_s
        self.gauges = gauges
        self._seen = [0] * journal.workers
        self._times: list[FloatArray] = []
        self._scores: list[FloatArray] = []
        self._exported = False

    def reset_worker(self, worker: int) -> None:
        self._seen[worker] = int(self.journal.outcomes.counters[worker])

    def collect(self, now: float) -> tuple[float | None, int]:
        """Take new outcomes, drop those older than the window; returns (value, samples) and sets
        the gauges (the value only when there is at least one sample: no data is not 100 %; NaN once
        the window has emptied)."""
        ring = self.journal.outcomes
        for w in range(ring.workers):
            rows, self._seen[w] = ring.read_since(w, self._seen[w])
            if rows.shape[0]:
                self._times.append(rows[:, 0].copy())
                self._scores.append(rows[:, 1].copy())
        if self._times:
            times = np.concatenate(self._times)
            scores = np.concatenate(self._scores)
            keep = times >= now - self.window_s
            self._times, self._scores = [times[keep]], [scores[keep]]
            samples = int(keep.sum())
        else:
            samples = 0
        value = float(self._scores[0].mean()) if samples else None
        if self.gauges is not None:
            if value is not None:
                self.gauges.set_quality(value)
                self._exported = True
            elif self._exported:
                # The window emptied: NaN rather than a stale number (an alert on it stays quiet).
                self.gauges.set_quality(float("nan"))
            self.gauges.set_samples(samples)
        return value, samples


# -- the glue the server hooks in --------------------------------------------------------------


_ids: tuple[int, str, Iterator[int]] = (0, "", itertools.count())


def new_request_id() -> str:
    """An id for an inference request that came without one, so its answer can be labelled later:
    64 random bits per process (drawn again after fork) and a counter, cheaper than uuid4 per request."""
    global _ids
    pid, prefix, counter = _ids
    if pid != os.getpid():
        pid, prefix, counter = os.getpid(), os.urandom(8).hex(), itertools.count(1)
        _ids = (pid, prefix, counter)
    return f"{prefix}-{next(counter):x}"


class ServedHooks:
    """What one worker does with each answered inference and each feedback body.

    Hooked into modelops.serving.dataplane (``DataPlane.served``); every method is safe on the request path:
    it never raises and never blocks.
    """

    def __init__(self, worker: int, journal: FeedbackJournal | None, counters: Any, request_log: Any) -> None:
        self.worker = worker
        self.journal = journal
        self.counters = counters
        self.request_log = request_log

    def predicted(self, request_id: Any, rows: FloatArray, predictions: npt.NDArray[Any]) -> None:
        try:
            rid = str(request_id)
            if self.journal is not None:
                self.journal.record(self.worker, rid, predictions)
            if self.request_log is not None:
                self.request_log.offer(rid, rows, predictions)
        except Exception:  # bookkeeping must never cost a client its answer
            log.exception("failed to record a prediction for feedback")

    def feedback(self, body: bytes) -> tuple[int, bytes]:
        try:
            return handle_feedback(self.journal, self.worker, body, self.counters, self.request_log)
        except Exception as exc:
            log.exception("feedback failed")
            return 500, orjson.dumps({"error": f"feedback failed: {type(exc).__name__}"})

    def close(self) -> None:
        if self.request_log is not None:
            self.request_log.close()


def answer(served: ServedHooks | None, body: bytes) -> tuple[int, bytes]:
    """The feedback route's answer (404 when the server runs without feedback)."""
    if served is None:
        return 404, orjson.dumps({"error": "feedback is disabled on this server"})
    return served.feedback(body)


@dataclass
class FeedbackConfig:
    capacity: int = 65536  # remembered prediction rows per worker
    join_window_s: float = 3600.0  # how long a prediction waits for its label
    quality_window_s: float = 600.0  # rolling window of accuracy / MAE
    enabled: bool = True


class FeedbackPlumbing:
    """Made by the supervisor before it forks: the shared journal, the quality monitor, the request log."""

    def __init__(
        self,
        config: FeedbackConfig,
        workers: int,
        classes: list[Any] | None,
        labels: tuple[str, str, str],
        feature_names: list[str],
        request_log_config: Any = None,
    ) -> None:
        from modelops.serving.metrics import QualityGauges

        self.labels = labels
        self.feature_names = feature_names
        self.request_log_config = request_log_config
        self.journal = None
        if config.enabled:
            self.journal = FeedbackJournal(workers, config.capacity, config.join_window_s, classes)
        self.monitor: QualityMonitor | None = None
        if self.journal is not None:
            gauges = QualityGauges(*labels, self.journal.task)
            self.monitor = QualityMonitor(self.journal, config.quality_window_s, gauges)

    def hooks_for(self, worker: int) -> ServedHooks:
        """In the worker, after fork: its counters and its request-log thread."""
        from modelops.serving.metrics import FeedbackCounters, RequestLogCounters

        request_log = None
        if self.request_log_config is not None:
            from modelops.serving.datalog import RequestLog

            request_log = RequestLog(
                self.request_log_config, self.feature_names, *self.labels, counters=RequestLogCounters(*self.labels)
            ).start()
        counters = FeedbackCounters(*self.labels) if self.journal is not None else None
        return ServedHooks(worker, self.journal, counters, request_log)

    def reset_worker(self, worker: int) -> None:
        if self.monitor is not None:
            self.monitor.reset_worker(worker)

    def tick(self, now: float) -> None:
        if self.monitor is not None:
            self.monitor.collect(now)


def configs_from_args(args: Any) -> tuple[FeedbackConfig, Any]:
    """(FeedbackConfig, RequestLogConfig | None) from the parsed flags; ValueError names a bad flag."""
    from modelops.serving.datalog import RequestLogConfig

    if args.feedback_capacity < 0:
        raise ValueError(f"--feedback-capacity must be 0 or more, got {args.feedback_capacity}")
    if args.feedback_join_window <= 0 or args.quality_window <= 0:
        raise ValueError("--feedback-join-window and --quality-window must be positive")
    feedback = FeedbackConfig(capacity=max(1, args.feedback_capacity), join_window_s=args.feedback_join_window,
                              quality_window_s=args.quality_window, enabled=args.feedback_capacity > 0)
    request_log = None
    if args.log_requests_to:
        request_log = RequestLogConfig(args.log_requests_to, args.log_sample_rate, args.log_max_rows,
                                       args.log_max_seconds)
    return feedback, request_log
