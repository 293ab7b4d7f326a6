"""The measurement behind keeping the hand-written HTTP layer (issue 10): the same model server,
with each worker's connections handled by uvicorn's httptools protocol behind a bare ASGI
callable that feeds the same Batcher, against ours, with wrk, same model, same workers.

Run: ``.venv/bin/python benchmarks/serving/uvicorn_variant.py`` (needs uvicorn, a dev
dependency, and wrk). Prints one line per server and concurrency; the figures go into RESULTS.md
by hand. Only the inference and readiness routes exist in the ASGI variant: enough for the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the benchmark's helpers: training, wrk, readiness)


def serve_uvicorn(model_dir: Path, port: int, workers: int) -> int:
    """`modelops serve`, with each worker's loop running uvicorn's HttpToolsProtocol."""
    from modelops.serving import protocol
    from modelops.serving.batching import Pending
    from modelops.serving.server import ServeConfig, Supervisor
    from modelops.serving.worker import new_data_plane, new_loop

    class UvicornSupervisor(Supervisor):
        def _worker(self, index: int, sock: socket.socket) -> int:
            import uvicorn
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
            from uvicorn.server import ServerState

            cfg = self.config
            loop = new_loop()
            asyncio.set_event_loop(loop)
            plane = new_data_plane(self.context, index, loop)
            spec = plane.spec
            infer_path = f"/v2/models/{spec.name}/infer"

            async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
                body = b""
                while True:
                    message = await receive()
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        break
                status, out = 200, b'{"ready":true}'
                if scope["method"] == "POST" and scope["path"] == infer_path:
                    try:
                        req = protocol.decode_v2(body, None, spec)
                    except protocol.RequestError as exc:
                        status, out = exc.status, protocol.error_body(exc.message)
                    else:
                        answer: asyncio.Future[Pending] = loop.create_future()
                        plane.clients += 1  # the ASGI variant counts calls, not connections
                        item = plane.submit(req, "rest", time.perf_counter(), answer.set_result)
                        await answer
                        plane.clients -= 1
                        if item.results is None:
                            status, out = 500, protocol.error_body(item.error or "failed")
                        else:
                            out, _ = protocol.encode_v2(spec, req, item.results)
                        plane.answered(item, status)
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                await send({"type": "http.response.body", "body": out})

            config = uvicorn.Config(asgi, http="httptools", lifespan="off", access_log=False, log_level="warning")
            config.load()
            state = ServerState()
            server = loop.run_until_complete(
                loop.create_server(lambda: HttpToolsProtocol(config, state, {}), sock=sock, backlog=cfg.backlog)
            )
            stop = loop.create_future()
            loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
            loop.run_until_complete(stop)
            server.close()
            return 0

    return UvicornSupervisor(ServeConfig(model_dir, port=port, workers=workers)).run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--serve-uvicorn", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_uvicorn:
        return serve_uvicorn(Path(args.serve_uvicorn[0]), int(args.serve_uvicorn[1]), args.workers)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelops" / "bench-serving"
    cache.mkdir(parents=True, exist_ok=True)
    model_dir = run.train_models(cache)["joblib"]
    body = cache / "body.json"
    body.write_text(json.dumps(run.BODY))
    levels = [int(c) for c in args.concurrency.split(",")]
    for name in ("modelops (hand-written httptools protocol)", "uvicorn HttpToolsProtocol + bare ASGI callable"):
        port = run.free_port()
        if name.startswith("modelops"):
            cmd = [sys.executable, "-m", "modelops.cli.main", "serve", str(model_dir), "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--workers", str(args.workers)]
        else:
            cmd = [sys.executable, __file__, "--workers", str(args.workers)]
            cmd += ["--serve-uvicorn", str(model_dir), str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            run.wait_ready(port, proc)
            run.check_answer(port)
            for c in levels:
                run.wrk(port, c, args.warmup, body)
                r = run.wrk(port, c, args.duration, body)
                print(f"{name}: c={c} {r.rps:,.0f} req/s p50 {r.p50_ms:.3f} ms p99 {r.p99_ms:.2f} ms errors {r.errors}")
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
