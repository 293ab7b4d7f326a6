"""HTTP/1.1 for a model-server worker: an httptools-based asyncio protocol that knows no routes.

Run inside each worker process (modelops.serving.worker). A request is parsed by httptools into
an :class:`HttpRequest` and handed to the dispatcher (modelops.serving.rest: the route table over
the data plane); the handler answers through :meth:`HttpConnection.respond`, at once or from the
data plane's callback, so the common path creates no coroutine or task per request. This module
owns framing, limits, pipelining and flow control, timeouts and the drain of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from modelops.serving.dataplane import DataPlane
from modelops.serving.protocol import error_body

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


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One complete request, as queued on its connection until its turn comes."""

    method: bytes
    url: bytes
    body: bytes
    ihcl: int | None  # Inference-Header-Content-Length (OIP v2 binary tensors); -1 if unparseable
    keep_alive: bool
    started: float  # perf_counter() at the request's first byte

    @property
    def path(self) -> bytes:
        return self.url.split(b"?", 1)[0]


# Answers one request by calling conn.respond(...), now or later.
Dispatch = Callable[["HttpConnection", HttpRequest], None]


def response(code: int, body: bytes, ctype: bytes = JSON, extra: bytes = b"", close: bool = False) -> bytes:
    """The head of every response we write (``extra``: more header lines, each ending in CRLF)."""
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n" % (
        code,
        REASONS.get(code, b"Unknown"),
        ctype,
        len(body),
        extra,
        b"Connection: close\r\n" if close else b"",
    )


class _TooLarge(Exception):
    pass


class _HeadersTooLarge(Exception):
    pass


class HttpFront:
    """The HTTP side of one worker: its connections, their timeouts, and their drain."""

    def __init__(self, plane: DataPlane, dispatch: Dispatch) -> None:
        self.plane = plane
        self.config = plane.config
        self.dispatch = dispatch
        self.connections: set[HttpConnection] = set()
        self.drained: asyncio.Future[None] = plane.loop.create_future()
        plane.tickers.append(self._sweep)

    def connection(self) -> HttpConnection:
        """The asyncio protocol factory for the worker's listening socket."""
        return HttpConnection(self)

    def _sweep(self, now: float) -> None:
        """Time out slow clients and idle keep-alives; while draining, finish when all are gone."""
        if self.drained.done():
            return
        for conn in list(self.connections):
            conn.check_timeouts(now)
        plane = self.plane
        if plane.draining and (not self.connections or now - plane.drain_started > self.config.drain_timeout_s):
            for conn in list(self.connections):
                conn.abort()
            self.drained.set_result(None)


class HttpConnection(asyncio.Protocol):
    """One client connection. Requests on it are answered in order (pipelining is allowed).

    Bounded everywhere: the request line and headers by raw bytes as they arrive, the body by
    Content-Length and bytes read, pipelined requests by the bytes queued, the wait for the model
    by the data plane's predict timeout, the connections per worker by ``max_connections``.
    Replies to pipelined requests go out from a loop (:meth:`_pump`), never by recursion.
    """

    def __init__(self, front: HttpFront) -> None:
        self.front = front
        self.plane = front.plane
        self.config = front.config
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
        self.queue: deque[HttpRequest] = deque()
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
        limit = self.config.max_connections
        if len(self.front.connections) >= limit:
            # Over the limit: say so (the client may retry elsewhere) and close; never parse.
            body = error_body(f"too many connections (limit {limit} per worker)")
            self.transport.write(response(503, body, close=True) + body)
            self.transport.close()
            self.transport = None
            return
        self.front.connections.add(self)
        self.plane.clients += 1  # an open connection may add to a batch
        self.deadline = time.monotonic() + self.config.keepalive_timeout_s

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.front.connections:
            self.front.connections.discard(self)
            self.plane.clients -= 1
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
                self._fail(413, f"request body exceeds the limit of {self.config.max_body_bytes} bytes")
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
        self.deadline = time.monotonic() + self.config.request_timeout_s

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
            if self.content_length > self.config.max_body_bytes:
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
        if self.body_size > self.config.max_body_bytes:
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
        request = HttpRequest(
            self.parser.get_method(), self.url, body, self.ihcl, bool(self.parser.should_keep_alive()), self.started
        )
        self.queue.append(request)
        self.queued_bytes += len(body) + len(self.url)
        if self.busy or self.pumping:
            # Stop reading once the queue is long or heavy; resumed when it has drained.
            if not self.paused and (
                len(self.queue) >= MAX_PIPELINED or self.queued_bytes >= self.config.max_pipelined_bytes
            ):
                self.paused = True
                self.transport.pause_reading()
            return
        self._pump()

    # -- requests ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Handle queued requests in order, one at a time, iteratively: an answer given at once
        returns here and the loop takes the next; one that waits for the model resumes the loop
        from its callback (:meth:`resume`)."""
        if self.pumping:
            return
        self.pumping = True
        dispatch = self.front.dispatch
        try:
            while self.queue and not self.busy and self.transport is not None and not self.transport.is_closing():
                request = self.queue.popleft()
                self.queued_bytes -= len(request.body) + len(request.url)
                if self.paused and len(self.queue) < MAX_PIPELINED // 2 and (
                    self.queued_bytes < self.config.max_pipelined_bytes // 2
                ):
                    self.paused = False
                    self.transport.resume_reading()
                self.busy = True
                self.keep_alive = request.keep_alive
                self.head_only = request.method == b"HEAD"
                dispatch(self, request)
        finally:
            self.pumping = False

    # -- responses -----------------------------------------------------------------------------
    def respond(self, code: int, body: bytes, ctype: bytes = JSON, extra: bytes = b"") -> None:
        """Answer the current request. A handler that answers later (from the data plane's
        callback) then calls :meth:`resume`; one that answers at once returns to :meth:`_pump`."""
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        close = not self.keep_alive or (self.plane.draining and not self.queue)
        head = response(code, body, ctype, extra, close)
        transport.write(head if self.head_only else head + body)
        self.deadline = time.monotonic() + self.config.keepalive_timeout_s
        if close:
            self.queue.clear()
            transport.close()

    def resume(self) -> None:
        """Go on with the next queued request, after an answer given from a callback."""
        self._pump()

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
            body = error_body(message)
            transport.write(response(code, body, close=True) + body)
            self.lingering = True
            self.deadline = time.monotonic() + LINGER_S
            if self.paused:
                self.paused = False
                transport.resume_reading()
            if transport.can_write_eof():
                transport.write_eof()
            return
        self.respond(code, error_body(message))

    def check_timeouts(self, now: float) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.lingering:
            if now >= self.deadline:
                transport.close()
            return
        if self.busy:
            return  # waiting on the model: the data plane's predict timeout answers it
        if self.in_message:
            if now >= self.deadline:
                self._fail(408, f"request not received within {self.config.request_timeout_s:g} s")
            return
        # Idle. While draining, an idle connection gets a short grace to send its next request
        # (answered with Connection: close) rather than racing a close against it.
        plane = self.plane
        if now >= self.deadline or (plane.draining and now - plane.drain_started > DRAIN_IDLE_GRACE_S):
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
