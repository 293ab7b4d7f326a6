"""The gRPC server of a model-server worker: OIP v2 ``inference.GRPCInferenceService`` and the
standard ``grpc.health.v1.Health`` service, on grpcio's asyncio server.

Started by modelops.serving.worker inside each forked worker, on the worker's own event loop and
after the fork (gRPC's core must never be initialised in the supervisor), bound with
SO_REUSEPORT so the kernel spreads connections over the workers as it does for REST. A thin
adapter: calls go to modelops.serving.grpc_service over the same data plane as REST, with the
same limits (rows, body size, predict timeout), metrics (``protocol="grpc"``, ``code`` = the HTTP
status the gRPC status maps to), drift hand-off and request ids. Errors are gRPC status codes
with a message (INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE), never
UNKNOWN for bad input. On SIGTERM the health service turns NOT_SERVING and the server stops taking
new calls and finishes those in flight within the drain timeout.

grpcio's asyncio server was measured against its sync server (thread pool) and grpclib behind the
same data plane (benchmarks/serving/grpc_stacks.py, figures in benchmarks/serving/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelops.serving.dataplane import DataPlane
from modelops.serving.grpc_service import SERVICE, CallFailed, InferenceService
from modelops.serving.grpc_v2 import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 0.25


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """grpcio's face of :class:`~modelops.serving.grpc_service.InferenceService`."""

    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.loop = service.plane.loop

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return self.service.live

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return self.service.server_ready(request)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        try:
            return self.service.model_ready(request)
        except CallFailed as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return self.service.server_metadata

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        try:
            return self.service.model_metadata(request)
        except CallFailed as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        service = self.service
        answered: asyncio.Future[None] = self.loop.create_future()
        try:
            item, raw = service.start_infer(request, time.perf_counter(), lambda _: _wake(answered))
        except CallFailed as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
        try:
            await answered
        except asyncio.CancelledError:  # the client went away
            service.abandon(item)
            raise
        try:
            return service.finish_infer(item, raw, request.id)
        except CallFailed as exc:
            await context.abort(getattr(grpc.StatusCode, exc.code), exc.message)


class GrpcFront:
    """The gRPC server of one worker and its health reporting."""

    def __init__(self, plane: DataPlane, host: str, port: int) -> None:
        self.plane = plane
        cfg = plane.config
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
            _Servicer(InferenceService(plane)), self.server
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if self.server.add_insecure_port(address) == 0:
            raise OSError(f"gRPC cannot listen on {address}")
        self.serving: bool | None = None
        self.stopped: asyncio.Future[None] = plane.loop.create_future()
        self._watch: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        await self._set(True)
        self._watch = asyncio.ensure_future(self._watch_health())
        self.plane.on_drain.append(self.drain)

    async def _set(self, serving: bool) -> None:
        if serving == self.serving:
            return
        self.serving = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE):
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        # Follow the same readiness as REST (a stuck worker anywhere makes the pod unready).
        while not self.plane.draining:
            await self._set(self.plane.not_ready_reason() is None)
            await asyncio.sleep(HEALTH_INTERVAL_S)

    def drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            if self._watch is not None:
                self._watch.cancel()
            await self.health.enter_graceful_shutdown()
            # New calls are refused from now on; those in flight get the drain timeout.
            await self.server.stop(grace=self.plane.config.drain_timeout_s)
        except Exception:
            log.exception("gRPC drain failed")
        finally:
            if not self.stopped.done():
                self.stopped.set_result(None)


def _wake(answered: asyncio.Future[None]) -> None:
    if not answered.done():  # cancelled with its call
        answered.set_result(None)
