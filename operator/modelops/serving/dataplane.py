"""The protocol-free data plane of one model-server worker: predict, in-flight bookkeeping,
metrics, drift and the request-log hand-off.

Created by modelops.serving.worker in each forked worker; REST (modelops.serving.rest over
modelops.serving.http) and gRPC (modelops.serving.grpc_server) are thin adapters over it: they
decode a request, :meth:`DataPlane.submit` it, and encode the outcome they are told of. Everything
both protocols must do alike lives here, once: counting in-flight requests, the predict timeout,
the request id and request log, the request metrics, readiness and the drain. It imports no
protocol module (an import-linter contract keeps it so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.serving import feedback
from modelops.serving.batching import Batcher, Outcome, Pending
from modelops.serving.drift_monitor import SharedRing
from modelops.serving.heartbeat import Heartbeats
from modelops.serving.metrics import RequestMetrics
from modelops.serving.predictor import Predictor
from modelops.serving.protocol import FloatArray, InferRequest, ModelSpec

log = logging.getLogger(__name__)

TICK_S = 0.25  # heartbeat, in-flight gauge, predict timeouts, the adapters' own sweeps
DRAIN_TICK_S = 0.1

# Told about every answered inference, REST or gRPC: (request, outputs by name, protocol).
InferObserver = Callable[[InferRequest, dict[str, Any], str], None]


@dataclass
class WorkerConfig:
    index: int
    max_batch_size: int
    max_latency_s: float
    max_body_bytes: int
    request_timeout_s: float
    keepalive_timeout_s: float
    drain_timeout_s: float
    inline_predict: bool
    revision: str
    # A request waiting on the model longer than this ends with 504 (gRPC DEADLINE_EXCEEDED), and
    # a worker whose loop or model is stuck this long makes readiness false.
    predict_timeout_s: float = 30.0
    max_connections: int = 4096  # per worker; more are answered 503 and closed
    # Bytes of pipelined requests queued on one connection before we stop reading from it.
    max_pipelined_bytes: int = 8 * 1024 * 1024


class DataPlane:
    """Per-worker state shared by every connection and call, whatever its protocol."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        predictor: Predictor,
        spec: ModelSpec,
        config: WorkerConfig,
        metrics: RequestMetrics,
        ring: SharedRing | None,
        metadata: dict[str, Any],
        heartbeats: Heartbeats | None = None,
    ) -> None:
        self.loop = loop
        self.predictor = predictor
        self.spec = spec
        self.config = config
        self.metrics = metrics
        self.ring = ring
        self.metadata = metadata  # the OIP v2 model metadata answer
        self.heartbeats = heartbeats
        self.served: feedback.ServedHooks | None = None  # feedback + request log (serving/feedback.py)
        self.observers: list[InferObserver] = []
        self.on_drain: list[Callable[[], None]] = []  # each adapter's graceful stop
        self.tickers: list[Callable[[float], None]] = []  # each adapter's periodic sweep (now)
        # Clients that could still add to a batch: an open REST connection, a gRPC call waiting.
        self.clients = 0
        self.inflight = 0
        self.waiting: set[Pending] = set()  # submitted, not yet answered: the predict timeout
        self.draining = False
        self.drain_started = 0.0
        self.batcher = Batcher(
            loop, predictor, self, config.max_batch_size, config.max_latency_s, config.inline_predict
        )
        self.classes = predictor.classes
        self.class_labels = [
            c.item() if hasattr(c, "item") else c for c in (self.classes if self.classes is not None else [])
        ]
        self._durations = {"rest": metrics.duration, "grpc": metrics.grpc_duration}
        self._ticker: asyncio.Handle = loop.call_later(TICK_S, self._tick)

    # -- requests ------------------------------------------------------------------------------
    def submit(
        self,
        req: InferRequest,
        protocol: str,
        started: float,
        answer: Callable[[Pending], None],
        *,
        new_id: bool = False,
        holds_client: bool = False,
    ) -> Pending:
        """Queue ``req`` for the model; ``answer`` is told once, on the loop, with the outcome set
        (or ``timed_out``). ``new_id``: give it a request id when it has none and feedback is on
        (the client labels the answer by this id). ``holds_client``: the request counts as a
        client that may add to a batch until answered (a gRPC call; a REST connection is counted
        while it is open)."""
        if new_id and req.request_id is None and self.served is not None:
            req.request_id = feedback.new_request_id()
        want_proba = any(name == "predict_proba" for name, _ in req.outputs)
        deadline = time.monotonic() + self.config.predict_timeout_s
        item = Pending(req, protocol, started, deadline, want_proba, answer, holds_client)
        self.inflight += 1
        if holds_client:
            self.clients += 1
        self.waiting.add(item)
        self.batcher.submit(item)
        return item

    def deliver(self, item: Pending, outcome: Outcome) -> None:
        """The batcher's outcome for one request (a :class:`~modelops.serving.batching.BatchOwner` method)."""
        self._settle(item)
        item.results, item.error = outcome
        if item.results is not None and self.served is not None and item.request.request_id is not None:
            self.served.predicted(item.request.request_id, item.request.rows, item.results["predict"])
        item.answer(item)

    def cancel(self, item: Pending) -> None:
        """The client went away: drop the request's outcome when it comes."""
        if not item.cancelled:
            item.cancelled = True
            self._settle(item)

    def _settle(self, item: Pending) -> None:
        self.waiting.discard(item)
        self.inflight -= 1
        if item.holds_client:
            self.clients -= 1
        if not self.inflight:
            self.metrics.inflight.set(0)  # idle now: say so at once, not at the next tick

    def _expire(self, now: float) -> None:
        """Answer requests that waited on the model past the predict timeout (the batch may still
        finish; its outcome for them is dropped)."""
        late = [item for item in self.waiting if now >= item.deadline]
        for item in late:
            item.cancelled = item.timed_out = True
            self._settle(item)
            item.error = f"the model did not answer within {self.config.predict_timeout_s:g} s"
            try:
                item.answer(item)
            except Exception:
                log.exception("failed to answer a timed-out request")

    def count(self, code: int, protocol: str, started: float | None) -> None:
        """One inference answer in the request metrics (``code``: HTTP status, or what gRPC's maps to)."""
        self.metrics.request(code, protocol).inc()
        if started is not None:
            self._durations[protocol].observe(time.perf_counter() - started)

    def answered(self, item: Pending, code: int) -> None:
        """An adapter wrote the answer to ``item``: metrics, and observers of successful answers."""
        self.count(code, item.protocol, item.started)
        if code == 200 and self.observers and item.results is not None:
            self.observe(item.request, item.results, item.protocol)

    def observe(self, req: InferRequest, results: dict[str, Any], protocol_name: str) -> None:
        for observer in self.observers:
            try:
                observer(req, results, protocol_name)
            except Exception:  # an observer must never cost a client its answer
                log.exception("inference observer failed")

    # -- the batcher's owner -------------------------------------------------------------------
    def waiting_clients(self) -> int:
        return self.clients

    def predicting(self, running: bool) -> None:
        if self.heartbeats is not None:
            self.heartbeats.predicting(self.config.index, time.monotonic() if running else 0.0)

    def record_batch(self, X: FloatArray, y: npt.NDArray[Any]) -> None:
        """Batch-level metrics and the drift hand-off (counts, not per-row work)."""
        m = self.metrics
        m.batch_size.observe(X.shape[0])
        if self.classes is not None:
            # classes_ is sorted (scikit-learn's contract), so searchsorted gives class indices.
            idx = np.searchsorted(self.classes, y)
            if y.shape[0] == 1:
                m.prediction_child(self.class_labels[int(idx[0])]).inc()
            else:
                counts = np.bincount(idx, minlength=len(self.class_labels)).tolist()
                for k, count in enumerate(counts):
                    if count:
                        m.prediction_child(self.class_labels[k]).inc(count)
            if self.ring is not None:
                self.ring.write(self.config.index, X, idx.astype(np.float64))
        else:
            for v in y.tolist():
                m.prediction_value.observe(v)
            if self.ring is not None:
                self.ring.write(self.config.index, X, np.asarray(y, dtype=np.float64))

    # -- health and lifecycle ------------------------------------------------------------------
    def not_ready_reason(self) -> str | None:
        """Why this server should take no traffic now (draining, or a worker stuck), or None."""
        if self.draining:
            return "shutting down"
        if self.heartbeats is not None:
            stuck = self.heartbeats.stuck(time.monotonic(), self.config.predict_timeout_s)
            if stuck:
                index, seconds = stuck[0]
                return f"worker {index} has been stuck (model or event loop) for {seconds:.1f} s"
        return None

    def model_error(self, name: str, version: str) -> str | None:
        """Why a request naming model ``name`` version ``version`` ('' = any) is not ours, or None."""
        if name == self.spec.name and version in ("", self.spec.version):
            return None
        return (
            f"model not found: {name!r} version {version or '(any)'!r} "
            f"(this server serves {self.spec.name!r} version {self.spec.version!r})"
        )

    def _tick(self) -> None:
        """Periodic: heartbeat, predict timeouts, the in-flight gauge, then the adapters' sweeps."""
        now = time.monotonic()
        if self.heartbeats is not None:
            self.heartbeats.beat(self.config.index)
        if self.waiting:
            self._expire(now)
        self.metrics.inflight.set(self.inflight)
        for ticker in self.tickers:
            try:
                ticker(now)
            except Exception:
                log.exception("periodic sweep failed")
        self._ticker = self.loop.call_later(DRAIN_TICK_S if self.draining else TICK_S, self._tick)

    def begin_drain(self) -> None:
        """SIGTERM: each adapter stops taking new work and finishes what is in flight."""
        if self.draining:
            return
        self.draining = True
        self.drain_started = time.monotonic()
        for hook in self.on_drain:
            hook()
        self._ticker.cancel()
        self._ticker = self.loop.call_soon(self._tick)

    def close(self) -> None:
        self._ticker.cancel()


def server_version() -> str:
    from modelops import __version__

    return str(__version__)
