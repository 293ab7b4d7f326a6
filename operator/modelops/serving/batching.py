"""Adaptive micro-batching: concurrent inference requests merged into one ``predict`` call.

Used by modelops.serving.dataplane, which owns one :class:`Batcher` per worker and is its
:class:`BatchOwner`. Knows no protocol: it sees rows in and outputs (or an error) out. Runs on the
worker's event loop; a slow model predicts in one thread while the loop keeps accepting and the
next batch fills.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from modelops.serving.predictor import Predictor
from modelops.serving.protocol import FloatArray, InferRequest

log = logging.getLogger(__name__)

# One request's outputs by name (``predict``, ``predict_proba``), or None and why it failed.
Outcome = tuple[dict[str, Any] | None, str | None]


@dataclass(slots=True, eq=False)
class Pending:
    """One inference request, from submission to its answer (or its timeout).

    ``eq=False``: requests are kept in a set by identity, and two equal rows are two requests.
    """

    request: InferRequest
    protocol: str  # "rest" or "grpc": the metrics label
    started: float  # perf_counter() when the request's first byte arrived
    deadline: float  # monotonic(): past it the data plane answers "timed out"
    want_proba: bool
    answer: Callable[[Pending], None]  # told once, on the loop: outcome set, or timed_out
    holds_client: bool = False  # counted as a client that may add to a batch while it waits
    results: dict[str, Any] | None = None
    error: str | None = None
    timed_out: bool = False
    cancelled: bool = False  # answered already (timeout) or abandoned (client gone): drop the outcome

    @property
    def rows(self) -> FloatArray:
        return self.request.rows


class BatchOwner(Protocol):
    """What the batcher asks of the data plane that owns it."""

    def waiting_clients(self) -> int:
        """How many clients could still add to a batch (an added wait is pointless beyond)."""

    def predicting(self, running: bool) -> None:
        """A predict call starts or ends (the heartbeat's "stuck model" clock)."""

    def record_batch(self, X: FloatArray, y: npt.NDArray[Any]) -> None:
        """Batch-level metrics and the drift hand-off; called in the predict thread when threaded."""

    def deliver(self, item: Pending, outcome: Outcome) -> None:
        """One request's outcome, on the loop."""


class Batcher:
    """Adaptive micro-batching.

    A request joins the pending batch; the batch runs when it reaches ``max_rows`` rows, or at the
    end of the current event-loop iteration (so everything that arrived together is merged, and a
    lone request waits for nothing). With ``max_latency_s > 0`` it may wait up to that long for
    more, but never when every client that could add to it is already waiting on it.
    Fast models run inline; slow ones in one thread, while the loop keeps accepting and the
    next batch fills.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        predictor: Predictor,
        owner: BatchOwner,
        max_rows: int,
        max_latency_s: float,
        inline: bool,
    ) -> None:
        self.loop = loop
        self.predictor = predictor
        self.owner = owner
        self.max_rows = max_rows
        self.max_latency = max_latency_s
        self.pending: list[Pending] = []
        self.rows = 0
        self.scheduled = False
        self.timer: asyncio.TimerHandle | None = None
        self.running = False
        self.executor = None if inline else ThreadPoolExecutor(1, "predict")

    def submit(self, item: Pending) -> None:
        self.pending.append(item)
        self.rows += item.request.rows.shape[0]
        if self.running:
            return  # flushed when the running batch finishes
        if self.rows >= self.max_rows:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._end_of_iteration)

    def _end_of_iteration(self) -> None:
        self.scheduled = False
        if self.running or not self.pending:
            return
        if self.max_latency <= 0 or len(self.pending) >= self.owner.waiting_clients():
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.max_latency, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.running or not self.pending:
            return
        # Take at most max_rows rows (but always at least one request).
        take, rows = 0, 0
        for item in self.pending:
            n = item.request.rows.shape[0]
            if take and rows + n > self.max_rows:
                break
            rows += n
            take += 1
        batch, self.pending = self.pending[:take], self.pending[take:]
        self.rows -= rows
        self.owner.predicting(True)
        if self.executor is None:
            try:
                results = self._run(batch)
            finally:
                self.owner.predicting(False)
            self._deliver(batch, results)
            if self.pending and not self.scheduled:
                self.scheduled = True
                self.loop.call_soon(self._end_of_iteration)
        else:
            self.running = True
            fut = self.loop.run_in_executor(self.executor, self._run, batch)
            fut.add_done_callback(lambda f: self._after_executor(batch, f))

    def _after_executor(self, batch: list[Pending], fut: asyncio.Future[list[Outcome]]) -> None:
        self.running = False
        self.owner.predicting(False)
        try:
            results = fut.result()
        except Exception as exc:  # _run catches model errors; this is a last line of defence
            log.exception("batch failed")
            results = [(None, f"prediction failed: {type(exc).__name__}")] * len(batch)
        self._deliver(batch, results)
        if self.pending:
            self.flush()

    def _run(self, batch: list[Pending]) -> list[Outcome]:
        """Predict the batch; if it fails, each request alone so one bad row fails only its request."""
        X = batch[0].request.rows if len(batch) == 1 else np.concatenate([p.request.rows for p in batch])
        want_proba = any(p.want_proba for p in batch)
        try:
            out = self._predict(X, want_proba)
        except Exception as exc:
            if len(batch) == 1:
                return [(None, f"model prediction failed: {type(exc).__name__}: {exc}")]
            return [r for p in batch for r in self._run([p])]
        try:
            self.owner.record_batch(X, out["predict"])
        except Exception:  # bookkeeping must never cost a client its answer
            log.exception("failed to record batch metrics")
        if len(batch) == 1:
            return [(out, None)]
        results: list[Outcome] = []
        start = 0
        for p in batch:
            end = start + p.request.rows.shape[0]
            results.append(({k: v[start:end] for k, v in out.items()}, None))
            start = end
        return results

    def _predict(self, X: FloatArray, want_proba: bool) -> dict[str, npt.NDArray[Any]]:
        out = {"predict": self.predictor.predict(X)}
        if want_proba:
            out["predict_proba"] = self.predictor.predict_proba(X)
        return out

    def _deliver(self, batch: list[Pending], results: list[Outcome]) -> None:
        deliver = self.owner.deliver
        for p, outcome in zip(batch, results, strict=True):
            if p.cancelled:
                continue
            try:
                deliver(p, outcome)
            except Exception:
                log.exception("failed to answer a request")
