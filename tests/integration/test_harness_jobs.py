"""The kubelet stand-in runs Job pods to completion and maps PersistentVolumeClaims, on the real control plane.

- A Job's pod runs as a real process; its exit code, the termination message it wrote (at most 4096
  bytes; the log's tail under FallbackToLogsOnError when it wrote none and failed) and the pod phase
  reach the API, and kube-controller-manager's Job controller marks the Job Complete or Failed.
- A claim written by one pod is read by another pod at another mount path; a read-only mount refuses
  writes; and a serving pod built by the operator's own builder fetches its model from a `pvc://` URI
  through the read-only mount, so product code reads the real mount path.
- The data half of the retraining loop: a server logs what it serves into a claim, labels arrive by
  request id, and a Job builds a training set from the claim and trains on it.

Retraining Jobs (issue 8) rely on all of this. Run with `.venv/bin/pytest tests/integration/test_harness_jobs.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec
from modelops.resources.builders import deployment

from devcluster import localcluster
from devcluster.netkubelet import KubeAPI, NetKubelet, create_claim, pod_placement, real_cidr
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

# Its own node, pool and podCIDR (test_harness.py's extra nodes use the same CIDR only inside one
# of its tests, and modules run one after the other).
POOL = "jobs"
NODE = "modelops-jobs-0"
CIDR = real_cidr(2)
MODELOPS = str(Path(sys.executable).parent / "modelops")


@pytest.fixture(scope="module")
def kubelet(cluster: localcluster.Cluster) -> Iterator[NetKubelet]:
    k = NetKubelet(cluster.kubeconfig, NODE, CIDR, pool=POOL, initial_backoff_s=2.0).start()
    yield k
    k.stop()


def _apply(cluster: localcluster.Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _get(cluster: localcluster.Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json")))


def _job(name: str, namespace: str, containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                **pod_placement(NODE, POOL), "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                "containers": containers, **pod}}}}


def _sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["/bin/sh", "-c", script], **extra}


def _job_condition(cluster: localcluster.Cluster, namespace: str, name: str) -> str | None:
    job = _get(cluster, "job", name, "-n", namespace)
    for cond in job.get("status", {}).get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return str(cond["type"])
    return None


def _job_pod(cluster: localcluster.Cluster, namespace: str, job: str) -> dict[str, Any]:
    pods = _get(cluster, "pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def _terminated(pod: dict[str, Any], container: str) -> dict[str, Any]:
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    return dict(status["state"]["terminated"])


def _pod(name: str, namespace: str, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]
         ) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {**pod_placement(NODE, POOL), "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                     "containers": containers, "volumes": volumes}}


def _phase(cluster: localcluster.Cluster, namespace: str, name: str) -> str:
    return str(_get(cluster, "pod", name, "-n", namespace).get("status", {}).get("phase", ""))


def test_a_job_completes_and_its_termination_message_reaches_the_pod_status(
        cluster: localcluster.Cluster, kubelet: NetKubelet, namespace: str) -> None:
    result = {"sha256": "ab" * 32, "rows": 150}
    _apply(cluster, _job("train", namespace, [
        _sh("train", f"echo training; printf '%s' '{json.dumps(result)}' > /dev/termination-log"),
        # A message longer than a kubelet keeps: cut at 4096 bytes.
        _sh("long", "head -c 5000 /dev/zero | tr '\\0' x > /dev/termination-log"),
    ]))
    wait_for(lambda: _job_condition(cluster, namespace, "train"), "the Job to finish", timeout=120)
    assert _job_condition(cluster, namespace, "train") == "Complete"
    pod = _job_pod(cluster, namespace, "train")
    assert pod["status"]["phase"] == "Succeeded"
    train = _terminated(pod, "train")
    assert train["exitCode"] == 0 and train["reason"] == "Completed"
    assert json.loads(train["message"]) == result
    assert _terminated(pod, "long")["message"] == "x" * 4096


def test_a_failed_job_reports_the_exit_code_and_the_log_tail(
        cluster: localcluster.Cluster, kubelet: NetKubelet, namespace: str) -> None:
    _apply(cluster, _job("broken", namespace, [
        _sh("train", "echo 'dataset has no target column y' >&2; exit 3",
            terminationMessagePolicy="FallbackToLogsOnError"),
        # Policy File (the default): no file written, so no message, even on failure.
        _sh("quiet", "echo 'not a message'; exit 4"),
    ]))
    wait_for(lambda: _job_condition(cluster, namespace, "broken"), "the Job to finish", timeout=120)
    assert _job_condition(cluster, namespace, "broken") == "Failed"
    pod = _job_pod(cluster, namespace, "broken")
    assert pod["status"]["phase"] == "Failed"
    train = _terminated(pod, "train")
    assert train["exitCode"] == 3 and train["reason"] == "Error"
    assert train["message"] == "dataset has no target column y"
    quiet = _terminated(pod, "quiet")
    assert quiet["exitCode"] == 4 and "message" not in quiet


def test_a_claim_written_by_one_pod_is_read_by_another_at_another_path_read_only(
        cluster: localcluster.Cluster, kubelet: NetKubelet, namespace: str) -> None:
    create_claim(KubeAPI(cluster.kubeconfig), namespace, "shared", kubelet.claims_root)
    claim = {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}
    _apply(cluster, _pod("writer", namespace, [
        _sh("write", "mkdir -p /mnt/pvc/shared/run && echo hello-from-writer > /mnt/pvc/shared/run/greeting",
            volumeMounts=[{"name": "data", "mountPath": "/mnt/pvc/shared"}])], [claim]))
    wait_for(lambda: _phase(cluster, namespace, "writer") in ("Succeeded", "Failed"), "the writer", timeout=120)
    assert _phase(cluster, namespace, "writer") == "Succeeded", kubelet.pod_log(namespace, "writer", "write")
    read_only = {"name": "data", "persistentVolumeClaim": {"claimName": "shared", "readOnly": True}}
    _apply(cluster, _pod("reader", namespace, [
        _sh("read", "{ cat /mnt/elsewhere/run/greeting; "
                    "if echo x > /mnt/elsewhere/run/intruder; then echo WROTE; else echo REFUSED; fi; "
                    "} > /dev/termination-log",
            volumeMounts=[{"name": "data", "mountPath": "/mnt/elsewhere"}])], [read_only]))
    wait_for(lambda: _phase(cluster, namespace, "reader") in ("Succeeded", "Failed"), "the reader", timeout=120)
    pod = _get(cluster, "pod", "reader", "-n", namespace)
    assert _terminated(pod, "read")["message"] == "hello-from-writer\nREFUSED\n"
    assert "Read-only file system" in kubelet.pod_log(namespace, "reader", "read")
    assert not (kubelet.claim_dir(namespace, "shared") / "run" / "intruder").exists()


def test_a_serving_pod_fetches_its_model_through_the_read_only_claim(
        cluster: localcluster.Cluster, kubelet: NetKubelet, namespace: str, tmp_path: Path) -> None:
    """The operator's own Deployment builder: pvc:// URI -> claim mounted read-only -> `modelops fetch`."""
    trained = tmp_path / "iris"
    subprocess.run([MODELOPS, "train", "--dataset", "iris", "--output", str(trained), "--format", "skops"],
                   check=True, capture_output=True, timeout=300)
    create_claim(KubeAPI(cluster.kubeconfig), namespace, "models", kubelet.claims_root)
    # A Job puts the model into the claim (read-write mount), as a retraining Job will.
    _apply(cluster, _job("publish", namespace, [{
        "name": "publish", "image": "modelops:dev", "command": ["modelops"],
        "args": ["fetch", f"file://{trained}/model.skops", "--output", "/mnt/pvc/models/iris/1"],
        "volumeMounts": [{"name": "store", "mountPath": "/mnt/pvc/models"}]}],
        volumes=[{"name": "store", "persistentVolumeClaim": {"claimName": "models"}}]))
    wait_for(lambda: _job_condition(cluster, namespace, "publish"), "the publishing Job", timeout=120)
    assert _job_condition(cluster, namespace, "publish") == "Complete"

    spec = ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "pvc://models/iris/1/model.skops", "format": "skops"},
        "serving": {"replicas": 1, "workers": 1, **pod_placement(NODE, POOL)}})
    dep = deployment("iris", namespace, "00000000-0000-0000-0000-000000000000", spec, "r1", 1)
    dep["metadata"].pop("ownerReferences")  # no ModelDeployment owns it here
    _apply(cluster, dep)

    def ready() -> bool:
        pods = _get(cluster, "pods", "-n", namespace, "-l", "modelops.dev/revision=r1")["items"]
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for p in pods for c in p.get("status", {}).get("conditions", []))

    wait_for(ready, "the serving pod to become Ready", timeout=180)
    pod = _get(cluster, "pods", "-n", namespace, "-l", "modelops.dev/revision=r1")["items"][0]
    log = kubelet.pod_log(namespace, pod["metadata"]["name"], "fetch-model")
    assert "fetched pvc://models/iris/1/model.skops" in log, log


def test_served_requests_and_labels_become_a_training_set_in_a_job(
        cluster: localcluster.Cluster, kubelet: NetKubelet, namespace: str, tmp_path: Path) -> None:
    """The data half of the retraining loop on real pods: a server logs what it serves into a claim,
    labels arrive by request id, and a Job builds the training set from the claim and trains on it,
    reporting the dataset's digest in its termination message."""
    import hashlib

    import requests
    from sklearn.datasets import load_iris

    trained = tmp_path / "iris"
    subprocess.run([MODELOPS, "train", "--dataset", "iris", "--output", str(trained), "--format", "skops"],
                   check=True, capture_output=True, timeout=300)
    create_claim(KubeAPI(cluster.kubeconfig), namespace, "store", kubelet.claims_root)
    store = {"name": "store", "persistentVolumeClaim": {"claimName": "store"}}
    mounts = [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}]
    claim_rw = {"name": "store", "mountPath": "/mnt/pvc/store"}
    pod = _pod("server", namespace, [{
        "name": "server", "image": "modelops:dev", "command": ["modelops"],
        "args": ["serve", "/models/current", "--host", "0.0.0.0", "--port", "8080", "--workers", "1",
                 "--name", "iris", "--log-requests-to", "pvc://store/iris/served", "--log-max-seconds", "0.5"],
        "env": [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/metrics"}],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1},
        "volumeMounts": [*mounts, claim_rw]}],
        [store, {"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}])
    pod["spec"]["restartPolicy"] = "Always"
    pod["spec"]["initContainers"] = [{
        "name": "fetch-model", "image": "modelops:dev", "command": ["modelops"],
        "args": ["fetch", f"file://{trained}/model.skops", "--output", "/models/current"], "volumeMounts": mounts}]
    _apply(cluster, pod)

    def ready_ip() -> str | None:
        status = _get(cluster, "pod", "server", "-n", namespace).get("status", {})
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        return status.get("podIP") if ok else None

    ip = wait_for(ready_ip, "the logging server to become Ready", timeout=180)
    session = requests.Session()
    session.trust_env = False  # no proxy may carry pod traffic
    iris = load_iris()
    labels = []
    for i in range(0, 150, 2):
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [iris.data[i].tolist()]}]}
        answer = session.post(f"http://{ip}:8080/v2/models/iris/infer", json=body, timeout=10).json()
        labels.append({"id": answer["id"], "label": int(iris.target[i])})
    joined = session.post(f"http://{ip}:8080/v2/models/iris/feedback", json={"feedback": labels}, timeout=10).json()
    assert joined == {"joined": len(labels), "unknown": 0, "expired": 0}
    served = kubelet.claim_dir(namespace, "store") / "iris" / "served"
    wait_for(lambda: list((served / "labels").glob("*.parquet")) if (served / "labels").is_dir() else None,
             "the label log in the claim", timeout=60)

    script = ("modelops dataset build --from pvc://store/iris/served --out pvc://store/datasets/d1.csv "
              "--target species > /dev/termination-log && "
              "modelops train --dataset /mnt/pvc/store/datasets/d1.csv --target species --output /mnt/pvc/store/iris/2")
    _apply(cluster, _job("retrain", namespace, [_sh("train", script, volumeMounts=[claim_rw],
                                                    terminationMessagePolicy="FallbackToLogsOnError")],
                         volumes=[store]))
    wait_for(lambda: _job_condition(cluster, namespace, "retrain"), "the retraining Job", timeout=300)
    job_pod = _job_pod(cluster, namespace, "retrain")
    message = _terminated(job_pod, "train").get("message", "")
    assert _job_condition(cluster, namespace, "retrain") == "Complete", message
    dataset = kubelet.claim_dir(namespace, "store") / "datasets" / "d1.csv"
    assert f"rows={len(labels)} sha256={hashlib.sha256(dataset.read_bytes()).hexdigest()}" in message
    assert (kubelet.claim_dir(namespace, "store") / "iris" / "2" / "model.sha256").exists()
