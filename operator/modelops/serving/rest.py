"""The REST API of a model-server worker (OIP v2 and KServe v1) as a route table over the data plane.

Built by modelops.serving.worker; :meth:`RestApi.dispatch` is the dispatcher of
modelops.serving.http. The table maps (method, exact path) to a handler, made once for the one
model this server serves (with and without ``/versions/<v>``), so routing a request is one dict
lookup; what no route matches gets the answer a client can act on (model not found, no such
endpoint, method not allowed). Inference decodes with modelops.serving.protocol, submits to the
data plane and encodes the outcome it is told of.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import orjson

from modelops.serving import feedback, protocol
from modelops.serving.batching import Pending
from modelops.serving.dataplane import DataPlane, server_version
from modelops.serving.http import HttpConnection, HttpRequest
from modelops.serving.metrics import render
from modelops.serving.protocol import RequestError

log = logging.getLogger(__name__)

GET, HEAD, POST = b"GET", b"HEAD", b"POST"
MODEL_PATHS = (b"/v2/models/", b"/v1/models/")

# Answers one request by calling conn.respond(...), now or (then conn.resume()) later.
Handler = Callable[[HttpConnection, HttpRequest], None]
# An extra endpoint (e.g. a feedback or logging module): (path without query, body) -> (status, JSON body).
Route = Callable[[bytes, bytes], tuple[int, bytes]]


class RestApi:
    """The routes of one worker's REST API and their handlers."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.spec = spec = plane.spec
        name = spec.name.encode()
        self.v2_prefix = b"/v2/models/" + name
        self.v1_prefix = b"/v1/models/" + name
        self.metadata_doc = orjson.dumps(plane.metadata)
        self.v1_status = orjson.dumps({"name": spec.name, "ready": True})
        self.model_ready_body = b'{"name":' + orjson.dumps(spec.name) + b',"ready":true}'
        self.routes: dict[tuple[bytes, bytes], Handler] = self._builtin_routes()

    def _builtin_routes(self) -> dict[tuple[bytes, bytes], Handler]:
        spec = self.spec
        server_doc = orjson.dumps(
            {"name": "modelops", "version": server_version(), "extensions": ["binary_tensor_data"]}
        )
        routes: dict[tuple[bytes, bytes], Handler] = {
            (GET, b"/v2/health/live"): _static(200, b'{"live":true}'),
            (GET, b"/healthz"): _static(200, b'{"live":true}'),
            (GET, b"/v2/health/ready"): self._server_ready,
            (GET, b"/metrics"): self._metrics,
            (GET, b"/v2"): _static(200, server_doc),
            (GET, b"/v1/models"): _static(200, orjson.dumps({"models": [spec.name]})),
            (GET, self.v1_prefix): self._v1_status,
            (POST, self.v1_prefix + b":predict"): self._infer_v1,
        }
        model_paths = [self.v2_prefix]
        # A version latin-1 cannot encode never matches a path (as before): no versioned routes.
        with contextlib.suppress(UnicodeEncodeError):
            versioned = self.v2_prefix + b"/versions/" + spec.version.encode("latin-1")
            model_paths.append(versioned)
            routes[(GET, versioned + b"/")] = _static(200, self.metadata_doc)
        for prefix in model_paths:
            routes[(GET, prefix)] = _static(200, self.metadata_doc)
            routes[(GET, prefix + b"/ready")] = self._model_ready
            routes[(POST, prefix + b"/infer")] = self._infer_v2
            routes[(POST, prefix + feedback.FEEDBACK_SUFFIX)] = self._feedback
        return routes

    # -- extension points ----------------------------------------------------------------------
    def add_route(self, method: bytes, path: bytes, handler: Route) -> None:
        """Serve ``method path`` (exact path, query ignored) with ``handler``, before any built-in."""

        def answer(conn: HttpConnection, request: HttpRequest) -> None:
            try:
                code, body = handler(path, request.body)
            except RequestError as exc:
                code, body = exc.status, protocol.error_body(exc.message)
            except Exception as exc:
                log.exception("handler for %s failed", path.decode("latin-1"))
                code, body = 500, protocol.error_body(f"internal error: {type(exc).__name__}")
            conn.respond(code, body)

        self.routes[(method, path)] = answer

    # -- dispatch ------------------------------------------------------------------------------
    def dispatch(self, conn: HttpConnection, request: HttpRequest) -> None:
        path = request.path
        handler = self.routes.get((request.method, path))
        if handler is None and request.method == HEAD:
            handler = self.routes.get((GET, path))
        (handler or self._unrouted)(conn, request)

    def _unrouted(self, conn: HttpConnection, request: HttpRequest) -> None:
        """What no route serves: a model we do not serve, an unknown endpoint, a wrong method."""
        method, path = request.method, request.path
        shown = path.decode("latin-1")
        if method == POST:
            if path.startswith(MODEL_PATHS):
                self._model_not_found(conn, path, count=True)
            else:
                code = 405 if (GET, path) in self.routes else 404  # served, but not for POST
                conn.respond(code, protocol.error_body(f"no such endpoint: POST {shown}"))
            return
        if method not in (GET, HEAD):
            conn.respond(405, protocol.error_body(f"method {method.decode('latin-1')} is not allowed here"))
            return
        rest = _model_rest(path, self.v2_prefix)
        if (rest is not None and self._other_version(rest)) or (rest is None and path.startswith(MODEL_PATHS)):
            self._model_not_found(conn, path, count=False)
        else:
            conn.respond(404, protocol.error_body(f"no such endpoint: GET {shown}"))

    def _other_version(self, rest: bytes) -> bool:
        """Whether '/versions/<v>...' after our model's name names a version we do not serve."""
        if not rest.startswith(b"/versions/"):
            return False
        version = rest[len(b"/versions/") :].partition(b"/")[0]
        return version.decode("latin-1") != self.spec.version

    def _model_not_found(self, conn: HttpConnection, path: bytes, count: bool) -> None:
        msg = f"model not found: {path.decode('latin-1')} (this server serves {self.spec.name!r}"
        msg += f" version {self.spec.version!r})"
        if count:
            self.plane.count(404, "rest", None)
        conn.respond(404, protocol.error_body(msg))

    # -- health, metadata, metrics, feedback ---------------------------------------------------
    def _ready(self, conn: HttpConnection, body: bytes) -> None:
        reason = self.plane.not_ready_reason()
        if reason is not None:
            conn.respond(503, protocol.error_body(reason))
        else:
            conn.respond(200, body)

    def _server_ready(self, conn: HttpConnection, request: HttpRequest) -> None:
        self._ready(conn, b'{"ready":true}')

    def _model_ready(self, conn: HttpConnection, request: HttpRequest) -> None:
        self._ready(conn, self.model_ready_body)

    def _v1_status(self, conn: HttpConnection, request: HttpRequest) -> None:
        conn.respond(200 if self.plane.not_ready_reason() is None else 503, self.v1_status)

    def _metrics(self, conn: HttpConnection, request: HttpRequest) -> None:
        self.plane.metrics.inflight.set(self.plane.inflight)
        data, ctype = render()
        conn.respond(200, data, ctype.encode())

    def _feedback(self, conn: HttpConnection, request: HttpRequest) -> None:
        conn.respond(*feedback.answer(self.plane.served, request.body))

    # -- inference -----------------------------------------------------------------------------
    def _infer_v2(self, conn: HttpConnection, request: HttpRequest) -> None:
        self._infer(conn, request, v2=True)

    def _infer_v1(self, conn: HttpConnection, request: HttpRequest) -> None:
        self._infer(conn, request, v2=False)

    def _infer(self, conn: HttpConnection, request: HttpRequest, v2: bool) -> None:
        spec = self.spec
        try:
            req = protocol.decode_v2(request.body, request.ihcl, spec) if v2 else protocol.decode_v1(request.body, spec)
        except RequestError as exc:
            self._refuse(conn, request, exc.status, exc.message)
            return
        except Exception as exc:  # a decoder bug must still not become a crash or a 500
            log.exception("unexpected error decoding a request")
            self._refuse(conn, request, 400, f"could not decode request: {type(exc).__name__}")
            return
        self.plane.submit(req, "rest", request.started, lambda item: self._answer(conn, item, v2), new_id=v2)

    def _refuse(self, conn: HttpConnection, request: HttpRequest, code: int, message: str) -> None:
        conn.respond(code, protocol.error_body(message))
        self.plane.count(code, "rest", request.started)

    def _answer(self, conn: HttpConnection, item: Pending, v2: bool) -> None:
        """The data plane's outcome for one request: write it, then the connection's next request."""
        extra = b""
        if item.timed_out:
            conn.keep_alive = False  # the connection goes with the request it could not answer
            code, body = 504, protocol.error_body(item.error or "timed out")
        elif item.results is None:
            code, body = 500, protocol.error_body(item.error or "prediction failed")
        else:
            try:
                if v2:
                    body, header_len = protocol.encode_v2(self.spec, item.request, item.results)
                else:
                    body, header_len = protocol.encode_v1(item.results["predict"]), None
                code = 200
                if header_len is not None:
                    extra = b"Inference-Header-Content-Length: %d\r\n" % header_len
            except Exception as exc:
                log.exception("failed to encode a response")
                code, body = 500, protocol.error_body(f"failed to encode the response: {exc}")
        conn.respond(code, body, extra=extra)
        self.plane.answered(item, code)
        conn.resume()


def _static(code: int, body: bytes) -> Handler:
    def answer(conn: HttpConnection, request: HttpRequest) -> None:
        conn.respond(code, body)

    return answer


def _model_rest(path: bytes, prefix: bytes) -> bytes | None:
    """What follows '/v2/models/<our name>' in ``path``, or None if it names another model."""
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    return rest if rest == b"" or rest.startswith(b"/") else None

