"""The measurement behind the gRPC stack of the model server (issue 18): the same worker data plane
(modelops.serving.dataplane) and the same OIP v2 service (modelops.serving.grpc_service) behind
three gRPC servers, driven with ghz, same model, same workers:

- ``aio``: grpcio's asyncio server on the worker's loop (what ``modelops serve`` runs);
- ``sync``: grpcio's sync server, handlers in a thread pool, handing each call to the loop;
- ``grpclib``: grpclib (pure-Python HTTP/2 on asyncio, h2) on the worker's loop.

Run: ``python benchmarks/serving/grpc_stacks.py`` (needs ghz: ``make ghz``). grpclib is not a
dependency of the project: run with an interpreter that has it (a throwaway venv that sees the
project's packages), or it is skipped. Prints one line per stack and concurrency; the figures go
into RESULTS.md by hand. REST is served too (readiness and the answer check use it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the benchmark's helpers: training, ghz, readiness)

STACKS = ("aio", "sync", "grpclib")


def serve_variant(stack: str, model_dir: Path, port: int, grpc_port: int, workers: int) -> int:
    """`modelops serve`, each worker's gRPC side on ``stack``."""
    from modelops.serving.http import HttpFront
    from modelops.serving.rest import RestApi
    from modelops.serving.server import ServeConfig, Supervisor
    from modelops.serving.worker import new_data_plane, new_loop

    class VariantSupervisor(Supervisor):
        def _worker(self, index: int, sock: socket.socket) -> int:
            ctx = self.context
            loop = new_loop()
            asyncio.set_event_loop(loop)
            plane = new_data_plane(ctx, index, loop)
            assert ctx.grpc_port is not None
            stop_grpc = (_start_sync if stack == "sync" else _start_grpclib)(plane, ctx.host, ctx.grpc_port)
            plane.served = ctx.feedback.hooks_for(index)
            http = HttpFront(plane, RestApi(plane).dispatch)
            server = loop.run_until_complete(loop.create_server(http.connection, sock=sock, backlog=ctx.backlog))
            stop = loop.create_future()
            loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
            loop.run_until_complete(stop)
            server.close()
            stop_grpc()
            return 0

    cfg = ServeConfig(model_dir, port=port, workers=workers, grpc_port=grpc_port)
    return VariantSupervisor(cfg).run()


def _start_sync(plane: Any, host: str, port: int) -> Any:
    """grpcio's sync server: a pool thread per call hands it to the loop and waits."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from modelops.serving.grpc_service import CallFailed, InferenceService
    from modelops.serving.grpc_v2 import grpc_predict_v2_pb2_grpc as pb_grpc

    service = InferenceService(plane)
    loop = plane.loop

    class Servicer(pb_grpc.GRPCInferenceServiceServicer):
        def ServerLive(self, request: Any, context: Any) -> Any:
            return service.live

        def ModelInfer(self, request: Any, context: Any) -> Any:
            started = time.perf_counter()
            done = threading.Event()
            box: dict[str, Any] = {}

            def start() -> None:
                try:
                    box["call"] = service.start_infer(request, started, lambda _: done.set())
                except CallFailed as exc:
                    box["failed"] = exc
                    done.set()

            loop.call_soon_threadsafe(start)
            done.wait()
            if "failed" in box:
                context.abort(getattr(grpc.StatusCode, box["failed"].code), box["failed"].message)
            item, raw = box["call"]
            try:
                return service.finish_infer(item, raw, request.id)
            except CallFailed as exc:
                context.abort(getattr(grpc.StatusCode, exc.code), exc.message)

    server = grpc.server(
        ThreadPoolExecutor(max_workers=64),
        options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", plane.config.max_body_bytes)],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    return lambda: server.stop(1).wait()


def _start_grpclib(plane: Any, host: str, port: int) -> Any:
    """grpclib on the worker's loop."""
    from grpclib.const import Cardinality, Handler, Status
    from grpclib.exceptions import GRPCError
    from grpclib.server import Server
    from modelops.serving.grpc_service import SERVICE, CallFailed, InferenceService
    from modelops.serving.grpc_v2 import grpc_predict_v2_pb2 as pb

    service = InferenceService(plane)
    loop = plane.loop

    class Servicer:
        async def model_infer(self, stream: Any) -> None:
            request = await stream.recv_message()
            started = time.perf_counter()
            answered: asyncio.Future[None] = loop.create_future()
            try:
                item, raw = service.start_infer(
                    request, started, lambda _: answered.done() or answered.set_result(None)
                )
            except CallFailed as exc:
                raise GRPCError(getattr(Status, exc.code), exc.message) from None
            try:
                await answered
            except asyncio.CancelledError:
                service.abandon(item)
                raise
            try:
                response = service.finish_infer(item, raw, request.id)
            except CallFailed as exc:
                raise GRPCError(getattr(Status, exc.code), exc.message) from None
            await stream.send_message(response)

        async def server_live(self, stream: Any) -> None:
            await stream.recv_message()
            await stream.send_message(service.live)

        def __mapping__(self) -> dict[str, Any]:
            return {
                f"/{SERVICE}/ModelInfer": Handler(
                    self.model_infer, Cardinality.UNARY_UNARY, pb.ModelInferRequest, pb.ModelInferResponse
                ),
                f"/{SERVICE}/ServerLive": Handler(
                    self.server_live, Cardinality.UNARY_UNARY, pb.ServerLiveRequest, pb.ServerLiveResponse
                ),
            }

    server = Server([Servicer()])
    loop.run_until_complete(server.start(host, port, reuse_port=True))
    return lambda: server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stacks", default=",".join(STACKS))
    ap.add_argument("--serve", nargs=4, metavar=("STACK", "MODEL_DIR", "PORT", "GRPC_PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        stack, model_dir, port, grpc_port = args.serve
        return serve_variant(stack, Path(model_dir), int(port), int(grpc_port), args.workers)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelops" / "bench-serving"
    cache.mkdir(parents=True, exist_ok=True)
    model_dir = run.train_models(cache)["joblib"]
    levels = [int(c) for c in args.concurrency.split(",")]
    for stack in args.stacks.split(","):
        if stack == "grpclib" and importlib.util.find_spec("grpclib") is None:
            print("grpclib: not installed for this interpreter; skipped")
            continue
        port, grpc_port = run.free_port(), run.free_port()
        if stack == "aio":
            cmd = [sys.executable, "-m", "modelops.cli.main", "serve", str(model_dir), "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--workers", str(args.workers), "--grpc-port", str(grpc_port)]
        else:
            cmd = [sys.executable, __file__, "--workers", str(args.workers)]
            cmd += ["--serve", stack, str(model_dir), str(port), str(grpc_port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            run.wait_ready(port, proc)
            run.check_answer(port)
            time.sleep(0.5)  # every worker's gRPC server is up once REST answers; let the last settle
            for c in levels:
                run.ghz(grpc_port, c, args.warmup)
                r = run.ghz(grpc_port, c, args.duration)
                print(f"{stack}: c={c} {r.rps:,.0f} req/s p50 {r.p50_ms:.3f} ms p99 {r.p99_ms:.2f} ms "
                      f"errors {r.errors}", flush=True)  # fmt: skip
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
