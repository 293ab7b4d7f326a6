"""The HTTP side of a model-server worker: an httptools-based asyncio protocol, routing, and
the adaptive micro-batcher that merges concurrent requests into one ``predict``.

Run inside each worker process started by modelops.serving.server. No web framework: a request
is parsed by httptools, decoded by modelops.serving.protocol, queued in :class:`Batcher`, and
answered from a callback, so the common path creates no coroutine or task per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import httptools
import numpy as np
import numpy.typing as npt
import orjson

from modelops.serving import feedback, protocol
from modelops.serving.drift_monitor import SharedRing
from modelops.serving.heartbeat import Heartbeats
from modelops.serving.metrics import RequestMetrics, render
from modelops.serving.predictor import Predictor
from modelops.serving.protocol import InferRequest, ModelSpec, RequestError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
JSON = b"application/json"
MAX_HEADER_BYTES = 64 * 1024
MAX_PIPELINED = 64
DRAIN_IDLE_GRACE_S = 0.5
# After refusing a body (413) we keep reading and discarding what the client still sends, for at
# most this long / this much, so it reads our answer instead of a connection reset.
LINGER_S = 2.0
LINGER_BYTES = 64 * 1024 * 1024

# An extra endpoint (e.g. a feedback or logging module): (path without query, body) -> (status, JSON body).
Route = Callable[[bytes, bytes], tuple[int, bytes]]
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


class _TooLarge(Exception):
    pass


class _HeadersTooLarge(Exception):
    pass


@dataclass
class Pending:
    """One inference request waiting for the batcher."""

    rows: FloatArray
    want_proba: bool
    done: Callable[[dict[str, Any] | None, str | None], None]
    cancelled: bool = False  # the client was answered already (timeout); skip done()


class Batcher:
    """Adaptive micro-batching.

    A request joins the pending batch; the batch runs when it reaches ``max_batch_size`` rows,
    or at the end of the current event-loop iteration (so everything that arrived together is
    merged, and a lone request waits for nothing). With ``max_latency_s > 0`` it may wait up to
    that long for more, but never when every open connection is already waiting on it.
    Fast models run inline; slow ones in one thread, while the loop keeps accepting and the
    next batch fills.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.loop = app.loop
        self.predictor = app.predictor
        self.max_rows = app.config.max_batch_size
        self.max_latency = app.config.max_latency_s
        self.pending: list[Pending] = []
        self.rows = 0
        self.scheduled = False
        self.timer: asyncio.TimerHandle | None = None
        self.running = False
        self.executor = None if app.config.inline_predict else ThreadPoolExecutor(1, "predict")

    def submit(self, item: Pending) -> None:
        self.pending.append(item)
        self.rows += item.rows.shape[0]
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
        if self.max_latency <= 0 or len(self.pending) >= self.app.open_connections + self.app.grpc_waiting:
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
            if take and rows + item.rows.shape[0] > self.max_rows:
                break
            rows += item.rows.shape[0]
            take += 1
        batch, self.pending = self.pending[:take], self.pending[take:]
        self.rows -= rows
        self.app.predicting(True)
        if self.executor is None:
            try:
                results = self._run(batch)
            finally:
                self.app.predicting(False)
            self._deliver(batch, results)
            if self.pending and not self.scheduled:
                self.scheduled = True
                self.loop.call_soon(self._end_of_iteration)
        else:
            self.running = True
            fut = self.loop.run_in_executor(self.executor, self._run, batch)
            fut.add_done_callback(lambda f: self._after_executor(batch, f))

    def _after_executor(self, batch: list[Pending], fut: asyncio.Future[Any]) -> None:
        self.running = False
        self.app.predicting(False)
        try:
            results = fut.result()
        except Exception as exc:  # _run catches model errors; this is a last line of defence
            log.exception("batch failed")
            results = [(None, f"prediction failed: {type(exc).__name__}")] * len(batch)
        self._deliver(batch, results)
        if self.pending:
            self.flush()

    def _run(self, batch: list[Pending]) -> list[tuple[dict[str, Any] | None, str | None]]:
        """Predict the batch; if it fails, each request alone so one bad row fails only its request."""
        X = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
        want_proba = any(p.want_proba for p in batch)
        try:
            out = self._predict(X, want_proba)
        except Exception as exc:
            if len(batch) == 1:
                return [(None, f"model prediction failed: {type(exc).__name__}: {exc}")]
            return [r for p in batch for r in self._run([p])]
        try:
            self.app.record_batch(X, out["predict"])
        except Exception:  # bookkeeping must never cost a client its answer
            log.exception("failed to record batch metrics")
        results: list[tuple[dict[str, Any] | None, str | None]] = []
        start = 0
        for p in batch:
            end = start + p.rows.shape[0]
            results.append(({k: v[start:end] for k, v in out.items()}, None))
            start = end
        return results

    def _predict(self, X: FloatArray, want_proba: bool) -> dict[str, npt.NDArray[Any]]:
        out = {"predict": self.predictor.predict(X)}
        if want_proba:
            out["predict_proba"] = self.predictor.predict_proba(X)
        return out

    def _deliver(self, batch: list[Pending], results: list[tuple[dict[str, Any] | None, str | None]]) -> None:
        for p, (res, err) in zip(batch, results, strict=True):
            if p.cancelled:
                continue
            try:
                p.done(res, err)
            except Exception:
                log.exception("failed to answer a request")


class App:
    """Per-worker state shared by all connections."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        predictor: Predictor,
        spec: ModelSpec,
        config: WorkerConfig,
        metrics: RequestMetrics,
        ring: SharedRing | None,
        metadata_doc: dict[str, Any],
        heartbeats: Heartbeats | None = None,
    ) -> None:
        self.loop = loop
        self.heartbeats = heartbeats
        self.routes: dict[tuple[bytes, bytes], Route] = {}
        self.observers: list[InferObserver] = []
        self.on_drain: list[Callable[[], None]] = []  # e.g. the gRPC server's graceful stop
        self.predictor = predictor
        self.spec = spec
        self.config = config
        self.metrics = metrics
        self.ring = ring
        self.served: feedback.ServedHooks | None = None  # feedback + request log (serving/feedback.py)
        self.connections: set[HttpConnection] = set()
        self.open_connections = 0
        self.grpc_waiting = 0  # gRPC calls waiting on the batcher (each counts as a waiting client)
        self.inflight = 0
        self.draining = False
        self.drained: asyncio.Future[None] = loop.create_future()
        self.drain_started = 0.0
        self.batcher = Batcher(self)
        name = spec.name.encode()
        self.v2_prefix = b"/v2/models/" + name
        self.v1_prefix = b"/v1/models/" + name
        self.metadata_doc = orjson.dumps(metadata_doc)
        self.v1_status = orjson.dumps({"name": spec.name, "ready": True})
        self.classes = predictor.classes
        self.class_labels = [
            c.item() if hasattr(c, "item") else c for c in (self.classes if self.classes is not None else [])
        ]
        self._sweeper: asyncio.Handle = loop.call_later(0.25, self._sweep)

    # -- extension points ----------------------------------------------------------------------
    def add_route(self, method: bytes, path: bytes, handler: Route) -> None:
        """Serve ``method path`` (exact path, query ignored) with ``handler``; checked before the built-ins."""
        self.routes[(method, path)] = handler

    def observe(self, req: InferRequest, results: dict[str, Any], protocol_name: str) -> None:
        for observer in self.observers:
            try:
                observer(req, results, protocol_name)
            except Exception:  # an observer must never cost a client its answer
                log.exception("inference observer failed")

    # -- health --------------------------------------------------------------------------------
    def predicting(self, running: bool) -> None:
        if self.heartbeats is not None:
            self.heartbeats.predicting(self.config.index, time.monotonic() if running else 0.0)

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

    # -- bookkeeping ---------------------------------------------------------------------------
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

    def _sweep(self) -> None:
        """Periodic: publish in-flight, time out slow clients and idle keep-alives, finish draining."""
        now = time.monotonic()
        if self.heartbeats is not None:
            self.heartbeats.beat(self.config.index)
        self.metrics.inflight.set(self.inflight)
        for conn in list(self.connections):
            conn.check_timeouts(now)
        if self.draining and (not self.connections or now - self.drain_started > self.config.drain_timeout_s):
            for conn in list(self.connections):
                conn.abort()
            if not self.drained.done():
                self.drained.set_result(None)
            return
        self._sweeper = self.loop.call_later(0.1 if self.draining else 0.25, self._sweep)

    def begin_drain(self) -> None:
        """SIGTERM: the listener is closed by the caller; answer in-flight, then close."""
        if self.draining:
            return
        self.draining = True
        self.drain_started = time.monotonic()
        for hook in self.on_drain:
            hook()
        self._sweeper.cancel()
        self._sweeper = self.loop.call_soon(self._sweep)


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests on it are answered in order (pipelining is allowed).

    Bounded everywhere: the request line and headers by raw bytes as they arrive, the body by
    Content-Length and bytes read, pipelined requests by the bytes queued, the wait for the model
    by ``predict_timeout_s``, the connections per worker by ``max_connections``. Replies to
    pipelined requests go out from a loop (:meth:`_pump`), never by recursion.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.header_bytes = 0
        self.content_length = -1
        self.ihcl: int | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        self.started = 0.0
        self.in_message = False
        # Raw bytes received while the current request's head is incomplete (httptools hands us
        # a header only once it has assembled it, which an endless line never lets happen).
        self.head_done = False
        self.head_bytes = 0
        self.completed_in_chunk = False
        self.busy = False
        self.pumping = False
        self.waiting_batch: Pending | None = None
        self.queue: deque[tuple[bytes, bytes, bytes, int | None, bool, float]] = deque()
        self.queued_bytes = 0
        self.deadline = 0.0
        self.paused = False
        self.keep_alive = True
        self.expect_continue = False
        self.head_only = False
        self.lingering = False
        self.linger_bytes = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same interface.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # e.g. a Unix socket in some test harness
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.app.open_connections >= self.app.config.max_connections:
            # Over the limit: say so (the client may retry elsewhere) and close; never parse.
            body = protocol.error_body(f"too many connections (limit {self.app.config.max_connections} per worker)")
            self.transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
            self.transport = None
            return
        self.app.connections.add(self)
        self.app.open_connections += 1
        self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.app.connections:
            self.app.connections.discard(self)
            self.app.open_connections -= 1
        # A request still waiting on the model is answered into the void (and counted) as before.
        self.transport = None

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self.linger_bytes += len(data)
            if self.linger_bytes > LINGER_BYTES and self.transport is not None:
                self.transport.close()
            return
        self.completed_in_chunk = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _TooLarge):
                self._fail(413, f"request body exceeds the limit of {self.app.config.max_body_bytes} bytes")
            elif isinstance(cause, _HeadersTooLarge):
                self._fail(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")
            else:
                self._fail(400, f"malformed HTTP request: {exc}")
            return
        # A chunk in which a request ended may hold the next one's start; counting only chunks
        # wholly inside a head errs by at most one read, never against a valid request.
        if not self.head_done and not self.completed_in_chunk:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEADER_BYTES:
                self._fail(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.in_message = True
        self.expect_continue = False
        self.url = b""
        self.header_bytes = 0
        self.content_length = -1
        self.ihcl = None
        self.body = []
        self.body_size = 0
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + self.app.config.request_timeout_s

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        # Headers that arrived in one read: counted here, once httptools has assembled them.
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            raise _HeadersTooLarge
        lname = name.lower()
        if lname == b"content-length":
            try:
                self.content_length = int(value)
            except ValueError:
                self.content_length = -1
            # Refuse before reading (let alone parsing) the body.
            if self.content_length > self.app.config.max_body_bytes:
                raise _TooLarge
        elif lname == b"expect" and value.lower() == b"100-continue":
            # curl and others wait for this before sending a body over 1 KiB.
            self.expect_continue = True
        elif lname == b"inference-header-content-length":
            try:
                self.ihcl = int(value)
            except ValueError:
                self.ihcl = -1

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.head_bytes = 0
        if self.expect_continue and self.transport is not None:
            self.expect_continue = False
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.app.config.max_body_bytes:
            raise _TooLarge
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.head_done = False
        self.completed_in_chunk = True
        if self.transport is None:
            return
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        method = self.parser.get_method()
        request = (method, self.url, body, self.ihcl, bool(self.parser.should_keep_alive()), self.started)
        self.queue.append(request)
        self.queued_bytes += len(body) + len(self.url)
        if self.busy or self.pumping:
            # Stop reading once the queue is long or heavy; resumed when it has drained.
            if not self.paused and (
                len(self.queue) >= MAX_PIPELINED or self.queued_bytes >= self.app.config.max_pipelined_bytes
            ):
                self.paused = True
                self.transport.pause_reading()
            return
        self._pump()

    # -- requests ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Handle queued requests in order, one at a time, iteratively: an answer given at once
        returns here and the loop takes the next; one that waits for the batcher resumes the
        loop from its callback."""
        if self.pumping:
            return
        self.pumping = True
        try:
            while self.queue and not self.busy and self.transport is not None and not self.transport.is_closing():
                request = self.queue.popleft()
                self.queued_bytes -= len(request[2]) + len(request[1])
                if self.paused and len(self.queue) < MAX_PIPELINED // 2 and (
                    self.queued_bytes < self.app.config.max_pipelined_bytes // 2
                ):
                    self.paused = False
                    self.transport.resume_reading()
                self._handle(*request)
        finally:
            self.pumping = False

    def _handle(self, method: bytes, url: bytes, body: bytes, ihcl: int | None, keep: bool, started: float) -> None:
        self.busy = True
        self.keep_alive = keep
        self.head_only = method == b"HEAD"
        path = url.split(b"?", 1)[0]
        app = self.app
        if app.routes:
            route = app.routes.get((method, path))
            if route is not None:
                self._route(route, path, body)
                return
        v2_rest = self._model_rest(path, app.v2_prefix)
        if method == b"POST":
            if v2_rest is not None:
                rest = self._strip_version(v2_rest)
                if rest == b"/infer":
                    self._infer(body, ihcl, started, v2=True)
                    return
                if rest == feedback.FEEDBACK_SUFFIX:
                    self._send(*feedback.answer(app.served, body))
                    return
            elif path.startswith(app.v1_prefix) and path[len(app.v1_prefix) :] == b":predict":
                self._infer(body, ihcl, started, v2=False)
                return
            if path.startswith((b"/v2/models/", b"/v1/models/")):
                self._model_not_found(path, started, count=True)
                return
            self._send(
                404 if not self._known_get(path) else 405,
                protocol.error_body(f"no such endpoint: POST {path.decode('latin-1')}"),
            )
            return
        if method not in (b"GET", b"HEAD"):
            self._send(405, protocol.error_body(f"method {method.decode('latin-1')} is not allowed here"))
            return
        if path == b"/v2/health/live" or path == b"/healthz":
            self._send(200, b'{"live":true}')
        elif path == b"/v2/health/ready":
            self._ready(b'{"ready":true}')
        elif path == b"/metrics":
            self._metrics()
        elif path == b"/v2":
            self._send(
                200, orjson.dumps({"name": "modelops", "version": _version(), "extensions": ["binary_tensor_data"]})
            )
        elif v2_rest is not None:
            rest = self._strip_version(v2_rest)
            if rest is None:
                self._model_not_found(path, started, count=False)
            elif rest == b"":
                self._send(200, app.metadata_doc)
            elif rest == b"/ready":
                self._ready(b'{"name":' + orjson.dumps(app.spec.name) + b',"ready":true}')
            else:
                self._send(404, protocol.error_body(f"no such endpoint: GET {path.decode('latin-1')}"))
        elif path == b"/v1/models":
            self._send(200, orjson.dumps({"models": [app.spec.name]}))
        elif path == app.v1_prefix:
            self._send(200 if app.not_ready_reason() is None else 503, app.v1_status)
        elif path.startswith((b"/v2/models/", b"/v1/models/")):
            self._model_not_found(path, started, count=False)
        else:
            self._send(404, protocol.error_body(f"no such endpoint: GET {path.decode('latin-1')}"))

    def _route(self, route: Route, path: bytes, body: bytes) -> None:
        try:
            code, answer = route(path, body)
        except RequestError as exc:
            code, answer = exc.status, protocol.error_body(exc.message)
        except Exception as exc:
            log.exception("handler for %s failed", path.decode("latin-1"))
            code, answer = 500, protocol.error_body(f"internal error: {type(exc).__name__}")
        self._send(code, answer)

    @staticmethod
    def _model_rest(path: bytes, prefix: bytes) -> bytes | None:
        """What follows '/v2/models/<our name>' in ``path``, or None if it names another model."""
        if not path.startswith(prefix):
            return None
        rest = path[len(prefix) :]
        return rest if rest == b"" or rest.startswith(b"/") else None

    @staticmethod
    def _known_get(path: bytes) -> bool:
        return path in (b"/v2/health/live", b"/v2/health/ready", b"/metrics", b"/v2", b"/v1/models")

    def _strip_version(self, rest: bytes) -> bytes | None:
        """'/versions/<v>/infer' -> '/infer' when <v> is our version; None for another version."""
        if rest.startswith(b"/versions/"):
            version, _, tail = rest[len(b"/versions/") :].partition(b"/")
            if version.decode("latin-1") != self.app.spec.version:
                return None
            return b"/" + tail if tail else b""
        return rest

    def _model_not_found(self, path: bytes, started: float, count: bool) -> None:
        msg = f"model not found: {path.decode('latin-1')} (this server serves {self.app.spec.name!r}"
        msg += f" version {self.app.spec.version!r})"
        if count:
            self.app.metrics.request(404).inc()
        self._send(404, protocol.error_body(msg))

    def _ready(self, body: bytes) -> None:
        reason = self.app.not_ready_reason()
        if reason is not None:
            self._send(503, protocol.error_body(reason))
        else:
            self._send(200, body)

    def _metrics(self) -> None:
        self.app.metrics.inflight.set(self.app.inflight)
        data, ctype = render()
        self._send(200, data, ctype.encode())

    def _infer(self, body: bytes, ihcl: int | None, started: float, v2: bool) -> None:
        app = self.app
        try:
            req = protocol.decode_v2(body, ihcl, app.spec) if v2 else protocol.decode_v1(body, app.spec)
        except RequestError as exc:
            self._answer_infer(exc.status, protocol.error_body(exc.message), started)
            return
        except Exception as exc:  # a decoder bug must still not become a crash or a 500
            log.exception("unexpected error decoding a request")
            self._answer_infer(400, protocol.error_body(f"could not decode request: {type(exc).__name__}"), started)
            return
        if v2 and req.request_id is None and app.served is not None:
            req.request_id = feedback.new_request_id()  # the client labels the answer by this id
        want_proba = any(name == "predict_proba" for name, _ in req.outputs)
        app.inflight += 1

        def done(results: dict[str, Any] | None, error: str | None) -> None:
            app.inflight -= 1
            if not app.inflight:
                app.metrics.inflight.set(0)  # idle now: say so at once, not at the next sweep
            self.waiting_batch = None
            if results is None:
                self._answer_infer(500, protocol.error_body(error or "prediction failed"), started)
            else:
                if app.served is not None and req.request_id is not None:
                    app.served.predicted(req.request_id, req.rows, results["predict"])
                self._respond_infer(req, results, v2, started)
            self._pump()  # the next pipelined request, if any

        pending = Pending(req.rows, want_proba, done)
        self.waiting_batch = pending
        self.deadline = time.monotonic() + app.config.predict_timeout_s
        app.batcher.submit(pending)

    def _respond_infer(self, req: InferRequest, results: dict[str, Any], v2: bool, started: float) -> None:
        try:
            if v2:
                body, header_len = protocol.encode_v2(self.app.spec, req, results)
            else:
                body, header_len = protocol.encode_v1(results["predict"]), None
        except Exception as exc:
            log.exception("failed to encode a response")
            self._answer_infer(500, protocol.error_body(f"failed to encode the response: {exc}"), started)
            return
        extra = b"Inference-Header-Content-Length: %d\r\n" % header_len if header_len is not None else b""
        self._answer_infer(200, body, started, extra=extra)
        if self.app.observers:
            self.app.observe(req, results, "rest")

    def _answer_infer(self, code: int, body: bytes, started: float, extra: bytes = b"") -> None:
        self._send(code, body, extra=extra)
        m = self.app.metrics
        m.request(code).inc()
        m.duration.observe(time.perf_counter() - started)

    # -- responses -----------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: bytes = JSON, extra: bytes = b"") -> None:
        """Write one response. The caller (or :meth:`_pump`) moves on to the next queued request."""
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        close = not self.keep_alive or (self.app.draining and not self.queue)
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n" % (
            code,
            REASONS.get(code, b"Unknown"),
            ctype,
            len(body),
            extra,
            b"Connection: close\r\n" if close else b"",
        )
        transport.write(head if self.head_only else head + body)
        self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s
        if close:
            self.queue.clear()
            transport.close()

    def _fail(self, code: int, message: str) -> None:
        """Answer a request we could not even parse, then close (the stream is unusable)."""
        self.keep_alive = False
        self.queue.clear()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.busy:
            # A response is pending for an earlier request; just drop the connection.
            transport.close()
            return
        if code in (413, 431):
            # The client may still be sending: answer, half-close, and keep reading (and
            # discarding) for a while, so it reads the answer instead of a connection reset.
            body = protocol.error_body(message)
            transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (code, REASONS[code], len(body), body)
            )
            self.lingering = True
            self.deadline = time.monotonic() + LINGER_S
            if self.paused:
                self.paused = False
                transport.resume_reading()
            if transport.can_write_eof():
                transport.write_eof()
            return
        self._send(code, protocol.error_body(message))

    def check_timeouts(self, now: float) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.lingering:
            if now >= self.deadline:
                transport.close()
            return
        if self.busy:
            pending = self.waiting_batch
            if pending is not None and now >= self.deadline:
                # The model has not answered within the predict timeout: end this request (the
                # batch may still finish; its answer is dropped) and the connection with it.
                pending.cancelled = True
                self.waiting_batch = None
                self.app.inflight -= 1
                self.keep_alive = False
                timeout = self.app.config.predict_timeout_s
                body = protocol.error_body(f"the model did not answer within {timeout:g} s")
                self._answer_infer(504, body, self.started)
            return
        if self.in_message:
            if now >= self.deadline:
                self._fail(408, f"request not received within {self.app.config.request_timeout_s:g} s")
            return
        # Idle. While draining, an idle connection gets a short grace to send its next request
        # (answered with Connection: close) rather than racing a close against it.
        if now >= self.deadline or (self.app.draining and now - self.app.drain_started > DRAIN_IDLE_GRACE_S):
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _version() -> str:
    from modelops import __version__

    return str(__version__)
