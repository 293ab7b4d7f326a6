"""`modelops serve`: the supervisor process of the model server and its pre-forked workers.

The supervisor loads and verifies the model once, binds one SO_REUSEPORT listening socket per
worker (the kernel spreads connections across them) and reserves the gRPC port (the workers'
gRPC servers bind it with SO_REUSEPORT after the fork), forks the workers, restarts any that die
or stay stuck past the predict timeout (modelops.serving.heartbeat), computes drift from the rows
the workers hand over (modelops.serving.drift_monitor), and on SIGTERM stops accepting and lets
the workers finish in-flight requests before exiting 0.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.loading.loader import LoadedModel, ModelLoadError, load_model_dir
from modelops.serving.context import WorkerContext, metadata_doc, model_spec, prediction_labels
from modelops.serving.datalog import RequestLogConfig
from modelops.serving.dataplane import WorkerConfig
from modelops.serving.feedback import FeedbackConfig, FeedbackPlumbing
from modelops.serving.predictor import Predictor

log = logging.getLogger("modelops.serve")

STUCK_GRACE_S = 2.0  # past the predict timeout, before the supervisor kills a stuck worker


@dataclass
class ServeConfig:
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    name: str | None = None
    version: str | None = None
    revision: str = ""
    sha256: str | None = None
    workers: int = 0  # 0: one per available CPU
    max_batch_size: int = 64
    max_latency_ms: float = 0.0
    max_rows: int = 4096
    max_body_bytes: int = 8 * 1024 * 1024
    request_timeout_s: float = 10.0
    keepalive_timeout_s: float = 75.0
    drain_timeout_s: float = 25.0
    allow_version_mismatch: bool = False
    trusted_types: tuple[str, ...] = ()
    fast_path: bool = True
    allow_nan: bool | None = None
    drift_window_s: float = 600.0
    drift_interval_s: float = 5.0
    drift_min_rows: int = 100
    ring_capacity: int = 65536
    metrics_dir: Path | None = None
    backlog: int = 2048
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    request_log: RequestLogConfig | None = None  # --log-requests-to
    grpc_port: int | None = None  # None: no gRPC; 0: any free port
    predict_timeout_s: float = 30.0
    max_connections: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads() -> None:
    """One BLAS/OpenMP thread per process: several single-threaded workers beat processes fighting
    their own thread pools on a few cores. The variables only count if set before numpy loads its
    BLAS (`modelops serve` sets them first thing); threadpoolctl resizes pools already loaded."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def default_workers(cpu_max: str | None = None) -> int:
    """One worker per CPU we may use: the affinity mask, capped by a cgroup v2 CPU quota (a pod's
    CPU limit), since a container sees all of the node's CPUs in its affinity mask."""
    cpus = len(os.sched_getaffinity(0))
    if cpu_max is None:
        try:
            cpu_max = Path("/sys/fs/cgroup/cpu.max").read_text()
        except OSError:
            return cpus
    quota, _, period = cpu_max.strip().partition(" ")
    if quota == "max" or not period:
        return cpus
    try:
        return max(1, min(cpus, math.ceil(int(quota) / int(period))))
    except (ValueError, ZeroDivisionError):
        return cpus


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """In a forked worker: die when the supervisor does. A supervisor killed with SIGKILL cannot stop
    its workers; in a pod the container's end takes them, on a bare host nothing would (they kept the
    port and the model's memory). The signal follows the thread that forked: the supervisor forks
    from its main thread only, which lives as long as it does."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)  # the supervisor died before the request above was made


def _bind(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]  # port 0: every further socket takes the one chosen first
        sock.listen(backlog)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def _reserve(host: str, port: int) -> socket.socket:
    """Bind (without listening) the gRPC port with SO_REUSEPORT: fixes the port when 0 is asked,
    and the workers' gRPC servers bind the same port with SO_REUSEPORT after the fork. A bound
    socket that does not listen takes no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _measure_inline(predictor: Predictor, example: Any) -> bool:
    """Predict inline on the event loop only when one call is cheap (under 1 ms)."""
    import numpy as np

    X = np.asarray([example], dtype=np.float64)
    timings = []
    for _ in range(7):
        t = time.perf_counter()
        try:
            predictor.predict(X)
        except Exception:
            return False  # a model that fails on the example is odd; keep the loop responsive
        timings.append(time.perf_counter() - t)
        if timings[-1] > 0.01:
            return False  # plainly slow (or hanging): no need to wait for six more calls
    return sorted(timings)[3] < 0.001


class Supervisor:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.stopping = False
        self.children: dict[int, int] = {}  # pid -> worker index
        self.spawned_at: dict[int, float] = {}  # worker index -> when it was last started
        self.quick_deaths = 0
        self.exit_code = 0
        self.sockets: list[socket.socket] = []
        self.tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.grpc_port: int | None = None
        self.grpc_reservation: socket.socket | None = None

    def run(self) -> int:
        cfg = self.config
        limit_threads()
        metrics_dir = cfg.metrics_dir
        if metrics_dir is None:
            env_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if env_dir:
                metrics_dir = Path(env_dir)
            else:
                self.tmpdir = tempfile.TemporaryDirectory(prefix="modelops-metrics-")
                metrics_dir = Path(self.tmpdir.name)
        from modelops.serving import metrics

        metrics.enable_multiprocess(metrics_dir)
        try:
            loaded = load_model_dir(cfg.model_dir, cfg.sha256, cfg.allow_version_mismatch, cfg.trusted_types)
        except ModelLoadError as exc:
            print(f"modelops serve: {exc}", file=sys.stderr)
            return 2
        self.loaded = loaded
        meta = loaded.metadata
        self.name = cfg.name or meta.name
        self.version = cfg.version or meta.version
        self.revision = cfg.revision or loaded.sha256[:12]
        import sklearn

        # The server validates finiteness itself; skip sklearn's repeated checks per call.
        sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
        self.predictor = Predictor(loaded.model, meta, fast_path=cfg.fast_path)
        example = meta.examples[0] if meta.examples else [0.0] * len(meta.features)
        self.inline = _measure_inline(self.predictor, example)
        workers = cfg.workers or default_workers()
        self.workers = workers

        from modelops.serving.drift_monitor import DriftMonitor, SharedRing

        self.ring = SharedRing(workers, cfg.ring_capacity, len(meta.features))
        from modelops.serving.heartbeat import Heartbeats

        self.heartbeats = Heartbeats(workers)
        gauges = metrics.DriftGauges(self.name, self.version, self.revision)
        self.drift = DriftMonitor(meta, self.ring, cfg.drift_window_s, cfg.drift_min_rows, gauges)
        classes = None if meta.task == "regression" else list(meta.classes)
        self.feedback = FeedbackPlumbing(cfg.feedback, workers, classes, (self.name, self.version, self.revision),
                                         meta.feature_names, cfg.request_log)

        try:
            self.sockets = _bind(cfg.host, cfg.port, workers, cfg.backlog)
        except OSError as exc:
            print(f"modelops serve: cannot listen on {cfg.host}:{cfg.port}: {exc}", file=sys.stderr)
            return 2
        port = self.sockets[0].getsockname()[1]
        grpc_note = ""
        if cfg.grpc_port is not None:
            try:
                self.grpc_reservation = _reserve(cfg.host, cfg.grpc_port)
            except OSError as exc:
                print(f"modelops serve: cannot listen on {cfg.host}:{cfg.grpc_port} for gRPC: {exc}", file=sys.stderr)
                return 2
            self.grpc_port = self.grpc_reservation.getsockname()[1]
            grpc_note = f" and grpc://{cfg.host}:{self.grpc_port}"

        self.context = self._context()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # Everything loaded so far lives as long as the process: keep the garbage collector from
        # walking it (shorter pauses) and from touching its pages (workers keep sharing them).
        gc.collect()
        gc.freeze()
        for index in range(workers):
            self._spawn(index)
        print(
            f"modelops serve: model {self.name} version {self.version} revision {self.revision} "
            f"({meta.format}, predictor {self.predictor.kind}, {'inline' if self.inline else 'threaded'} predict) "
            f"listening on http://{cfg.host}:{port}{grpc_note} with {workers} workers",
            flush=True,
        )
        return self._supervise()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _spawn(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                _die_with(parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                for i, sock in enumerate(self.sockets):
                    if i != index:
                        sock.close()
                code = self._worker(index, self.sockets[index])
            except BaseException:
                log.exception("worker %d crashed", index)
            finally:
                os._exit(code)
        self.children[pid] = index
        self.spawned_at[index] = time.monotonic()
        self.heartbeats.reset(index)
        self.drift.reset_worker(index)
        self.feedback.reset_worker(index)

    def _worker(self, index: int, sock: socket.socket) -> int:
        from modelops.serving.worker import run_worker

        return run_worker(self.context, index, sock)

    def _context(self) -> WorkerContext:
        """What every worker needs, as data (the worker never reads the supervisor)."""
        cfg = self.config
        spec = model_spec(self.loaded, self.predictor, self.name, self.version, cfg.max_rows, cfg.allow_nan)
        limits = WorkerConfig(
            index=-1,
            max_batch_size=cfg.max_batch_size,
            max_latency_s=cfg.max_latency_ms / 1000.0,
            max_body_bytes=cfg.max_body_bytes,
            request_timeout_s=cfg.request_timeout_s,
            keepalive_timeout_s=cfg.keepalive_timeout_s,
            drain_timeout_s=cfg.drain_timeout_s,
            inline_predict=self.inline,
            revision=self.revision,
            predict_timeout_s=cfg.predict_timeout_s,
            max_connections=cfg.max_connections,
            max_pipelined_bytes=cfg.max_body_bytes,
        )
        return WorkerContext(
            predictor=self.predictor,
            spec=spec,
            metadata=metadata_doc(spec, self.loaded, self.revision),
            revision=self.revision,
            task=self.loaded.metadata.task,
            prediction_labels=prediction_labels(self.loaded),
            config=limits,
            ring=self.ring,
            heartbeats=self.heartbeats,
            feedback=self.feedback,
            host=cfg.host,
            backlog=cfg.backlog,
            grpc_port=self.grpc_port,
        )

    def _supervise(self) -> int:
        cfg = self.config
        from modelops.serving import metrics

        next_drift = time.monotonic() + cfg.drift_interval_s
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            try:
                self.drift.collect(now)
                if now >= next_drift:
                    next_drift = now + cfg.drift_interval_s
                    self.drift.compute(now)
            except Exception:
                log.exception("drift computation failed")
            try:
                self.feedback.tick(now)
            except Exception:
                log.exception("feedback quality computation failed")
            self._kill_stuck(now)
            self._reap(restart=True)
        exit_code = self.exit_code
        # Stop accepting on every listener at once (shutdown acts on the socket all workers
        # share, not just on our descriptor): new connections are refused from now on, instead
        # of queueing on a worker that is about to close its listener.
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
            sock.close()
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + cfg.drain_timeout_s + 5
        while self.children and time.monotonic() < deadline:
            for _pid, status in self._reap(restart=False):
                if os.waitstatus_to_exitcode(status) != 0:
                    exit_code = 1
            time.sleep(0.05)
        for pid in list(self.children):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            exit_code = 1
        for pid in list(self.children):
            metrics.mark_dead(pid)
        if self.tmpdir is not None:
            self.tmpdir.cleanup()
        return exit_code

    def _kill_stuck(self, now: float) -> None:
        """Restart a worker whose loop or model has been stuck well past the predict timeout: the
        requests it holds end (their connections close) and the pod gets its capacity back.
        The worker's own loop answers a request 504 at the predict timeout when it can."""
        limit = self.config.predict_timeout_s + STUCK_GRACE_S
        for index, seconds in self.heartbeats.stuck(now, limit):
            pid = next((p for p, i in self.children.items() if i == index), None)
            if pid is None:
                continue
            log.error("worker %d (pid %d) stuck for %.1f s (model or event loop); restarting it", index, pid, seconds)
            self.heartbeats.reset(index, now)  # once; _reap restarts it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _reap(self, restart: bool) -> list[tuple[int, int]]:
        from modelops.serving import metrics

        reaped = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            index = self.children.pop(pid, None)
            metrics.mark_dead(pid)
            reaped.append((pid, status))
            if index is not None and restart and not self.stopping:
                # A worker that keeps dying at once will not get better by restarting: give up,
                # so the pod restarts (and shows CrashLoopBackOff) instead of spinning here.
                quick = time.monotonic() - self.spawned_at.get(index, 0.0) < 2.0
                self.quick_deaths = self.quick_deaths + 1 if quick else 0
                if self.quick_deaths >= 5:
                    log.error("workers keep dying right after start; stopping the server")
                    self.exit_code = 1
                    self.stopping = True
                    continue
                log.error("worker %d (pid %d) exited with %s; restarting", index, pid, status)
                self._spawn(index)
        return reaped


def serve(config: ServeConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return Supervisor(config).run()


def load_for_benchmark(directory: Path) -> LoadedModel:
    """Load (and verify) a model directory the way the server does; used to time loading."""
    return load_model_dir(directory)
