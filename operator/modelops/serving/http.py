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
from modelops.serving.loader import Predictor
from modelops.serving.metrics import RequestMetrics, render
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
}
JSON = b"application/json"
MAX_HEADER_BYTES = 64 * 1024
MAX_PIPELINED = 64
DRAIN_IDLE_GRACE_S = 0.5


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
        if self.max_latency <= 0 or len(self.pending) >= self.app.open_connections:
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
        if self.executor is None:
            self._deliver(batch, self._run(batch))
            if self.pending and not self.scheduled:
                self.scheduled = True
                self.loop.call_soon(self._end_of_iteration)
        else:
            self.running = True
            fut = self.loop.run_in_executor(self.executor, self._run, batch)
            fut.add_done_callback(lambda f: self._after_executor(batch, f))

    def _after_executor(self, batch: list[Pending], fut: asyncio.Future[Any]) -> None:
        self.running = False
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
    ) -> None:
        self.loop = loop
        self.predictor = predictor
        self.spec = spec
        self.config = config
        self.metrics = metrics
        self.ring = ring
        self.served: feedback.ServedHooks | None = None  # feedback + request log (serving/feedback.py)
        self.connections: set[HttpConnection] = set()
        self.open_connections = 0
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
        self._sweeper.cancel()
        self._sweeper = self.loop.call_soon(self._sweep)


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests on it are answered in order (pipelining is allowed)."""

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
        self.busy = False
        self.waiting_batch = False
        self.queue: deque[tuple[bytes, bytes, bytes, int | None, bool, float]] = deque()
        self.deadline = 0.0
        self.error: tuple[int, str] | None = None
        self.paused = False
        self.keep_alive = True
        self.expect_continue = False
        self.head_only = False

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same interface.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # e.g. a Unix socket in some test harness
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app.connections.add(self)
        self.app.open_connections += 1
        self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.app.connections:
            self.app.connections.discard(self)
            self.app.open_connections -= 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _TooLarge):
                self._fail(413, f"request body exceeds the limit of {self.app.config.max_body_bytes} bytes")
            elif isinstance(cause, _HeadersTooLarge):
                self._fail(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")
            else:
                self._fail(400, f"malformed HTTP request: {exc}")

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
        assert self.transport is not None
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        method = self.parser.get_method()
        request = (method, self.url, body, self.ihcl, bool(self.parser.should_keep_alive()), self.started)
        if self.busy:
            self.queue.append(request)
            if len(self.queue) >= MAX_PIPELINED and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._handle(*request)

    # -- requests ------------------------------------------------------------------------------
    def _handle(self, method: bytes, url: bytes, body: bytes, ihcl: int | None, keep: bool, started: float) -> None:
        self.busy = True
        self.keep_alive = keep
        self.head_only = method == b"HEAD"
        path = url.split(b"?", 1)[0]
        app = self.app
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
            self._send(200 if not app.draining else 503, app.v1_status)
        elif path.startswith((b"/v2/models/", b"/v1/models/")):
            self._model_not_found(path, started, count=False)
        else:
            self._send(404, protocol.error_body(f"no such endpoint: GET {path.decode('latin-1')}"))

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
        if self.app.draining:
            self._send(503, protocol.error_body("shutting down"))
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
        self.waiting_batch = True

        def done(results: dict[str, Any] | None, error: str | None) -> None:
            app.inflight -= 1
            self.waiting_batch = False
            if results is None:
                self._answer_infer(500, protocol.error_body(error or "prediction failed"), started)
                return
            if app.served is not None and req.request_id is not None:
                app.served.predicted(req.request_id, req.rows, results["predict"])
            self._respond_infer(req, results, v2, started)

        app.batcher.submit(Pending(req.rows, want_proba, done))

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

    def _answer_infer(self, code: int, body: bytes, started: float, extra: bytes = b"") -> None:
        self._send(code, body, extra=extra)
        m = self.app.metrics
        m.request(code).inc()
        m.duration.observe(time.perf_counter() - started)

    # -- responses -----------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: bytes = JSON, extra: bytes = b"") -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            self.busy = False
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
        self.busy = False
        self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s
        if close:
            transport.close()
            return
        if self.queue:
            next_request = self.queue.popleft()
            if self.paused and len(self.queue) < MAX_PIPELINED // 2:
                self.paused = False
                transport.resume_reading()
            self._handle(*next_request)

    def _fail(self, code: int, message: str) -> None:
        """Answer a request we could not even parse, then close (the stream is unusable)."""
        self.keep_alive = False
        self.queue.clear()
        if self.busy:
            # A response is pending for an earlier request; just drop the connection.
            if self.transport is not None:
                self.transport.close()
            return
        self._send(code, protocol.error_body(message))

    def check_timeouts(self, now: float) -> None:
        transport = self.transport
        if transport is None or self.busy:
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
