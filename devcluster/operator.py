"""The operator as a child process of this machine, as it runs in a cluster: used by the tests'
`operator` fixture, the demo and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from devcluster import localcluster

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "modeldeployments.modelops.dev.yaml"


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



class OperatorProcess:
    """`modelops run` as a child process, as it runs in a cluster (but on this machine).

    `args` are extra `modelops run` flags (e.g. `--namespace`, `--leader-elect`). The operator serves
    /metrics on `metrics_port` (a free port unless given): `metrics()` is the page, `metric()` one sum.
    `kubeconfig` (default: the admin's) is who it acts as; the `operator` fixture gives it the shipped
    RBAC's ServiceAccount (tests/gitops/rbac.py) and its namespace as `pod_namespace`.
    """

    def __init__(self, cluster: localcluster.Cluster, log: Path, args: Sequence[str] = (),
                 metrics_port: int | None = None, kubeconfig: Path | None = None,
                 pod_namespace: str | None = None) -> None:
        self.cluster = cluster
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.log = log
        self.args = tuple(args)
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self.pod_namespace = pod_namespace  # as the Deployment sets POD_NAMESPACE: the Lease lives there
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # The tests' Prometheus servers listen on loopback: allowed there, as an administrator would
        # allow the cluster's own Prometheus (any other prometheusUrl is still refused).
        return [sys.executable, "-m", "modelops.cli.main", "run", "--metrics-port", str(self.metrics_port),
                "--prometheus-allow", "127.0.0.1", *self.args]

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        if self.pod_namespace:
            env["POD_NAMESPACE"] = self.pod_namespace
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
