"""One worker process of the model server: an event loop serving HTTP on its listening socket.

Started (forked) by modelops.serving.server.Supervisor, which has already loaded the model.
Uses uvloop when it is installed. Serves REST (modelops.serving.http) and, with ``--grpc-port``,
OIP v2 gRPC (modelops.serving.grpc_server) from the same loop and batcher. On SIGTERM: close the
listeners, answer what is in flight, close idle connections, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import TYPE_CHECKING, Any

from modelops.serving.http import App, HttpConnection, WorkerConfig
from modelops.serving.metrics import RequestMetrics
from modelops.serving.protocol import ModelSpec

if TYPE_CHECKING:
    from modelops.serving.server import Supervisor


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def model_spec(sup: Supervisor) -> ModelSpec:
    meta = sup.loaded.metadata
    classes = sup.predictor.classes
    if meta.task == "regression":
        datatype = "FP64"
    elif classes is not None and classes.dtype.kind in "iu":
        datatype = "INT64"
    elif classes is not None and classes.dtype.kind == "f":
        datatype = "FP64"
    else:
        datatype = "BYTES"
    allow_nan = meta.allow_nan if sup.config.allow_nan is None else sup.config.allow_nan
    return ModelSpec(
        name=sup.name,
        version=sup.version,
        feature_names=meta.feature_names,
        max_rows=sup.config.max_rows,
        allow_nan=allow_nan,
        predict_datatype=datatype,
        has_proba=sup.predictor.has_proba,
        classes=list(meta.classes),
    )


def metadata_doc(spec: ModelSpec, sup: Supervisor) -> dict[str, Any]:
    """The OIP v2 model metadata answer."""
    n = spec.n_features
    outputs = [{"name": "predict", "datatype": spec.predict_datatype, "shape": [-1]}]
    if spec.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(spec.classes)]})
    return {
        "name": spec.name,
        "versions": [spec.version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}],
        "outputs": outputs,
        "parameters": {
            "revision": sup.revision,
            "sha256": sup.loaded.sha256,
            "features": spec.feature_names,
            "classes": spec.classes,
            "task": sup.loaded.metadata.task,
        },
    }


def run_worker(sup: Supervisor, index: int, sock: socket.socket) -> int:
    cfg = sup.config
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    spec = model_spec(sup)
    meta = sup.loaded.metadata
    labels_for_values = meta.classes if meta.task == "classification" else _prediction_edges(meta)
    metrics = RequestMetrics(sup.name, sup.version, sup.revision, meta.task, labels_for_values)
    config = WorkerConfig(
        index=index,
        max_batch_size=cfg.max_batch_size,
        max_latency_s=cfg.max_latency_ms / 1000.0,
        max_body_bytes=cfg.max_body_bytes,
        request_timeout_s=cfg.request_timeout_s,
        keepalive_timeout_s=cfg.keepalive_timeout_s,
        drain_timeout_s=cfg.drain_timeout_s,
        inline_predict=sup.inline,
        revision=sup.revision,
        predict_timeout_s=cfg.predict_timeout_s,
        max_connections=cfg.max_connections,
        max_pipelined_bytes=cfg.max_body_bytes,
    )
    metadata = metadata_doc(spec, sup)
    app = App(loop, sup.predictor, spec, config, metrics, sup.ring, metadata, sup.heartbeats)
    grpc_front = None
    if sup.grpc_port is not None:
        # Imported and created only here, after the fork: gRPC's core must not cross a fork.
        # Started before REST answers, so a worker that says it is ready serves both.
        from modelops.serving.grpc_server import GrpcFront

        grpc_front = GrpcFront(app, cfg.host, sup.grpc_port, metadata)
        loop.run_until_complete(grpc_front.start())
    app.served = sup.feedback.hooks_for(index)
    server = loop.run_until_complete(loop.create_server(lambda: HttpConnection(app), sock=sock, backlog=cfg.backlog))

    def on_term() -> None:
        server.close()  # stop accepting first
        app.begin_drain()

    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        loop.run_until_complete(app.drained)
        if grpc_front is not None:
            loop.run_until_complete(grpc_front.stopped)
    finally:
        loop.close()
        app.served.close()  # the request log's last batch
    return 0


def _prediction_edges(meta: Any) -> list[Any]:
    pb = meta.prediction_baseline or {}
    edges: list[Any] = list(pb.get("edges", []))
    return edges
