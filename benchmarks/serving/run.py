"""Serving benchmark: our model server vs MLServer vs KServe, same model, same machine, one run.

Run with the project's interpreter (`make bench-serving`, or
``.venv/bin/python benchmarks/serving/run.py``). It trains the iris model, installs each peer
into its own venv under a cache directory (reused on later runs), starts each server on
127.0.0.1, drives it with wrk (a separate process, keep-alive, single-row OIP v2 requests) at
several concurrencies, and prints req/s, p50, p99, errors, resident memory and start-up time,
plus raw in-process predict and model load times. Servers that speak OIP v2 over gRPC (ours
and MLServer) are also driven with ghz (`make ghz` builds it from its Go module into
~/.cache/modelops/bin), single-row ModelInfer with typed fp64 contents. The tables are also
written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BODY = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
INFER_PATH = "/v2/models/iris/infer"
GRPC_PROTO = ROOT / "operator" / "modelops" / "serving" / "grpc_v2" / "grpc_predict_v2.proto"
GRPC_CALL = "inference.GRPCInferenceService.ModelInfer"
GRPC_BODY = {
    "model_name": "iris",
    "inputs": [
        {"name": "input-0", "datatype": "FP64", "shape": [1, 4], "contents": {"fp64_contents": [5.1, 3.5, 1.4, 0.2]}}
    ],
}
GHZ_VERSION = "v0.120.0"
GHZ = Path.home() / ".cache" / "modelops" / "bin" / f"ghz-{GHZ_VERSION}"
READY_PATH = "/v2/models/iris/ready"

PEER_PACKAGES = {
    # MLServer 1.7.1's parallel workers call asyncio.get_event_loop() in a fresh process, which
    # uvloop 0.22+ turns into an error (workers die at start); 0.21 is what it was built against.
    "mlserver": ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
    "kserve": ["kserve", "joblib"],
}


@dataclass
class ServerSpec:
    name: str
    config: str
    cmd: list[str]
    port: int
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    grpc_port: int | None = None


@dataclass
class LoadResult:
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class ServerResult:
    spec: ServerSpec
    startup_s: float = float("nan")
    pss_mb: float = float("nan")
    rss_mb: float = float("nan")
    loads: dict[int, LoadResult] = field(default_factory=dict)
    grpc_loads: dict[int, LoadResult] = field(default_factory=dict)
    failure: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def ensure_venv(cache: Path, name: str) -> Path:
    """A venv with the peer installed (and our scikit-learn version, so the same file loads)."""
    venv = cache / name
    packages = [*PEER_PACKAGES[name], f"scikit-learn=={sklearn_version()}"]
    stamp = venv / ".modelops-packages"
    if stamp.is_file() and stamp.read_text() == " ".join(packages):
        return venv
    print(f"installing {name} into {venv} (cached for later runs): {' '.join(packages)}", flush=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    if not (venv / "bin" / "python").exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *packages], check=True)
    stamp.write_text(" ".join(packages))
    return venv


def pip_version(venv: Path, package: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", package], capture_output=True, text=True
    ).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version:")), "?")


def train_models(cache: Path) -> dict[str, Path]:
    from modelops.training.trainer import TrainOptions, train

    dirs = {}
    for fmt in ("joblib", "skops"):
        out = cache / "models" / f"iris-{fmt}"
        if out.exists():
            shutil.rmtree(out)
        train(TrainOptions(dataset="iris", output=out, format=fmt))
        dirs[fmt] = out
    return dirs


# -- peers ------------------------------------------------------------------------------------
def ours(model_dir: Path, workers: int, fast_path: bool = True) -> ServerSpec:
    port = free_port()
    cmd = [sys.executable, "-m", "modelops.cli.main", "serve", str(model_dir), "--host", "127.0.0.1"]
    grpc_port = free_port()
    cmd += ["--port", str(port), "--workers", str(workers), "--grpc-port", str(grpc_port)]
    if not fast_path:
        cmd.append("--no-fast-path")
    return ServerSpec(
        "modelops" if fast_path else "modelops-sklearn",
        f"{workers} workers (pre-fork, SO_REUSEPORT), adaptive batching max 64 rows / no added wait"
        + ("" if fast_path else ", --no-fast-path: sklearn's own predict per batch"),
        cmd,
        port,
        grpc_port=grpc_port,
    )


def mlserver(venv: Path, model_dir: Path, work: Path, parallel_workers: int, batching: bool) -> ServerSpec:
    port = free_port()
    repo = work / f"mlserver-pw{parallel_workers}{'-batch' if batching else ''}"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "iris").mkdir(parents=True)
    shutil.copy(model_dir / "model.joblib", repo / "iris" / "model.joblib")
    grpc_port = free_port()
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
        "parallel_workers": parallel_workers,
    }
    model: dict[str, Any] = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }
    if batching:
        model.update({"max_batch_size": 32, "max_batch_time": 0.002})
    (repo / "settings.json").write_text(json.dumps(settings))
    (repo / "iris" / "model-settings.json").write_text(json.dumps(model))
    config = f"parallel_workers={parallel_workers}" + (
        ", adaptive batching max_batch_size=32 max_batch_time=2ms" if batching else ", no adaptive batching"
    )
    return ServerSpec(
        f"MLServer {pip_version(venv, 'mlserver')}",
        config,
        [str(venv / "bin" / "mlserver"), "start", str(repo)],
        port,
        cwd=repo,
        grpc_port=grpc_port,
    )


def kserve(venv: Path, model_dir: Path, workers: int) -> ServerSpec:
    port = free_port()
    cmd = [str(venv / "bin" / "python"), str(HERE / "kserve_model.py"), "--model_path", str(model_dir / "model.joblib")]
    cmd += ["--model_name", "iris"]
    cmd += ["--http_port", str(port), "--grpc_port", str(free_port()), "--workers", str(workers)]
    cmd += ["--enable_latency_logging", "false", "--enable_grpc", "false"]
    return ServerSpec(
        f"KServe {pip_version(venv, 'kserve')}",
        f"--workers {workers} (uvicorn processes), latency logging off, gRPC off",
        cmd,
        port,
    )


# -- measuring --------------------------------------------------------------------------------
def tree_pids(pid: int) -> list[int]:
    pids = [pid]
    for p in pids:
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return pids


def memory_mb(pid: int) -> tuple[float, float]:
    """(PSS, RSS) summed over the process tree; PSS splits shared pages fairly between processes."""
    pss = rss = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    return pss / 1024, rss / 1024


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{READY_PATH}", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("not ready in time")


def check_answer(port: int) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{INFER_PATH}", json.dumps(BODY).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        outputs = json.loads(resp.read())["outputs"]
    if outputs[0]["data"][0] != 0:
        raise RuntimeError(f"wrong prediction: {outputs}")


def wrk(port: int, concurrency: int, duration: float, body_file: Path) -> LoadResult:
    env = {**os.environ, "BODY_FILE": str(body_file), "PATH_INFER": INFER_PATH}
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "5s", "-s", str(HERE / "report.lua")]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    r = json.loads(line[len("RESULT ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return LoadResult(
        concurrency,
        r["requests"] / (r["duration_us"] / 1e6),
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        errors,
        r["requests"],
    )


def ghz(port: int, concurrency: int, duration: float) -> LoadResult:
    """ghz at a fixed concurrency: ``concurrency`` workers over as many connections (so the
    kernel spreads them over SO_REUSEPORT workers, as wrk's connections are)."""
    cmd = [str(GHZ), "--insecure", "--proto", str(GRPC_PROTO), "--call", GRPC_CALL]
    cmd += ["-d", json.dumps(GRPC_BODY), "-c", str(concurrency), "--connections", str(concurrency)]
    cmd += ["-z", f"{duration:g}s", "-t", "5s", "-O", "json", f"127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    latency = {int(d["percentage"]): d["latency"] for d in r.get("latencyDistribution") or []}
    # ghz closes its own connections when the duration ends, failing the calls then in flight
    # ("use of closed network connection"): not the server's errors.
    errors = sum(
        n
        for message, n in (r.get("errorDistribution") or {}).items()
        if "use of closed network connection" not in message
    )
    return LoadResult(
        concurrency, float(r["rps"]), latency.get(50, 0) / 1e6, latency.get(99, 0) / 1e6, errors, int(r["count"])
    )


def run_server(
    spec: ServerSpec, levels: list[int], duration: float, warmup: float, body: Path, logs: Path
) -> ServerResult:
    result = ServerResult(spec)
    print(f"\n== {spec.name}: {spec.config}", flush=True)
    log_path = logs / (spec.name.split()[0].lower() + "-" + str(spec.port) + ".log")
    log = log_path.open("wb")
    proc = subprocess.Popen(
        spec.cmd,
        cwd=spec.cwd,
        env={**os.environ, **spec.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        result.startup_s = wait_ready(spec.port, proc)
        check_answer(spec.port)
        for c in levels:
            wrk(spec.port, c, warmup, body)
            res = wrk(spec.port, c, duration, body)
            result.loads[c] = res
            print(
                f"   c={c:<4d} {res.rps:9.0f} req/s   p50 {res.p50_ms:7.3f} ms   p99 {res.p99_ms:7.3f} ms   "
                f"errors {res.errors}",
                flush=True,
            )
        result.pss_mb, result.rss_mb = memory_mb(proc.pid)
        if spec.grpc_port is not None and GHZ.exists():
            for c in levels:
                ghz(spec.grpc_port, c, warmup)
                res = ghz(spec.grpc_port, c, duration)
                result.grpc_loads[c] = res
                print(
                    f"   gRPC c={c:<4d} {res.rps:9.0f} req/s   p50 {res.p50_ms:7.3f} ms   p99 {res.p99_ms:7.3f} ms   "
                    f"errors {res.errors}",
                    flush=True,
                )
    except (RuntimeError, subprocess.CalledProcessError, OSError, StopIteration) as exc:
        result.failure = str(exc)
        print(f"   FAILED: {exc}; see {log_path}", flush=True)
    finally:
        with _suppress():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    return result


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]


def in_process(model_dirs: dict[str, Path]) -> tuple[list[str], list[str]]:
    """Raw predict (sklearn, and our verified fast path) and model load times."""
    import joblib
    import numpy as np
    import skops.io
    from modelops.loading.loader import load_model_dir
    from modelops.serving.predictor import Predictor
    from sklearn.datasets import load_iris

    predict_lines = []
    loaded = load_model_dir(model_dirs["joblib"])
    predictor = Predictor(loaded.model, loaded.metadata)
    X_all = load_iris().data
    for batch in (1, 32, 1024):
        X = np.resize(X_all, (batch, 4))
        row = [f"| {batch} "]
        for fn in (loaded.model.predict, predictor.predict):
            for _ in range(50):
                fn(X)
            n = max(200, 20000 // batch)
            t = time.perf_counter()
            for _ in range(n):
                fn(X)
            per_call = (time.perf_counter() - t) / n
            row.append(f"| {per_call * 1e6:,.1f} us | {batch / per_call:,.0f} rows/s ")
        predict_lines.append("".join(row) + "|")
    load_lines = []
    for fmt, d in model_dirs.items():
        raw_times, full_times = [], []
        for _ in range(7):
            t = time.perf_counter()
            if fmt == "joblib":
                joblib.load(d / "model.joblib")
            else:
                skops.io.load(str(d / "model.skops"), trusted=skops.io.get_untrusted_types(file=str(d / "model.skops")))
            raw_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            load_model_dir(d)
            full_times.append(time.perf_counter() - t)
        size = (d / f"model.{fmt}").stat().st_size
        load_lines.append(
            f"| {fmt} | {size:,} B | {statistics.median(raw_times) * 1000:.2f} ms "
            f"| {statistics.median(full_times) * 1000:.2f} ms |"
        )
    return predict_lines, load_lines


def go_build_running() -> bool:
    out = subprocess.run(["pgrep", "-f", "go build"], capture_output=True, text=True).stdout
    return bool(out.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per level")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each level")
    ap.add_argument("--concurrency", default="1,32,128")
    ap.add_argument("--workers", type=int, default=2, help="our server's worker processes")
    ap.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelops" / "bench-serving",
    )
    ap.add_argument("--skip-peers", action="store_true", help="only our server (quick check)")
    ap.add_argument("--only-mlserver", action="store_true", help="of the peers, only MLServer (no adaptive batching)")
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if not GHZ.exists():
        print(f"ghz is not built ({GHZ}): `make ghz`; the gRPC rows are left out", file=sys.stderr)
    levels = [int(c) for c in args.concurrency.split(",")]
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    noisy = go_build_running()
    if noisy:
        print("WARNING: a go build is running; numbers will be noisy", flush=True)
    model_dirs = train_models(cache)
    body = cache / "body.json"
    body.write_text(json.dumps(BODY))

    # The second row calls scikit-learn's predict like the peers do: what batching alone buys.
    specs = [ours(model_dirs["joblib"], args.workers), ours(model_dirs["joblib"], args.workers, fast_path=False)]
    if not args.skip_peers:
        ml = ensure_venv(cache, "mlserver")
        ks = ensure_venv(cache, "kserve") if not args.only_mlserver else ml
        work = cache / "work"
        if args.only_mlserver:
            specs += [mlserver(ml, model_dirs["joblib"], work, pw, False) for pw in (0, 2)]
        else:
            specs += [
                mlserver(ml, model_dirs["joblib"], work, 0, False),
                mlserver(ml, model_dirs["joblib"], work, 2, False),
                mlserver(ml, model_dirs["joblib"], work, 2, True),
                kserve(ks, model_dirs["joblib"], 1),
                kserve(ks, model_dirs["joblib"], 2),
            ]
    logs = cache / "logs"
    logs.mkdir(exist_ok=True)
    results = [run_server(s, levels, args.duration, args.warmup, body, logs) for s in specs]
    predict_lines, load_lines = in_process(model_dirs)
    report = render(results, levels, predict_lines, load_lines, args, noisy)
    print("\n" + report)
    command = "make bench-serving  # = .venv/bin/python benchmarks/serving/run.py " + " ".join(sys.argv[1:])
    args.results.write_text(
        "# Serving benchmark results\n\nMade by:\n\n```\n" + command.rstrip() + "\n```\n\n" + report + "\n"
    )
    return 0 if all(not r.failure for r in results) else 1


def render(
    results: list[ServerResult],
    levels: list[int],
    predict_lines: list[str],
    load_lines: list[str],
    args: argparse.Namespace,
    noisy: bool,
) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    lines = [
        f"Machine: {os.cpu_count()} CPUs ({cpu}); load from wrk (1 thread) on the same cores; 127.0.0.1, keep-alive, "
        f"single-row OIP v2 JSON requests (iris LogisticRegression pipeline, joblib); {args.duration:g} s per level "
        f"after {args.warmup:g} s warm-up; scikit-learn {sklearn_version()} everywhere."
        + (" A go build was running: numbers are noisy." if noisy else ""),
        "",
        "| server | configuration | concurrency | req/s | p50 ms | p99 ms | errors | PSS MB | RSS MB | start s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.failure:
            lines.append(f"| {r.spec.name} | {r.spec.config} | - | failed: {r.failure} | | | | | | |")
            continue
        for c in levels:
            load = r.loads.get(c)
            if load is None:
                continue
            lines.append(
                f"| {r.spec.name} | {r.spec.config} | {c} | {load.rps:,.0f} | {load.p50_ms:.3f} | {load.p99_ms:.2f} "
                f"| {load.errors} | {r.pss_mb:.0f} | {r.rss_mb:.0f} | {r.startup_s:.1f} |"
            )
    ours_r = results[0]
    peers: dict[str, list[ServerResult]] = {}
    for r in results[1:]:
        if not r.failure and not r.spec.name.startswith("modelops"):
            peers.setdefault(r.spec.name.split()[0], []).append(r)
    if peers and not ours_r.failure:
        lines += [
            "",
            "Ours vs each peer's best configuration at that concurrency (throughput ratio; p99 ours / theirs):",
            "",
        ]
        lines += [
            "| peer | concurrency | peer best req/s | ours req/s | throughput ratio | peer p99 ms | ours p99 ms |"
        ]
        lines += ["| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for peer, runs in peers.items():
            for c in levels:
                best = max((r for r in runs if c in r.loads), key=lambda r: r.loads[c].rps, default=None)
                mine = ours_r.loads.get(c)
                if best is None or mine is None:
                    continue
                theirs = best.loads[c]
                lines.append(
                    f"| {peer} ({best.spec.config}) | {c} | {theirs.rps:,.0f} | {mine.rps:,.0f} | "
                    f"{mine.rps / theirs.rps:.1f}x | {theirs.p99_ms:.2f} | {mine.p99_ms:.2f} |"
                )
    grpc_rows = [r for r in results if r.grpc_loads]
    if grpc_rows:
        lines += [
            "",
            "OIP v2 over gRPC, same servers, load from ghz "
            f"{GHZ_VERSION} (as many connections as concurrency), single-row ModelInfer with typed fp64 contents:",
            "",
            "| server | configuration | concurrency | req/s | p50 ms | p99 ms | errors |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in grpc_rows:
            for c in levels:
                load = r.grpc_loads.get(c)
                if load is not None:
                    lines.append(
                        f"| {r.spec.name} | {r.spec.config} | {c} | {load.rps:,.0f} | {load.p50_ms:.3f} "
                        f"| {load.p99_ms:.2f} | {load.errors} |"
                    )
        grpc_peers = [r for r in grpc_rows if not r.spec.name.startswith("modelops")]
        if grpc_peers and ours_r.grpc_loads:
            lines += [
                "",
                "gRPC: ours vs the peer's best configuration at that concurrency:",
                "",
                "| peer | concurrency | peer best req/s | ours req/s | throughput ratio | peer p99 ms | ours p99 ms |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for c in levels:
                best = max(
                    (r for r in grpc_peers if c in r.grpc_loads), key=lambda r: r.grpc_loads[c].rps, default=None
                )
                mine = ours_r.grpc_loads.get(c)
                if best is None or mine is None:
                    continue
                theirs = best.grpc_loads[c]
                lines.append(
                    f"| {best.spec.name} ({best.spec.config}) | {c} | {theirs.rps:,.0f} | {mine.rps:,.0f} | "
                    f"{mine.rps / theirs.rps:.1f}x | {theirs.p99_ms:.2f} | {mine.p99_ms:.2f} |"
                )
    lines += [
        "",
        "Raw in-process predict on the same model (no HTTP): scikit-learn's `predict` vs our server's verified",
        "fast path (the ceiling):",
        "",
        "| batch | sklearn per call | sklearn rows/s | ours per call | ours rows/s |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *predict_lines,
        "",
        "Model load time (median of 7): raw deserialisation, and our full load (sha256 check, skops trusted-type",
        "check, version check, metadata):",
        "",
        "| format | file size | raw load | modelops load |",
        "| --- | ---: | ---: | ---: |",
        *load_lines,
        "",
        "Notes: both peers call scikit-learn's `predict` once per request (MLServer's adaptive batching",
        "merges some), so their ceiling is the batch-1 sklearn row above; our server merges concurrent",
        "requests and uses a fast path verified against the model's own predictions at load. PSS splits",
        "pages shared between a server's processes; RSS counts them once per process. Errors are wrk's",
        "connect/read/write/timeout errors plus non-2xx answers.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
