"""A real Prometheus (Debian's /usr/bin/prometheus) scraping the serving pods of the local control plane.

It discovers pods through the API server (kubernetes_sd_configs, role pod, with the cluster's
kubeconfig) and scrapes those annotated `prometheus.io/scrape: "true"` at their pod IP and the
`prometheus.io/port` annotation, every second, as a cluster's Prometheus would. Every series carries
`namespace`, `pod` and `pod_revision` (the pod's `modelops.dev/revision` label).

Only pods on NetKubelet nodes (label `modelops.dev/real-pods=true`, see tests/cluster/netkubelet.py)
are scraped by default: pods on kwok nodes have addresses nothing answers at, and this harness dials
only the network namespaces it made.

Used by tests/integration/test_harness.py and the e2e rollout tests (`Prometheus(kubeconfig, port)
.start()`, `.stop()` and `.restart()` to take it away mid-canary and bring it back). Its data and log
live in .cluster/prometheus-<port>/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BINARY = Path("/usr/bin/prometheus")
REAL_NODE_LABEL = "modelops.dev/real-pods"


class PrometheusError(Exception):
    """Prometheus could not be started, or did not become ready."""


def _opener() -> urllib.request.OpenerDirector:
    # No proxies from the environment: Prometheus is on 127.0.0.1.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _label(name: str) -> str:
    """A Kubernetes label name as Prometheus' service discovery spells it in meta labels."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def scrape_config(kubeconfig: str | Path, only_real_nodes: bool = True) -> dict[str, Any]:
    """The Prometheus configuration (as a dict; JSON is valid YAML)."""
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep",
         "regex": "true"},
        # Init containers are discovered as targets too; the server is the pod's main container.
        {"source_labels": ["__meta_kubernetes_pod_container_init"], "action": "drop", "regex": "true"},
        {"source_labels": ["__meta_kubernetes_pod_ip"], "action": "keep", "regex": ".+"},
        {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
    ]
    if only_real_nodes:
        relabel.append({"source_labels": [f"__meta_kubernetes_node_label_{_label(REAL_NODE_LABEL)}"],
                        "action": "keep", "regex": "true"})
    relabel += [
        {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"], "regex": "(.+)",
         "target_label": "__metrics_path__"},
        {"source_labels": ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
         "regex": r"(.+);(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": [f"__meta_kubernetes_pod_label_{_label('modelops.dev/revision')}"],
         "target_label": "pod_revision"},
    ]
    sd: dict[str, Any] = {"role": "pod", "kubeconfig_file": str(kubeconfig)}
    if only_real_nodes:
        sd["attach_metadata"] = {"node": True}  # gives pods their node's labels
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "modelops-pods", "kubernetes_sd_configs": [sd],
                            "relabel_configs": relabel}],
    }


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Prometheus:
    """One Prometheus process on 127.0.0.1:<port>; its data survives `stop()` / `start()`."""

    def __init__(self, kubeconfig: str | Path, port: int, *, only_real_nodes: bool = True,
                 data_root: Path | None = None) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.port = port
        self.only_real_nodes = only_real_nodes
        self.dir = (data_root or REPO / ".cluster") / f"prometheus-{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "prometheus.log"

    def start(self, timeout: float = 60) -> Prometheus:
        """Start Prometheus and return once /-/ready answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        if not BINARY.exists():
            raise PrometheusError(f"{BINARY} not found: `apt-get install prometheus` (make system-deps)")
        deadline = time.monotonic() + timeout
        # The previous process may have just exited; its socket can linger for a moment.
        while not _port_free(self.port):
            if time.monotonic() > deadline:
                raise PrometheusError(f"port {self.port} is in use")
            time.sleep(0.2)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(json.dumps(scrape_config(self.kubeconfig, self.only_real_nodes), indent=2))
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BINARY), f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                 "--storage.tsdb.retention.time=1d", "--storage.tsdb.no-lockfile", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.dir, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir)})
        while not self.ready():
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"prometheus not ready after {timeout:.0f}s: {self._log_tail()}")
            time.sleep(0.2)
        return self

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (Prometheus flushes its head block), SIGKILL if it does not exit in time."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self) -> Prometheus:
        self.stop()
        return self.start()

    def remove_data(self) -> None:
        """Delete the data directory (only while stopped)."""
        if self.proc is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            with _opener().open(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with _opener().open(f"{self.url}{path}{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: the result vector (each item's `metric` labels and `value`)."""
        data = self._get("/api/v1/query", {"query": promql})
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (labels, scrapeUrl, health, lastError)."""
        return list(self._get("/api/v1/targets", {"state": "active"})["activeTargets"])

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
