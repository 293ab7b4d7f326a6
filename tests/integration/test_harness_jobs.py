"""Job pods and PersistentVolumeClaims on the real node (a real kubelet and containerd), from the
project's images, under the restricted Pod Security Standard.

- A Job's pod runs to completion; its exit code, the termination message it wrote (at most 4096
  bytes; the log's tail under FallbackToLogsOnError when it wrote none and failed) and the pod phase
  reach the API, and kube-controller-manager's Job controller marks the Job Complete or Failed.
- A claim written by one pod is read by another pod at another mount path; a read-only mount refuses
  writes; and a serving pod built by the operator's own builder fetches its model from a `pvc://` URI
  through the read-only mount, a model a Job wrote into the claim as the pods' user.
- The data half of the retraining loop: a server logs what it serves into a claim, labels arrive by
  request id, and a Job builds a training set from the claim and trains on it.

Retraining Jobs rely on all of this. Run with `.venv/bin/pytest tests/integration/test_harness_jobs.py`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec
from modelops.resources.builders import deployment

from devcluster import claims, localcluster, realnode
from devcluster.localcluster import Cluster
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

MODELOPS = str(Path(sys.executable).parent / "modelops")
SERVER_IMAGE = "modelops-server:0.1.0"
TRAINER_IMAGE = "modelops-trainer:0.1.0"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
# What the restricted standard asks of every pod and container (as the operator's builders set them).
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}


@pytest.fixture(scope="module")
def node(cluster: Cluster) -> realnode.NodeSet:
    if not localcluster.image_archives():
        pytest.fail("no image archives in dist/: run `make image` (make test does)")
    wait_for(lambda: localcluster.real_nodes_ready(cluster, 1), "a real node Ready", timeout=90)
    return localcluster.node_set(cluster)


@pytest.fixture
def namespace(cluster: Cluster, node: realnode.NodeSet, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard."""
    name = f"j-{request.node.name.lower().replace('_', '-')[5:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, RESTRICTED)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, "-o", "name", check=False),
             "the namespace's default service account", timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    claims.release(cluster, name)


def _apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _get(cluster: Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json")))


def _pod_spec(containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {**realnode.placement(), "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False, "securityContext": POD_SECURITY,
            "containers": containers, **pod}


def _job(name: str, namespace: str, containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": _pod_spec(containers, **pod)}}}


def _container(name: str, command: list[str], image: str = SERVER_IMAGE, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "Never", "command": command,
            "securityContext": CONTAINER_SECURITY, **extra}


def _sh(name: str, script: str, image: str = SERVER_IMAGE, **extra: Any) -> dict[str, Any]:
    return _container(name, ["/bin/sh", "-c", script], image, **extra)


def _job_condition(cluster: Cluster, namespace: str, name: str) -> str | None:
    job = _get(cluster, "job", name, "-n", namespace)
    for cond in job.get("status", {}).get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return str(cond["type"])
    return None


def _job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    pods = _get(cluster, "pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def _terminated(pod: dict[str, Any], container: str) -> dict[str, Any]:
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    return dict(status["state"]["terminated"])


def _pod(name: str, namespace: str, containers: list[dict[str, Any]], volumes: list[dict[str, Any]]
         ) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": _pod_spec(containers, volumes=volumes)}


def _phase(cluster: Cluster, namespace: str, name: str) -> str:
    return str(_get(cluster, "pod", name, "-n", namespace).get("status", {}).get("phase", ""))


def _logs(cluster: Cluster, namespace: str, pod: str, container: str) -> str:
    return cluster.kubectl("logs", pod, "-n", namespace, "-c", container, check=False)


def test_a_job_completes_and_its_termination_message_reaches_the_pod_status(
        cluster: Cluster, namespace: str) -> None:
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


def test_a_failed_job_reports_the_exit_code_and_the_log_tail(cluster: Cluster, namespace: str) -> None:
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
    assert train["message"].strip() == "dataset has no target column y"
    quiet = _terminated(pod, "quiet")
    assert quiet["exitCode"] == 4 and "message" not in quiet


def test_a_claim_written_by_one_pod_is_read_by_another_at_another_path_read_only(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    shared = claims.provision(cluster, namespace, "shared", tmp_path / "shared")
    claim = {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}
    _apply(cluster, _pod("writer", namespace, [
        _sh("write", "mkdir -p /mnt/pvc/shared/run && echo hello-from-writer > /mnt/pvc/shared/run/greeting",
            volumeMounts=[{"name": "data", "mountPath": "/mnt/pvc/shared"}])], [claim]))
    wait_for(lambda: _phase(cluster, namespace, "writer") in ("Succeeded", "Failed"), "the writer", timeout=120)
    assert _phase(cluster, namespace, "writer") == "Succeeded", _logs(cluster, namespace, "writer", "write")
    # Written as the pods' user, in the volume's group.
    greeting = shared / "run" / "greeting"
    assert greeting.stat().st_uid == 65532 and greeting.stat().st_gid == 65532
    read_only = {"name": "data", "persistentVolumeClaim": {"claimName": "shared", "readOnly": True}}
    _apply(cluster, _pod("reader", namespace, [
        _sh("read", "{ cat /mnt/elsewhere/run/greeting; "
                    "if echo x > /mnt/elsewhere/run/intruder; then echo WROTE; else echo REFUSED; fi; "
                    "} > /dev/termination-log",
            volumeMounts=[{"name": "data", "mountPath": "/mnt/elsewhere"}])], [read_only]))
    wait_for(lambda: _phase(cluster, namespace, "reader") in ("Succeeded", "Failed"), "the reader", timeout=120)
    pod = _get(cluster, "pod", "reader", "-n", namespace)
    assert _terminated(pod, "read")["message"] == "hello-from-writer\nREFUSED\n"
    assert "Read-only file system" in _logs(cluster, namespace, "reader", "read")
    assert not (shared / "run" / "intruder").exists()


def test_a_serving_pod_fetches_its_model_through_the_read_only_claim(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The operator's own Deployment builder: pvc:// URI -> claim mounted read-only -> `modelops fetch`."""
    store = claims.provision(cluster, namespace, "models", tmp_path / "models")
    # A Job trains the model into the claim (read-write mount), as a retraining Job does.
    _apply(cluster, _job("publish", namespace, [_container(
        "publish", ["modelops", "train", "--dataset", "iris", "--output", "/mnt/pvc/models/iris/1",
                    "--format", "skops"], TRAINER_IMAGE, terminationMessagePolicy="FallbackToLogsOnError",
        volumeMounts=[{"name": "store", "mountPath": "/mnt/pvc/models"},
                      {"name": "tmp", "mountPath": "/tmp"}])],
        volumes=[{"name": "store", "persistentVolumeClaim": {"claimName": "models"}},
                 {"name": "tmp", "emptyDir": {}}]))
    wait_for(lambda: _job_condition(cluster, namespace, "publish"), "the publishing Job", timeout=180)
    assert _job_condition(cluster, namespace, "publish") == "Complete", _terminated(
        _job_pod(cluster, namespace, "publish"), "publish").get("message")
    sha256 = (store / "iris" / "1" / "model.sha256").read_text().split()[0]

    spec = ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "pvc://models/iris/1/model.skops", "format": "skops",
                  "sha256": sha256},
        "serving": {"replicas": 1, "workers": 1, "image": SERVER_IMAGE, **realnode.placement()}})
    dep = deployment("iris", namespace, "00000000-0000-0000-0000-000000000000", spec, "r1", 1)
    dep["metadata"].pop("ownerReferences")  # no ModelDeployment owns it here
    _apply(cluster, dep)

    def ready() -> bool:
        pods = _get(cluster, "pods", "-n", namespace, "-l", "modelops.dev/revision=r1")["items"]
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for p in pods for c in p.get("status", {}).get("conditions", []))

    wait_for(ready, "the serving pod to become Ready", timeout=180)
    pod = _get(cluster, "pods", "-n", namespace, "-l", "modelops.dev/revision=r1")["items"][0]
    log = _logs(cluster, namespace, pod["metadata"]["name"], "fetch-model")
    assert "fetched pvc://models/iris/1/model.skops" in log, log


def test_served_requests_and_labels_become_a_training_set_in_a_job(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The data half of the retraining loop on real pods: a server logs what it serves into a claim,
    labels arrive by request id, and a Job builds the training set from the claim and trains on it,
    reporting the dataset's digest in its termination message."""
    import requests
    from sklearn.datasets import load_iris

    root = tmp_path / "store"
    subprocess.run([MODELOPS, "train", "--dataset", "iris", "--output", str(root / "models" / "iris"),
                    "--format", "skops"], check=True, capture_output=True, timeout=300)
    store_dir = claims.provision(cluster, namespace, "store", root)
    store = {"name": "store", "persistentVolumeClaim": {"claimName": "store"}}
    mounts = [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}]
    claim_rw = {"name": "store", "mountPath": "/mnt/pvc/store"}
    pod = _pod("server", namespace, [_container(
        "server", ["modelops"],
        args=["serve", "/models/current", "--host", "0.0.0.0", "--port", "8080", "--workers", "1",
              "--name", "iris", "--log-requests-to", "pvc://store/iris/served", "--log-max-seconds", "0.5"],
        env=[{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/metrics"}],
        ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        readinessProbe={"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1},
        volumeMounts=[*mounts, claim_rw])],
        [store, {"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}])
    pod["spec"]["restartPolicy"] = "Always"
    pod["spec"]["initContainers"] = [_container(
        "fetch-model", ["modelops"],
        args=["fetch", "pvc://store/models/iris/model.skops", "--output", "/models/current"],
        volumeMounts=[*mounts, {**claim_rw, "readOnly": True}])]
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
    served = store_dir / "iris" / "served"
    wait_for(lambda: list((served / "labels").glob("*.parquet")) if (served / "labels").is_dir() else None,
             "the label log in the claim", timeout=60)

    script = ("modelops dataset build --from pvc://store/iris/served --out pvc://store/datasets/d1.csv "
              "--target species > /dev/termination-log && "
              "modelops train --dataset /mnt/pvc/store/datasets/d1.csv --target species --output /mnt/pvc/store/iris/2")
    _apply(cluster, _job("retrain", namespace, [_sh("train", script, TRAINER_IMAGE,
                                                    volumeMounts=[claim_rw, {"name": "tmp", "mountPath": "/tmp"}],
                                                    terminationMessagePolicy="FallbackToLogsOnError")],
                         volumes=[store, {"name": "tmp", "emptyDir": {}}]))
    wait_for(lambda: _job_condition(cluster, namespace, "retrain"), "the retraining Job", timeout=300)
    job_pod = _job_pod(cluster, namespace, "retrain")
    message = _terminated(job_pod, "train").get("message", "")
    assert _job_condition(cluster, namespace, "retrain") == "Complete", message
    dataset = store_dir / "datasets" / "d1.csv"
    assert f"rows={len(labels)} sha256={hashlib.sha256(dataset.read_bytes()).hexdigest()}" in message
    assert (store_dir / "iris" / "2" / "model.sha256").exists()
