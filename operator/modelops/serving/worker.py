"""One worker process of the model server: an event loop serving REST and gRPC over one data plane.

Started (forked) by modelops.serving.server.Supervisor, which has already loaded the model and
hands over a :class:`~modelops.serving.context.WorkerContext`. Uses uvloop when it is installed.
Builds the data plane (modelops.serving.dataplane), REST on it (modelops.serving.rest over
modelops.serving.http) and, with ``--grpc-port``, gRPC (modelops.serving.grpc_server). On SIGTERM:
close the listeners, answer what is in flight, close idle connections, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket

from modelops.serving.context import WorkerContext
from modelops.serving.dataplane import DataPlane
from modelops.serving.http import HttpFront
from modelops.serving.metrics import RequestMetrics
from modelops.serving.rest import RestApi


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def new_data_plane(ctx: WorkerContext, index: int, loop: asyncio.AbstractEventLoop) -> DataPlane:
    """The worker's data plane; its metrics are created here, after the fork (one file per process)."""
    spec = ctx.spec
    metrics = RequestMetrics(spec.name, spec.version, ctx.revision, ctx.task, ctx.prediction_labels)
    config = ctx.worker_config(index)
    return DataPlane(loop, ctx.predictor, spec, config, metrics, ctx.ring, ctx.metadata, ctx.heartbeats)


def run_worker(ctx: WorkerContext, index: int, sock: socket.socket) -> int:
    loop = new_loop()
    asyncio.set_event_loop(loop)
    plane = new_data_plane(ctx, index, loop)
    grpc_front = None
    if ctx.grpc_port is not None:
        # Imported and created only here, after the fork: gRPC's core must not cross a fork.
        # Started before REST answers, so a worker that says it is ready serves both.
        from modelops.serving.grpc_server import GrpcFront

        grpc_front = GrpcFront(plane, ctx.host, ctx.grpc_port)
        loop.run_until_complete(grpc_front.start())
    plane.served = served = ctx.feedback.hooks_for(index)
    http = HttpFront(plane, RestApi(plane).dispatch)
    server = loop.run_until_complete(loop.create_server(http.connection, sock=sock, backlog=ctx.backlog))

    def on_term() -> None:
        server.close()  # stop accepting first
        plane.begin_drain()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        loop.run_until_complete(http.drained)
        if grpc_front is not None:
            loop.run_until_complete(grpc_front.stopped)
    finally:
        plane.close()
        loop.close()
        served.close()  # the request log's last batch
    return 0
