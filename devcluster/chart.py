"""The operator as a platform engineer installs it: `helm install` of charts/modelops, its pods from
the `modelops-operator` image on a real node, under the chart's RBAC with the token the kubelet mounts,
two replicas and one leader on a Lease. Used by the e2e tests, the demo and the retraining benchmark.

The API mirrors devcluster.operator.OperatorProcess where the tests need it: `metrics()` and
`metric()` read the leader's /metrics at its pod IP (routed from the host to the node), `kill()` deletes
the leader pod at once as a node failure would (the standby takes the Lease), `logs()` returns what the
pods printed (for the RBAC-refusal check).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from devcluster import localcluster, realnode
from devcluster.operator import parse_metrics

CHART = localcluster.build.REPO / "charts" / "modelops"
RELEASE = "modelops"
NAMESPACE = "modelops-system"
LEASE = "modelops-operator"
LABEL = "app.kubernetes.io/name=modelops-operator"


class ChartOperator:
    def __init__(self, cluster: localcluster.Cluster, log_dir: Path, *, replicas: int = 2,
                 prometheus_allow: tuple[str, ...] = ()) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.replicas = replicas
        self.prometheus_allow = prometheus_allow
        self.metrics_port = 8080
        self.killed = ""

    def helm(self, *args: str) -> str:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "HELM_CACHE_HOME": str(self.log_dir),
               "HELM_CONFIG_HOME": str(self.log_dir), "HELM_DATA_HOME": str(self.log_dir)}
        proc = subprocess.run([str(self.cluster.bin / "helm"), *args], capture_output=True, text=True,
                              timeout=600, env=env)
        if proc.returncode != 0:
            raise localcluster.ClusterError(f"helm {args[0]} failed: {proc.stderr.strip()}\n{self._pod_trouble()}")
        return proc.stdout

    def _pod_trouble(self) -> str:
        return self.cluster.kubectl("get", "pods,events", "-n", NAMESPACE, check=False)[-3000:]

    def values(self) -> dict[str, Any]:
        placement = realnode.placement()
        return {"image": {"repository": "modelops-operator", "tag": "0.1.0", "pullPolicy": "Never"},
                "replicas": self.replicas, "prometheusAllow": list(self.prometheus_allow),
                "nodeSelector": placement["nodeSelector"], "tolerations": placement["tolerations"]}

    def install(self, timeout: float = 180) -> ChartOperator:
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
        values = self.log_dir / "operator-values.json"
        values.write_text(json.dumps(self.values()))
        # --take-ownership: the integration tests apply the same RBAC objects with kubectl.
        self.helm("upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", str(values),
                  "--take-ownership", "--skip-crds", "--wait", f"--timeout={int(timeout)}s")
        self.wait_leader(timeout)
        return self

    def uninstall(self) -> None:
        self.save_logs()
        self.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout=60s")
        self.cluster.kubectl("delete", "lease", LEASE, "-n", NAMESPACE, "--ignore-not-found", check=False)

    # ------------------------------------------------------------ observing

    def pods(self) -> list[dict[str, Any]]:
        out = self.cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", LABEL, "-o", "json", check=False)
        return list(json.loads(out).get("items", [])) if out.strip() else []

    def leader_name(self) -> str:
        """The leader's pod name (the Lease's holder identity is `<pod>_<pid>_<random>`)."""
        out = self.cluster.kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json", check=False)
        holder = str(json.loads(out).get("spec", {}).get("holderIdentity") or "") if out.strip() else ""
        return holder.split("_", 1)[0]

    def leader(self) -> dict[str, Any] | None:
        name = self.leader_name()
        return next((p for p in self.pods() if p["metadata"]["name"] == name
                     and p["metadata"].get("deletionTimestamp") is None and p["status"].get("podIP")), None)

    def wait_leader(self, timeout: float = 120, other_than: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.leader()
            if pod and pod["metadata"]["name"] != other_than and self._ready(pod):
                return pod
            time.sleep(0.3)
        raise AssertionError(f"no operator leader (other than {other_than!r}) within {timeout:.0f}s; "
                             f"lease holder {self.leader_name()!r}")

    @staticmethod
    def _ready(pod: dict[str, Any]) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))

    def metrics(self) -> str:
        pod = self.leader()
        if pod is None:
            raise OSError("no operator leader pod")
        url = f"http://{pod['status']['podIP']}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        return sum(v for lbl, v in parse_metrics(self.metrics()).get(name, []) if labels.items() <= lbl.items())

    def logs(self) -> dict[str, str]:
        out = {}
        for pod in self.pods():
            name = pod["metadata"]["name"]
            out[name] = self.cluster.kubectl("logs", "-n", NAMESPACE, name, "--all-containers", check=False)
        return out

    def save_logs(self) -> list[Path]:
        paths = []
        for name, text in self.logs().items():
            path = self.log_dir / f"{name}.log"
            path.write_text(text)
            paths.append(path)
        return paths

    # ------------------------------------------------------------ faults

    def metrics_target(self) -> str:
        """host:port of the leader's /metrics (for a Prometheus static job)."""
        pod = self.wait_leader()
        return f"{pod['status']['podIP']}:{self.metrics_port}"

    def start(self, timeout: float = 120) -> dict[str, Any]:
        """Wait until a leader other than the last one killed is ready (the Deployment replaces pods)."""
        return self.wait_leader(timeout, other_than=self.killed)

    def kill(self) -> str:
        """Delete the leader pod with no grace period (as a lost node); returns its name."""
        self.save_logs()
        name = self.leader_name()
        self.killed = name
        if name:
            self.cluster.kubectl("delete", "pod", name, "-n", NAMESPACE, "--grace-period=0", "--force",
                                 "--wait=false", check=False)
        return name
