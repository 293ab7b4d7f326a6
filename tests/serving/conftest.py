"""Start the real model server (`modelops serve`) as a process on 127.0.0.1 for process-level tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from modelops.training.trainer import TrainOptions, train
from modelops_testing import bad_options

LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
GRPC_LISTENING = re.compile(r"grpc://([\d.]+):(\d+)")


@dataclass
class Server:
    proc: subprocess.Popen[str]
    host: str
    port: int
    output: list[str] = field(default_factory=list)
    grpc_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def grpc_address(self) -> str:
        assert self.grpc_port is not None, "server started without --grpc-port"
        return f"{self.host}:{self.grpc_port}"

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.kill_group()
        return code

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the server's process group (workers orphaned by a killed supervisor)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=10).text


def _reader(proc: subprocess.Popen[str], lines: list[str], found: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if LISTENING.search(line):
            found.set()
    found.set()


def launch(model_dir: Path, *args: str, wait: bool = True) -> Server:
    cmd = [
        sys.executable,
        "-m",
        "modelops.cli.main",
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Its own process group: the cleanup removes the workers too, even when a test killed the supervisor.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    lines: list[str] = []
    found = threading.Event()
    threading.Thread(target=_reader, args=(proc, lines, found), daemon=True).start()
    if not wait:
        return Server(proc, "127.0.0.1", 0, lines)
    found.wait(timeout=120)
    match = next((m for m in map(LISTENING.search, lines) if m), None)
    if match is None:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(lines))
    grpc_match = next((m for m in map(GRPC_LISTENING.search, lines) if m), None)
    server = Server(proc, match.group(1), int(match.group(2)), lines, int(grpc_match.group(2)) if grpc_match else None)
    # The sockets listen before the workers' loops run; wait until a worker answers.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(server.url + "/v2/health/ready", timeout=5).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server never became ready:\n" + "".join(lines))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Train (once per distinct option set) and return a model directory."""
    cache: dict[tuple[tuple[str, object], ...], Path] = {}

    def make(**options: object) -> Path:
        key = tuple(sorted(options.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp("model")
            opts = {"dataset": "iris", **options}
            train(bad_options(output=out, **opts))
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture()
def start_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(model_dir: Path, *args: str, wait: bool = True) -> Server:
        server = launch(model_dir, *args, wait=wait)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        server.kill_group()


@pytest.fixture(scope="module")
def iris_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared 2-worker iris server for the read-mostly tests of a module."""
    out = tmp_path_factory.mktemp("iris-shared")
    train(TrainOptions(dataset="iris", output=out))
    server = launch(out, "--workers", "2", "--request-timeout", "1", "--max-rows", "100", "--max-body-bytes", "100000")
    yield server
    server.stop()
