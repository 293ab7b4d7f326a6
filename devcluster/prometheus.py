"""A real Prometheus (Debian's /usr/bin/prometheus) scraping the serving pods of the local control plane.

Debian builds Prometheus without Kubernetes service discovery (`kubernetes_sd_configs` is "not
found in type config.ScrapeConfig"), so this module does that part: a thread lists pods through the
API server every second and writes a file_sd target file, with the rules of the usual
`kubernetes-pods` job: pods annotated `prometheus.io/scrape: "true"`, scraped at their pod IP and the
`prometheus.io/port` annotation, path from `prometheus.io/path`, every second. Every series carries
`namespace`, `pod` and `pod_revision` (the pod's `modelops.dev/revision` label).

Only pods on real nodes (label `modelops.dev/real-pods`; devcluster/realnode.py) are scraped by
default: pods on kwok nodes have addresses nothing answers at. Prometheus listens on the host's address
on the node bridge, so the operator's pods can query it as they would a cluster's Prometheus.

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
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from devcluster import realnode
from devcluster.kubeapi import KubeAPI
from devcluster.localcluster import port_free

REPO = Path(__file__).resolve().parents[1]
BINARY = Path("/usr/bin/prometheus")
REAL_NODE_LABEL = "modelops.dev/real-pods"
REVISION_LABEL = "modelops.dev/revision"


class PrometheusError(Exception):
    """Prometheus could not be started, or did not become ready."""


def _opener() -> urllib.request.OpenerDirector:
    # No proxies from the environment: Prometheus is on this machine.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape_config(targets_file: Path, static_jobs: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The Prometheus configuration (as a dict; JSON is valid YAML). `static_jobs`: more jobs, each a
    list of host:port targets (e.g. the operator's /metrics as `modelops-operator-metrics`, the job
    name the shipped ServiceMonitor gives it; labels honoured as it does)."""
    jobs: list[dict[str, Any]] = [{"job_name": "modelops-pods",
                                   "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}]}]
    jobs += [{"job_name": name, "honor_labels": True, "static_configs": [{"targets": targets}]}
             for name, targets in (static_jobs or {}).items()]
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }


def pod_targets(pods: list[dict[str, Any]], nodes: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """file_sd target groups for the pods to scrape (`nodes`: only pods on these; None: any node)."""
    allowed = None if nodes is None else {n["metadata"]["name"] for n in nodes}
    groups = []
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status") or {}
        annotations = meta.get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true" or meta.get("deletionTimestamp"):
            continue
        if status.get("phase") != "Running" or not status.get("podIP"):
            continue
        if allowed is not None and pod["spec"].get("nodeName") not in allowed:
            continue
        port = annotations.get("prometheus.io/port", "")
        if not port.isdigit():
            continue
        labels = {"namespace": meta["namespace"], "pod": meta["name"],
                  "pod_revision": (meta.get("labels") or {}).get(REVISION_LABEL, ""),
                  "__metrics_path__": annotations.get("prometheus.io/path", "/metrics")}
        groups.append({"targets": [f"{status['podIP']}:{port}"], "labels": labels})
    return sorted(groups, key=lambda g: g["targets"][0])


class Prometheus:
    """One Prometheus process on the node bridge's host address:<port>; its data survives `stop()` / `start()`."""

    def __init__(self, kubeconfig: str | Path, port: int, *, only_real_nodes: bool = True,
                 data_root: Path | None = None, static_jobs: dict[str, list[str]] | None = None) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.static_jobs = dict(static_jobs or {})
        self.port = port
        self.only_real_nodes = only_real_nodes
        self.dir = (data_root or REPO / ".cluster") / f"prometheus-{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = KubeAPI(self.kubeconfig)
        self.discovery_stop = threading.Event()
        self.discovery: threading.Thread | None = None
        self.discovery_error = ""

    @property
    def targets_file(self) -> Path:
        return self.dir / "targets.json"

    @property
    def url(self) -> str:
        return f"http://{realnode.host_ip()}:{self.port}"

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
        while not port_free(self.port):
            if time.monotonic() > deadline:
                raise PrometheusError(f"port {self.port} is in use")
            time.sleep(0.2)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(json.dumps(scrape_config(self.targets_file, self.static_jobs), indent=2))
        self._discover()  # targets before the first scrape
        self.discovery_stop = threading.Event()
        self.discovery = threading.Thread(target=self._discovery_loop, args=(self.discovery_stop,),
                                          name=f"prometheus-{self.port}-sd", daemon=True)
        self.discovery.start()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BINARY), f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address={realnode.host_ip()}:{self.port}", "--web.enable-lifecycle",
                 "--storage.tsdb.retention.time=1d", "--log.level=warn"],
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
        self.discovery_stop.set()
        if self.discovery is not None:
            self.discovery.join(10)
            self.discovery = None
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

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus holds a series of."""
        return {str(name) for name in self._get("/api/v1/label/__name__/values")}

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (labels, scrapeUrl, health, lastError)."""
        return list(self._get("/api/v1/targets", {"state": "active"})["activeTargets"])

    def _discovery_loop(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            try:
                self._discover()
                self.discovery_error = ""
            except Exception as error:  # keep the last targets, as Prometheus' own SD would
                self.discovery_error = str(error)

    def _discover(self) -> None:
        pods = self.api.get("/api/v1/pods")["items"]
        nodes = None
        if self.only_real_nodes:
            nodes = self.api.get("/api/v1/nodes", labelSelector=REAL_NODE_LABEL)["items"]
        text = json.dumps(pod_targets(pods, nodes), indent=1)
        if self.targets_file.exists() and self.targets_file.read_text() == text:
            return
        # Written whole and renamed, so Prometheus never reads half a file.
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.targets_file)

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
