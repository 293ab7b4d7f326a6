"""Shared fixtures: the real local control plane (session-wide) and a running operator.

The control plane is built and started by tests/cluster; when it cannot start, every test that
needs it errors (it never skips). A control plane already running from this checkout (`make
cluster-up`) is reused and left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

from tests import models
from tests.cluster import localcluster
from tests.gitops import rbac

# The deliberately bad models (tests/models/modelops_testing) for this process and its children.
models.install()

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "modeldeployments.modelops.dev.yaml"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text exposition as {sample name: [(labels, value)]}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def wait_for(check: Callable[[], T], what: str, timeout: float = 60, interval: float = 0.2) -> T:
    """Poll until `check` returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


@pytest.fixture(scope="session")
def cluster() -> Iterator[localcluster.Cluster]:
    c = localcluster.default()
    was_running = localcluster.healthy(c)
    c = localcluster.up(c)  # raises ClusterError: the test errors, never skips
    localcluster.apply_crd(c, CRD_FILE, "modeldeployments.modelops.dev")
    yield c
    if not was_running and not os.environ.get("MODELOPS_KEEP_CLUSTER"):
        localcluster.down(c, quiet=True)


class OperatorProcess:
    """`modelops run` as a child process, as it runs in a cluster (but on this machine).

    `args` are extra `modelops run` flags (e.g. `--namespace`, `--leader-elect`). The operator serves
    /metrics on `metrics_port` (a free port unless given): `metrics()` is the page, `metric()` one sum.
    `kubeconfig` (default: the admin's) is who it acts as; the `operator` fixture gives it the shipped
    RBAC's ServiceAccount (tests/gitops/rbac.py).
    """

    def __init__(self, cluster: localcluster.Cluster, log: Path, args: Sequence[str] = (),
                 metrics_port: int | None = None, kubeconfig: Path | None = None) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.log = log
        self.args = tuple(args)
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # The tests' Prometheus servers listen on loopback: allowed there, as an administrator would
        # allow the cluster's own Prometheus (any other prometheusUrl is still refused).
        return [sys.executable, "-m", "modelops.cli.main", "run", "--metrics-port", str(self.metrics_port),
                "--prometheus-allow", "127.0.0.1", *self.args]

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        if self.kubeconfig != self.cluster.kubeconfig:
            env["POD_NAMESPACE"] = rbac.OPERATOR_NAMESPACE  # as the Deployment sets it: the Lease lives there
        out = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.command(), env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the operator is not started")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> str:
        """The operator's own /metrics page."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
        return sum(v for lbl, v in parse_metrics(self.metrics()).get(name, []) if labels.items() <= lbl.items())

    def stop(self, sig: int = signal.SIGTERM) -> bool:
        """Signal the operator and wait; False when it had to be killed (a pod's grace period ran out)."""
        exited = True
        if self.proc is None:
            return exited
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                exited = False
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return exited

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def operator(cluster: localcluster.Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    # The operator's own ServiceAccount under the shipped RBAC, not the admin kubeconfig: a permission
    # the install forgot fails the scenario that needs it.
    kubeconfig = rbac.operator_kubeconfig(cluster, tmp_path / "operator.kubeconfig")
    op = OperatorProcess(cluster, tmp_path / "operator.log", kubeconfig=kubeconfig)
    op.start()
    yield op
    exited = op.stop()
    sys.stdout.write(f"\noperator log: {op.log}\n")
    if not exited:  # a pod would be SIGKILLed with its Lease held: the standby waits a lease duration
        pytest.fail("the operator did not exit within 20 s of SIGTERM")
    # A scenario that passed after a retry still shows a refusal here: the install must grant it.
    denied = [line for line in op.log.read_text(errors="replace").splitlines()
              if f'forbidden: User "system:serviceaccount:{rbac.OPERATOR_NAMESPACE}:' in line]
    if denied:
        pytest.fail("the shipped RBAC refused the operator:\n" + "\n".join(denied[:5]))


@pytest.fixture
def namespace(cluster: localcluster.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted (without waiting) afterwards."""
    name = f"t-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, "-o", "name", check=False),
             "the namespace's default service account", timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
