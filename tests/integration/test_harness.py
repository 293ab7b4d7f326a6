"""Tests of the end-to-end harness on the real node: serving pods exactly as the operator's builders
make them (`modelops fetch` then `modelops serve`, from the server image, as 65532 on a read-only root,
the model on a read-only claim) run under a real kubelet and containerd; readiness follows the probe
the kubelet runs; EndpointSlices list the pods; the load generator reaches them (and logs what a
raising model answers); Prometheus scrapes them (and comes back after a restart); a failed fetch
leaves the pod unready with the reason in its status; scaling down under load loses no request; and
a restarted kubelet leaves its running pods alone.

The e2e rollout tests rely on all of this; when they fail, these tests say whether the harness or
the operator is at fault. Run with `.venv/bin/pytest tests/integration/test_harness.py`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec
from modelops.resources.builders import deployment, service

from devcluster import claims, localcluster, realnode
from devcluster.localcluster import Cluster
from devcluster.prometheus import Prometheus
from devcluster.traffic import LoadGenerator
from tests import models
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

MODELOPS = str(Path(sys.executable).parent / "modelops")
SERVER_IMAGE = "modelops-server:0.1.0"
# The server image plus tests/models (the deliberately failing models); `make image` builds it.
TESTING_IMAGE = "modelops-server-testing:0.1.0"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
UID = "00000000-0000-0000-0000-000000000000"  # no ModelDeployment owns these objects


@pytest.fixture(scope="module")
def node(cluster: Cluster) -> realnode.NodeSet:
    if not localcluster.image_archives():
        pytest.fail("no image archives in dist/: run `make image` (make test does)")
    wait_for(lambda: localcluster.real_nodes_ready(cluster, 1), "a real node Ready", timeout=90)
    return localcluster.node_set(cluster)


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained iris models, the directory every test namespace binds as claim `models`:
    `iris/` (good) and `fails/` (raises on inputs above 8, the test models' package)."""
    root = tmp_path_factory.mktemp("models")
    subprocess.run([MODELOPS, "train", "--dataset", "iris", "--output", str(root / "iris")], check=True,
                   capture_output=True, timeout=300)
    subprocess.run(models.train_command("--dataset", "iris", "--output", str(root / "fails"), "--fail-above", "8"),
                   check=True, capture_output=True, timeout=300)
    return claims.prepare(root)


@pytest.fixture
def namespace(cluster: Cluster, node: realnode.NodeSet, model_store: Path,
              request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard, with the `models` claim."""
    name = f"h-{request.node.name.lower().replace('_', '-')[5:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, RESTRICTED)
    claims.provision(cluster, name, "models", model_store)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, "-o", "name", check=False),
             "the namespace's default service account", timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    claims.release(cluster, name)


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, node: realnode.NodeSet) -> Iterator[Prometheus]:
    with socket.socket() as sock:  # a free port, so parallel runs never share a Prometheus
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prom = Prometheus(cluster.kubeconfig, port).start()
    yield prom
    prom.stop()
    prom.remove_data()


def _spec(model: str, replicas: int, sha256: str | None = None, image: str = SERVER_IMAGE) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": f"pvc://models/{model}/model.joblib",
                  **({"sha256": sha256} if sha256 else {})},
        "serving": {"replicas": replicas, "workers": 1, "image": image, **realnode.placement()}})


def _serve(cluster: Cluster, namespace: str, name: str, model_store: Path, *, model: str = "iris",
           revision: str = "r1", replicas: int = 2, sha256: str | None = None, image: str = SERVER_IMAGE,
           with_service: bool = True) -> dict[str, Any]:
    """The operator's own Deployment (and Service) for the model, unowned; returns the Deployment."""
    sha256 = sha256 or (model_store / model / "model.sha256").read_text().split()[0]
    spec = _spec(model, replicas, sha256, image)
    objs = [deployment(name, namespace, UID, spec, revision, replicas)]
    if with_service:
        objs.append(service(name, namespace, UID, spec))
    for obj in objs:
        obj["metadata"].pop("ownerReferences")
    _apply(cluster, *objs)
    return objs[0]


def _apply(cluster: Cluster, *objs: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def _pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}", "-o", "json")
    return list(json.loads(out)["items"])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _ready_endpoints(cluster: Cluster, namespace: str, service_name: str) -> set[str]:
    slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", namespace, "-l",
                                        f"kubernetes.io/service-name={service_name}", "-o", "json"))["items"]
    return {addr for s in slices for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready", True) for addr in ep["addresses"]}


def _containers(nodes: realnode.NodeSet, namespace: str) -> list[str]:
    """The node's containerd containers of pods in `namespace`."""
    out = subprocess.run(nodes.node(0).ctr("containers", "ls", "-q",
                                           f"labels.\"io.kubernetes.pod.namespace\"=={namespace}"),
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _value(prom: Prometheus, promql: str) -> float:
    result = prom.query(promql)
    return float(result[0]["value"][1]) if result else 0.0


def _http_status(ip: str, path: str) -> int:
    try:
        conn = http.client.HTTPConnection(ip, 8080, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


def _two_ready(cluster: Cluster, namespace: str, name: str, count: int = 2, timeout: float = 180
               ) -> list[dict[str, Any]]:
    return wait_for(lambda: (lambda ps: ps if len(ps) == count and all(map(_ready, ps)) else None)(
        _pods(cluster, namespace, name)), f"{count} Ready serving pods", timeout=timeout)


def test_pods_serve_and_take_traffic(cluster: Cluster, namespace: str, node: realnode.NodeSet,
                                     prometheus: Prometheus, model_store: Path) -> None:
    _serve(cluster, namespace, "iris", model_store)
    pods = _two_ready(cluster, namespace, "iris")
    ips = {p["status"]["podIP"] for p in pods}
    for pod in pods:
        assert pod["spec"]["nodeName"] == realnode.node_name(0)
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(realnode.pod_cidr(0))
        fetch, server = pod["status"]["initContainerStatuses"][0], pod["status"]["containerStatuses"][0]
        assert fetch["state"]["terminated"]["exitCode"] == 0
        assert server["ready"] and "running" in server["state"] and server["restartCount"] == 0
    log = cluster.kubectl("logs", pods[0]["metadata"]["name"], "-n", namespace, "-c", "fetch-model")
    assert "pvc://models/iris/model.joblib" in log, log

    assert wait_for(lambda: _ready_endpoints(cluster, namespace, "iris") == ips or None,
                    "the Service's EndpointSlices to list both pods as ready", timeout=60)
    gen = LoadGenerator(cluster.kubeconfig, namespace, "iris", "iris", rate_per_s=50, duration_s=20,
                        max_requests=200).start()
    results = gen.wait(timeout=120)
    assert results.sent == 200, gen.describe()
    assert results.ok == 200, gen.describe()
    assert set(results.by_ip) == ips, gen.describe()  # a random endpoint per request reaches both
    assert results.by_revision["r1"].ok == 200

    # Prometheus finds the pods through the API server and scrapes them at their IPs.
    query = f'sum(modelops_requests_total{{namespace="{namespace}", pod_revision="r1", code="200"}})'
    wait_for(lambda: _value(prometheus, query) >= 200, "Prometheus to count the 200 requests", timeout=60)
    targets = [t for t in prometheus.targets() if t["labels"].get("namespace") == namespace]
    assert {t["labels"]["pod"] for t in targets} == {p["metadata"]["name"] for p in pods}
    assert all(t["labels"]["pod_revision"] == "r1" for t in targets)
    # Stopped and started again on the same port, it scrapes again.
    prometheus.stop()
    assert not prometheus.ready()
    prometheus.start()
    wait_for(lambda: _value(prometheus, f"count(up{{namespace=\"{namespace}\"}} == 1)") == 2,
             "Prometheus to scrape both pods again after its restart", timeout=60)

    # Deleting the Deployment stops the containers on the node.
    assert _containers(node, namespace)
    cluster.kubectl("delete", "deployment", "-n", namespace, "-l", "app.kubernetes.io/instance=iris")
    wait_for(lambda: not _pods(cluster, namespace, "iris"), "the pods to be gone from the API", timeout=90)
    wait_for(lambda: not _containers(node, namespace), "the node's containers of the pods to be removed", timeout=60)


def test_readiness_follows_the_probe(cluster: Cluster, namespace: str, model_store: Path) -> None:
    # The operator's pod, its readiness probe pointed where the server answers 404: the kubelet runs
    # the server (Running) but never marks it Ready, so it is never an endpoint.
    dep = deployment("never-ready", namespace, UID, _spec("iris", 1, (model_store / "iris" / "model.sha256")
                                                          .read_text().split()[0]), "r1", 1)
    svc = service("never-ready", namespace, UID, _spec("iris", 1))
    for obj in (dep, svc):
        obj["metadata"].pop("ownerReferences")
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/nowhere"
    _apply(cluster, dep, svc)
    pod = wait_for(lambda: next((p for p in _pods(cluster, namespace, "never-ready")
                                 if p["status"].get("phase") == "Running"), None), "a Running pod", timeout=120)
    ip = pod["status"]["podIP"]
    # The server itself is up: its own readiness endpoint answers at the pod IP.
    wait_for(lambda: _http_status(ip, "/v2/health/ready") == 200, "the server to answer", timeout=60)
    gen = LoadGenerator(cluster.kubeconfig, namespace, "never-ready", "iris", rate_per_s=5, duration_s=5)
    results = gen.start().wait(timeout=30)
    pod = _pods(cluster, namespace, "never-ready")[0]
    assert not _ready(pod)
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    assert pod["status"]["containerStatuses"][0]["started"] is True  # the startup probe passed
    assert ip not in _ready_endpoints(cluster, namespace, "never-ready")
    assert results.ok == 0 and results.no_endpoint == results.sent > 0


def test_failed_fetch_keeps_the_pod_unready_with_the_reason(cluster: Cluster, namespace: str,
                                                            model_store: Path) -> None:
    _serve(cluster, namespace, "bad-sha", model_store, sha256="0" * 64, replicas=1, with_service=False)

    def failed_init() -> dict[str, Any] | None:
        for pod in _pods(cluster, namespace, "bad-sha"):
            for status in pod["status"].get("initContainerStatuses") or []:
                term = status["state"].get("terminated") or status["lastState"].get("terminated")
                if term and term["exitCode"] != 0:
                    return pod
        return None

    pod = wait_for(failed_init, "the fetch-model init container to fail", timeout=120)
    status = pod["status"]["initContainerStatuses"][0]
    term = status["state"].get("terminated") or status["lastState"]["terminated"]
    assert term["reason"] == "Error"
    assert "sha256 mismatch" in term["message"], term
    assert pod["status"]["phase"] == "Pending"
    assert not _ready(pod)
    initialized = next(c for c in pod["status"]["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False"
    assert "waiting" in pod["status"]["containerStatuses"][0]["state"]  # the server never started
    # The kubelet retries with back-off, and the reason stays readable.
    pod = wait_for(lambda: (lambda p: p if p and p["status"]["initContainerStatuses"][0]["restartCount"] >= 1
                            else None)(failed_init()), "a retried fetch", timeout=90)
    assert "sha256 mismatch" in json.dumps(pod["status"]["initContainerStatuses"][0])
    assert not _ready(pod)


def test_load_generator_logs_the_failures_of_a_model_that_raises(cluster: Cluster, namespace: str,
                                                                 model_store: Path) -> None:
    # The failing model needs the test models' package: the testing image has it.
    _serve(cluster, namespace, "fails", model_store, model="fails", revision="bad", replicas=1, image=TESTING_IMAGE)
    wait_for(lambda: _ready_endpoints(cluster, namespace, "fails"), "a ready endpoint", timeout=120)
    gen = LoadGenerator(cluster.kubeconfig, namespace, "fails", "iris", rate_per_s=40, duration_s=10,
                        max_requests=80, large_fraction=0.5, large_value=9.0)
    results = gen.start().wait(timeout=60)
    assert results.sent == 80, gen.describe()
    assert results.ok > 0 and results.failed > 0, gen.describe()
    assert results.by_revision["bad"].total == 80
    assert len(results.failures) == results.failed
    assert all(f.revision == "bad" and f.status >= 400 and f.body for f in results.failures), gen.describe()


def test_scaling_down_under_load_loses_no_request(cluster: Cluster, namespace: str, model_store: Path) -> None:
    # The removed pod leaves the EndpointSlice at once (terminating), keeps serving through its
    # preStop sleep while the load generator notices, then drains on SIGTERM: no request fails.
    _serve(cluster, namespace, "shrink", model_store)
    wait_for(lambda: len(_ready_endpoints(cluster, namespace, "shrink")) == 2, "two ready endpoints", timeout=180)
    gen = LoadGenerator(cluster.kubeconfig, namespace, "shrink", "iris", rate_per_s=40, duration_s=15).start()
    wait_for(lambda: gen.results().ok >= 40, "traffic to flow", timeout=30)
    cluster.kubectl("scale", "deployment", "-n", namespace, "-l", "app.kubernetes.io/instance=shrink",
                    "--replicas=1")
    wait_for(lambda: len(_pods(cluster, namespace, "shrink")) == 1, "one pod to be removed", timeout=90)
    results = gen.wait(timeout=60)
    assert results.failed == 0, gen.describe()
    assert len([ip for ip, tally in results.by_ip.items() if tally.ok]) == 2, gen.describe()


def test_a_restarted_kubelet_leaves_its_running_pods_serving(cluster: Cluster, namespace: str,
                                                             node: realnode.NodeSet, model_store: Path) -> None:
    _serve(cluster, namespace, "steady", model_store, replicas=1)
    pod = _two_ready(cluster, namespace, "steady", count=1)[0]
    ip, uid = pod["status"]["podIP"], pod["metadata"]["uid"]
    node.stop_component(node.node(0), "kubelet")
    try:
        # With no kubelet the containers run on: the pod still answers at its address.
        assert _http_status(ip, "/v2/health/ready") == 200
    finally:
        node.start_kubelet(node.node(0))
    wait_for(lambda: localcluster.real_nodes_ready(cluster, 1), "the node Ready again", timeout=90)
    time.sleep(5)  # a few probe periods of the new kubelet
    pod = wait_for(lambda: next((p for p in _pods(cluster, namespace, "steady") if _ready(p)), None),
                   "the pod Ready under the new kubelet", timeout=60)
    # The same pod, the same address, the server never restarted.
    assert (pod["metadata"]["uid"], pod["status"]["podIP"]) == (uid, ip)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert _http_status(ip, "/v2/health/ready") == 200
