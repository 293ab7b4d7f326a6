"""The request log: sampled inputs and predictions of a model server, and the feedback labels, as Parquet.

Enabled by ``modelops serve --log-requests-to URI [--log-sample-rate R]`` (URI: a directory,
``file://``, ``pvc://<claim>/<path>`` or ``s3://<bucket>/<prefix>``, usually next to the model).
Each worker process owns one :class:`RequestLog`: the request path only draws a random number and
puts a reference on a bounded queue (``put_nowait``; when the queue is full the rows are dropped and
counted, never waited for); a background thread batches and writes closed Parquet files:

- ``<URI>/requests/...parquet``: the sampled requests and their predictions;
- ``<URI>/labels/...parquet``: every well-formed feedback label, joined or not; the join happens later,
  in ``modelops dataset build`` (modelops.training.served_data), with no time limit.

Columns and file names are in modelops.artifacts.log_layout, which the reader shares; files go through
the artifact store (modelops.artifacts.store).

A file is closed (rotated) when it holds ``max_rows`` rows or its first row is ``max_seconds`` old,
and on shutdown. Files are written whole (a temp file renamed, or one S3 PUT), so a reader never
sees half a file.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import uri as uris
from modelops.artifacts.log_layout import FEATURES_KEY, LABELS_DIR, REQUESTS_DIR
from modelops.artifacts.store import ArtifactStore

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass
class RequestLogConfig:
    uri: str
    sample_rate: float = 1.0
    max_rows: int = 50_000  # rows per file
    max_seconds: float = 60.0  # age of a file's first row before it is written
    queue_items: int = 4096  # requests (or label batches) waiting for the writer

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"--log-sample-rate must be between 0 and 1, got {self.sample_rate}")
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme not in uris.WRITABLE_SCHEMES:
            raise ValueError(f"--log-requests-to must be a file://, pvc:// or s3:// directory URI, got {self.uri!r}")
        if self.max_rows < 1 or self.max_seconds <= 0 or self.queue_items < 1:
            raise ValueError("request log limits must be positive")


@dataclass
class _Requests:
    request_id: str
    at: float
    rows: FloatArray
    predictions: npt.NDArray[Any]


@dataclass
class _Labels:
    at: float
    items: list[tuple[str, int, Any]]


class RequestLog:
    """One worker's request log: ``offer``/``labels`` on the request path, writing in a thread."""

    def __init__(
        self,
        config: RequestLogConfig,
        feature_names: list[str],
        model: str,
        version: str,
        revision: str,
        counters: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.features = list(feature_names)
        self.model, self.version, self.revision = model, version, revision
        self.counters = counters
        self.rng = rng or random.Random()
        self.queue: queue.Queue[_Requests | _Labels | None] = queue.Queue(config.queue_items)
        self.dropped = 0
        self.written_rows = 0
        self.failed_files = 0
        self._seq = 0
        self._store = ArtifactStore()  # pvc:// under /mnt/pvc, where the Deployment builder mounts the claim
        self._thread: threading.Thread | None = None
        self._prefix = f"{socket.gethostname()}-{_pid()}"

    def start(self) -> RequestLog:
        """Start the writer thread (in the worker process, after fork: threads do not survive fork)."""
        self._prefix = f"{socket.gethostname()}-{_pid()}"
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()
        return self

    # -- request path: never blocks ------------------------------------------------------------
    def offer(self, request_id: str, rows: FloatArray, predictions: npt.NDArray[Any]) -> bool:
        """Maybe log one answered request (sampled); True when it was queued."""
        rate = self.config.sample_rate
        if rate <= 0.0 or (rate < 1.0 and self.rng.random() >= rate):
            return False
        return self._put(_Requests(request_id, time.time(), rows, predictions), int(rows.shape[0]))

    def labels(self, labels: list[Any]) -> bool:
        """Log feedback labels (objects with request_id, row, value); never sampled."""
        items = [(lab.request_id, lab.row, lab.value) for lab in labels]
        return self._put(_Labels(time.time(), items), len(items)) if items else False

    def _put(self, item: _Requests | _Labels, rows: int) -> bool:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += rows
            if self.counters is not None:
                self.counters.inc("dropped", rows)
            return False
        if self.counters is not None:
            self.counters.inc("queued", rows)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered and stop the thread (waits at most ``timeout`` seconds)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    # -- writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        requests: list[_Requests] = []
        labels: list[_Labels] = []
        request_rows = label_rows = 0
        first_request = first_label = 0.0
        stop = False
        while not stop:
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                item = _Labels(0.0, [])  # a tick: only the age checks below run
            if item is None:
                stop = True
            elif isinstance(item, _Requests):
                if not requests:
                    first_request = time.monotonic()
                requests.append(item)
                request_rows += int(item.rows.shape[0])
            elif item.items:
                if not labels:
                    first_label = time.monotonic()
                labels.append(item)
                label_rows += len(item.items)
            now = time.monotonic()
            if requests and (stop or request_rows >= self.config.max_rows
                             or now - first_request >= self.config.max_seconds):
                self._write(REQUESTS_DIR, self._requests_table(requests), request_rows)
                requests, request_rows = [], 0
            if labels and (stop or label_rows >= self.config.max_rows or now - first_label >= self.config.max_seconds):
                self._write(LABELS_DIR, self._labels_table(labels), label_rows)
                labels, label_rows = [], 0

    def _requests_table(self, batch: list[_Requests]) -> Any:
        import pyarrow as pa

        ids: list[str] = []
        rows: list[int] = []
        times: list[float] = []
        preds: list[str] = []
        for item in batch:
            n = int(item.rows.shape[0])
            ids.extend([item.request_id] * n)
            rows.extend(range(n))
            times.extend([item.at] * n)
            preds.extend(json.dumps(v) for v in item.predictions.tolist())
        X = np.concatenate([item.rows for item in batch]) if len(batch) > 1 else batch[0].rows
        n_rows = len(ids)
        columns: dict[str, Any] = {
            "_id": pa.array(ids, pa.string()),
            "_row": pa.array(rows, pa.int32()),
            "_time": pa.array(times, pa.float64()),
            "_model": pa.array([self.model] * n_rows, pa.string()),
            "_version": pa.array([self.version] * n_rows, pa.string()),
            "_revision": pa.array([self.revision] * n_rows, pa.string()),
            "_prediction": pa.array(preds, pa.string()),
        }
        for j, name in enumerate(self.features):
            columns[name] = pa.array(np.ascontiguousarray(X[:, j]), pa.float64())
        table = pa.table(columns)
        return table.replace_schema_metadata({FEATURES_KEY: json.dumps(self.features).encode()})

    @staticmethod
    def _labels_table(batch: list[_Labels]) -> Any:
        import pyarrow as pa

        items = [(rid, row, at.at, value) for at in batch for rid, row, value in at.items]
        return pa.table({
            "_id": pa.array([i[0] for i in items], pa.string()),
            "_row": pa.array([i[1] for i in items], pa.int32()),
            "_time": pa.array([i[2] for i in items], pa.float64()),
            "_label": pa.array([json.dumps(i[3]) for i in items], pa.string()),
        })

    def _write(self, kind: str, table: Any, rows: int) -> None:
        import pyarrow.parquet as pq

        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        uri = uris.join(self.config.uri, kind, f"{stamp}-{self._prefix}-{self._seq:06d}.parquet")
        try:
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            self._store.write_bytes(uri, buf.getvalue())
        except Exception as exc:  # storage down: count and carry on; the request path never notices
            self.failed_files += 1
            log.error("request log: could not write %s (%d rows): %s", uri, rows, exc)
            if self.counters is not None:
                self.counters.inc("failed", rows)
            return
        self.written_rows += rows
        if self.counters is not None:
            self.counters.inc("written", rows)


def _pid() -> int:
    import os

    return os.getpid()
