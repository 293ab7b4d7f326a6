"""The gRPC side of a model-server worker: OIP v2 ``inference.GRPCInferenceService`` and the
standard ``grpc.health.v1.Health`` service, on grpcio's asyncio server.

Started by modelops.serving.worker inside each forked worker, on the worker's own event loop and
after the fork (gRPC's core must never be initialised in the supervisor), bound with
SO_REUSEPORT so the kernel spreads connections over the workers as it does for REST. Requests
go into the same :class:`~modelops.serving.http.Batcher` as REST ones, with the same limits
(rows, body size, predict timeout), metrics (``protocol="grpc"``, ``code`` = the HTTP status
the gRPC status maps to), drift hand-off and request ids. Errors are gRPC status codes with a
message (INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE), never UNKNOWN
for bad input. On SIGTERM the health service turns NOT_SERVING and the server stops taking new
calls and finishes those in flight within the drain timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelops.serving.grpc_codec import decode_infer, encode_outputs
from modelops.serving.grpc_v2 import grpc_predict_v2_pb2 as pb
from modelops.serving.grpc_v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from modelops.serving.http import App, Pending, _version
from modelops.serving.protocol import RequestError

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
# The HTTP status each gRPC status is counted as in modelops_requests_total{code}.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
HEALTH_INTERVAL_S = 0.25


class _Failed(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, app: App, metadata: dict[str, Any]) -> None:
        self.app = app
        self.spec = app.spec
        self.timeout = app.config.predict_timeout_s
        self.metadata = pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["outputs"]],
        )

    def _model_error(self, name: str, version: str) -> str | None:
        if name == self.spec.name and version in ("", self.spec.version):
            return None
        return (
            f"model not found: {name!r} version {version or '(any)'!r} "
            f"(this server serves {self.spec.name!r} version {self.spec.version!r})"
        )

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.app.not_ready_reason() is None)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        error = self._model_error(request.name, request.version)
        if error is not None:
            await context.abort(grpc.StatusCode.NOT_FOUND, error)
        return pb.ModelReadyResponse(ready=self.app.not_ready_reason() is None)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(name="modelops", version=_version(), extensions=[])

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        error = self._model_error(request.name, request.version)
        if error is not None:
            await context.abort(grpc.StatusCode.NOT_FOUND, error)
        return self.metadata

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        started = time.perf_counter()
        try:
            response = await self._infer(request)
        except _Failed as exc:
            self._count(exc.code, started)
            await context.abort(exc.code, exc.message)
        self._count(grpc.StatusCode.OK, started)
        return response

    def _count(self, code: grpc.StatusCode, started: float) -> None:
        m = self.app.metrics
        m.request(HTTP_STATUS.get(code, 500), "grpc").inc()
        m.grpc_duration.observe(time.perf_counter() - started)

    async def _infer(self, request: Any) -> Any:
        app = self.app
        error = self._model_error(request.model_name, request.model_version)
        if error is not None:
            raise _Failed(grpc.StatusCode.NOT_FOUND, error)
        try:
            req, raw = decode_infer(request, app.spec)
        except RequestError as exc:
            raise _Failed(grpc.StatusCode.INVALID_ARGUMENT, exc.message) from None
        except Exception as exc:  # a decoder bug must still not become UNKNOWN or a crash
            log.exception("unexpected error decoding a gRPC request")
            raise _Failed(grpc.StatusCode.INVALID_ARGUMENT, f"could not decode request: {type(exc).__name__}") from None
        loop = app.loop
        answer: asyncio.Future[tuple[dict[str, Any] | None, str | None]] = loop.create_future()

        def done(results: dict[str, Any] | None, err: str | None) -> None:
            if not answer.done():
                answer.set_result((results, err))

        pending = Pending(req.rows, any(name == "predict_proba" for name, _ in req.outputs), done)
        timer = loop.call_later(self.timeout, _expire, answer)
        app.inflight += 1
        app.grpc_waiting += 1
        try:
            app.batcher.submit(pending)
            results, err = await answer
        except TimeoutError:
            pending.cancelled = True
            raise _Failed(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the model did not answer within {self.timeout:g} s"
            ) from None
        except asyncio.CancelledError:  # the client went away
            pending.cancelled = True
            raise
        finally:
            timer.cancel()
            app.inflight -= 1
            app.grpc_waiting -= 1
            if not app.inflight:
                app.metrics.inflight.set(0)
        if results is None:
            raise _Failed(grpc.StatusCode.INTERNAL, err or "prediction failed")
        response = pb.ModelInferResponse(model_name=self.spec.name, model_version=self.spec.version, id=request.id)
        try:
            encode_outputs(req, results, raw, response, pb.ModelInferResponse.InferOutputTensor)
        except Exception as exc:
            log.exception("failed to encode a gRPC response")
            raise _Failed(grpc.StatusCode.INTERNAL, f"failed to encode the response: {exc}") from None
        if app.observers:
            app.observe(req, results, "grpc")
        return response


def _expire(answer: asyncio.Future[Any]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


class GrpcFront:
    """The gRPC server of one worker and its health reporting."""

    def __init__(self, app: App, host: str, port: int, metadata: dict[str, Any]) -> None:
        self.app = app
        cfg = app.config
        self.server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", cfg.max_body_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.max_connection_idle_ms", int(cfg.keepalive_timeout_s * 1000)),
            ],
            maximum_concurrent_rpcs=cfg.max_connections,
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            InferenceService(app, metadata), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if self.server.add_insecure_port(address) == 0:
            raise OSError(f"gRPC cannot listen on {address}")
        self.serving: bool | None = None
        self.stopped: asyncio.Future[None] = app.loop.create_future()
        self._watch: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        await self._set(True)
        self._watch = asyncio.ensure_future(self._watch_health())
        self.app.on_drain.append(self.drain)

    async def _set(self, serving: bool) -> None:
        if serving == self.serving:
            return
        self.serving = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE):
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        # Follow the same readiness as REST (a stuck worker anywhere makes the pod unready).
        while not self.app.draining:
            await self._set(self.app.not_ready_reason() is None)
            await asyncio.sleep(HEALTH_INTERVAL_S)

    def drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            if self._watch is not None:
                self._watch.cancel()
            await self.health.enter_graceful_shutdown()
            # New calls are refused from now on; those in flight get the drain timeout.
            await self.server.stop(grace=self.app.config.drain_timeout_s)
        except Exception:
            log.exception("gRPC drain failed")
        finally:
            if not self.stopped.done():
                self.stopped.set_result(None)
