"""Every install path is accepted by the real API server (server-side dry run): the kustomize base and
overlays (cluster-wide, namespaced, kind), the rendered install.yaml, the Helm chart in each mode, the
monitoring objects (against the Prometheus Operator's own CRDs) and the samples; the restricted Pod
Security Standard has nothing to say about the operator's pods. The shipped RBAC, applied for real,
gives the operator's ServiceAccount what it needs and no more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devcluster import build, claims, localcluster
from devcluster.localcluster import Cluster
from tests.gitops import rbac, render

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SA = "system:serviceaccount:modelops-system:modelops-operator"
RESYNC_SECONDS = 3.0  # short, so the test sees a few resyncs (each re-queues every object) under this RBAC


def _namespaces(cluster: Cluster, *names: str) -> None:
    # A server-side dry run cannot create the namespace its other objects go into; make them for real.
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "manifests" / "base" / "namespace.yaml"))
    for name in names:
        if not cluster.kubectl("get", "namespace", name, "--ignore-not-found", "-o", "name").strip():
            cluster.kubectl("create", "namespace", name)


def _dry_run(cluster: Cluster, rendered: str) -> None:
    proc = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply",
                           "--server-side", "--dry-run=server", "-f", "-"],
                          input=rendered, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # No warning about the restricted Pod Security Standard for the operator's pods.
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("overlay", ["base", "overlays/kind", "overlays/namespaced"])
def test_kustomize_installs_apply_cleanly(cluster: Cluster, overlay: str) -> None:
    rendered = render.kustomize(overlay)
    assert "kind: CustomResourceDefinition" in rendered
    _namespaces(cluster, "models")
    _dry_run(cluster, rendered)


def test_install_yaml_applies_cleanly(cluster: Cluster) -> None:
    _namespaces(cluster)
    _dry_run(cluster, render.INSTALL_YAML.read_text())


@pytest.mark.parametrize("values", [[], ["watchNamespace=models"]], ids=["cluster-wide", "namespaced"])
def test_helm_chart_applies_cleanly(cluster: Cluster, values: list[str]) -> None:
    _namespaces(cluster, "models")
    _dry_run(cluster, render.helm_template(*values))


def _prometheus_operator_crds() -> list[Path]:
    """The monitoring.coreos.com CRDs from the released Prometheus Operator Go module (module cache)."""
    version = build.versions()["PROMETHEUS_OPERATOR_VERSION"]
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run(["go", "mod", "download", "-json",
                               f"github.com/prometheus-operator/prometheus-operator@v{version}"],
                              cwd=empty, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = Path(json.loads(proc.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    return [folder / f"monitoring.coreos.com_{kind}.yaml" for kind in ("servicemonitors", "podmonitors",
                                                                      "prometheusrules")]


def test_monitoring_objects_apply_cleanly(cluster: Cluster) -> None:
    for crd in _prometheus_operator_crds():
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    for name in ("servicemonitors", "podmonitors", "prometheusrules"):
        localcluster.wait_established(cluster, f"{name}.monitoring.coreos.com")
    _namespaces(cluster)
    _dry_run(cluster, render.kustomize("monitoring"))
    sets = [f"metrics.{k}.enabled=true" for k in ("serviceMonitor", "podMonitor", "prometheusRule", "grafanaDashboard")]
    _dry_run(cluster, render.helm_template(*sets))


def test_samples_apply_cleanly(cluster: Cluster) -> None:
    _namespaces(cluster, "models")
    for sample in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
        proc = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply",
                               "--dry-run=server", "-n", "models", "-f", str(sample)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{sample.name}: {proc.stderr}"


def _can(cluster: Cluster, verb: str, resource: str, namespace: str) -> bool:
    out = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, "--as", SA, check=False)
    return out.strip() == "yes"


def test_shipped_rbac_grants_what_the_operator_needs_and_no_more(cluster: Cluster) -> None:
    _namespaces(cluster, "models")
    rbac = [o for o in render.objects(render.kustomize("base"))
            if o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    cluster.kubectl("apply", "--server-side", "-f", "-", input="\n---\n".join(json.dumps(o) for o in rbac))
    try:
        for verb, resource in [("patch", "modeldeployments.modelops.dev"), ("update", "modeldeployments/status"),
                               ("create", "deployments.apps"), ("delete", "deployments.apps"),
                               ("create", "services"), ("watch", "pods"), ("create", "events"),
                               ("update", "httproutes.gateway.networking.k8s.io"), ("create", "jobs.batch"),
                               ("create", "poddisruptionbudgets.policy")]:
            assert _can(cluster, verb, resource, "models"), f"operator cannot {verb} {resource}"
        assert _can(cluster, "update", "leases.coordination.k8s.io", "modelops-system")
        for verb, resource, namespace in [("get", "secrets", "models"), ("delete", "services", "models"),
                                          ("delete", "modeldeployments.modelops.dev", "models"),
                                          ("update", "leases.coordination.k8s.io", "models"),
                                          ("patch", "httproutes.gateway.networking.k8s.io", "models"),
                                          ("delete", "pods", "models")]:
            assert not _can(cluster, verb, resource, namespace), f"operator may {verb} {resource} in {namespace}"
    finally:
        for obj in reversed(rbac):
            cluster.kubectl("delete", obj["kind"], obj["metadata"]["name"], "-n",
                            obj["metadata"].get("namespace", "default"), "--ignore-not-found")


def _run_operator(kubeconfig: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    # As the shipped Deployment runs it: the Lease in its own namespace (POD_NAMESPACE from the downward API).
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "modelops-system"}
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([sys.executable, "-m", "modelops.cli.main", "run", "--metrics-port", "0",
                             "--resync", str(RESYNC_SECONDS), *args], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serves_sample_with_shipped_rbac(cluster: Cluster, namespace: str, tmp_path: Path,
                                     watch_namespace: str | None) -> None:
    kubeconfig = rbac.operator_kubeconfig(cluster, tmp_path / "operator.kubeconfig", watch_namespace)
    # The token is the operator's own: it may not read Secrets, as an admin could.
    denied = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "secrets",
                             "-n", namespace], capture_output=True, text=True, timeout=60)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    log = tmp_path / "operator.log"
    args = ["--namespace", watch_namespace] if watch_namespace else []
    proc = _run_operator(kubeconfig, log, *args)
    started = time.monotonic()
    # The sample's model is on pvc://models/...: the claim must exist and be bound for pods to schedule.
    claims.provision(cluster, namespace, "models", tmp_path / "claims" / "models")
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "manifests" / "samples" / "iris.yaml"))
        done = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "wait",
                               "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=120s"],
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{done.stderr}\noperator log:\n{log.read_text()[-4000:]}"
        # A few resyncs (each reconciles every object again) must also have run with these permissions.
        time.sleep(max(0.0, 3 * RESYNC_SECONDS + 2 - (time.monotonic() - started)))
        assert proc.poll() is None, log.read_text()[-4000:]
        # Any refusal is a permission the install forgot (namespaced, nothing cluster-scoped is asked for).
        refused = [line for line in log.read_text().splitlines() if "forbidden" in line.lower()]
        assert not refused, "\n".join(refused[:5])
    finally:
        _stop(proc)
        cluster.kubectl("delete", "mdep", "iris", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "pv", "-l", f"modelops.dev/claim-namespace={namespace}", "--wait=false",
                        check=False)


def test_operator_runs_with_the_shipped_cluster_wide_rbac(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    try:
        _serves_sample_with_shipped_rbac(cluster, namespace, tmp_path, None)
    finally:
        rbac.remove_rbac(cluster, rbac.rbac_objects())


def test_operator_runs_with_the_shipped_namespaced_rbac(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    objs = rbac.rbac_objects(namespace)
    try:
        # Only the namespaced objects: no cluster-wide grant left over from another test may help.
        for kind in ("ClusterRoleBinding", "ClusterRole"):
            cluster.kubectl("delete", kind, "modelops-operator", "--ignore-not-found", check=False)
        _serves_sample_with_shipped_rbac(cluster, namespace, tmp_path, namespace)
    finally:
        rbac.remove_rbac(cluster, objs)
