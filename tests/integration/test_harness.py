"""Tests of the end-to-end harness itself, on the real control plane: the netkubelet runs pods for real
(network namespaces owning the pod IPs, `modelops fetch` then `modelops serve`), readiness follows the
probe, EndpointSlices list the pods, the load generator reaches them, Prometheus scrapes them (and
comes back after a restart), a failed fetch leaves the pod unready with the reason in its status, and
deleting the pods stops the processes and removes the namespaces.

The e2e rollout tests (issue 4) rely on all of this; when they fail, these tests say whether the
harness or the operator is at fault. Run with `.venv/bin/pytest tests/integration/test_harness.py`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster import localcluster
from devcluster.netkubelet import NetKubelet, list_netns, netns_pids, netns_prefix, pod_placement, real_cidr
from devcluster.prometheus import Prometheus
from devcluster.traffic import LoadGenerator
from tests import models
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

# Its own nodes, pool and podCIDRs, so an e2e run's netkubelet (modelops-real-0, pool "true",
# real_cidr(0)) can run at the same time: neither takes the other's pods or addresses.
POOL = "harness"
NODE = "modelops-harness-0"
CIDR = real_cidr(1)
MODELOPS = str(Path(sys.executable).parent / "modelops")


@pytest.fixture(scope="module")
def kubelet(cluster: localcluster.Cluster) -> Iterator[NetKubelet]:
    k = NetKubelet(cluster.kubeconfig, NODE, CIDR, pool=POOL, initial_backoff_s=2.0).start()
    yield k
    k.stop()


@pytest.fixture(scope="module")
def prometheus(cluster: localcluster.Cluster) -> Iterator[Prometheus]:
    with socket.socket() as sock:  # a free port, so parallel runs never share a Prometheus
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prom = Prometheus(cluster.kubeconfig, port).start()
    yield prom
    prom.stop()
    prom.remove_data()


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A trained iris model: its file:// URI and sha256."""
    out = tmp_path_factory.mktemp("models") / "iris"
    subprocess.run([MODELOPS, "train", "--dataset", "iris", "--output", str(out)], check=True,
                   capture_output=True, timeout=300)
    return f"file://{out / 'model.joblib'}", (out / "model.sha256").read_text().strip()


def _deployment(name: str, namespace: str, uri: str, sha256: str, revision: str, replicas: int = 2,
                ready_path: str = "/v2/health/ready") -> dict[str, Any]:
    """A Deployment shaped like the operator's (modelops/resources/builders.py), pinned to our node."""
    mounts = [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}]
    labels = {"app.kubernetes.io/name": "modelops-server", "app.kubernetes.io/instance": name,
              "modelops.dev/revision": revision}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                                             "prometheus.io/path": "/metrics"}},
                "spec": {
                    **pod_placement(NODE, POOL),
                    "terminationGracePeriodSeconds": 10,
                    "initContainers": [{
                        "name": "fetch-model", "image": "modelops:dev", "command": ["modelops"],
                        "args": ["fetch", uri, "--output", "/models/current", "--sha256", sha256],
                        "terminationMessagePolicy": "FallbackToLogsOnError",  # as the operator's
                        "volumeMounts": mounts}],
                    "containers": [{
                        "name": "server", "image": "modelops:dev", "command": ["modelops"],
                        "args": ["serve", "/models/current", "--host", "0.0.0.0", "--port", "8080",
                                 "--name", "iris", "--revision", revision, "--workers", "1"],
                        "env": [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/metrics"}],
                        # As the operator's pods: serve on while endpoint removal spreads, then drain.
                        "lifecycle": {"preStop": {"sleep": {"seconds": 3}}},
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": ready_path, "port": "http"},
                                           "periodSeconds": 2, "failureThreshold": 2},
                        "volumeMounts": mounts}],
                    "volumes": [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app.kubernetes.io/instance": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def _apply(cluster: localcluster.Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def _pods(cluster: localcluster.Cluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))["items"])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _ready_endpoints(cluster: localcluster.Cluster, namespace: str, service: str) -> set[str]:
    slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", namespace, "-l",
                                        f"kubernetes.io/service-name={service}", "-o", "json"))["items"]
    return {addr for s in slices for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready", True) for addr in ep["addresses"]}


def _routes() -> str:
    return subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout


def _value(prom: Prometheus, promql: str) -> float:
    result = prom.query(promql)
    return float(result[0]["value"][1]) if result else 0.0


def test_pods_serve_in_their_namespaces_and_take_traffic(
        cluster: localcluster.Cluster, namespace: str, kubelet: NetKubelet, prometheus: Prometheus,
        iris_model: tuple[str, str]) -> None:
    uri, sha256 = iris_model
    _apply(cluster, _service("iris", namespace))
    _apply(cluster, _deployment("iris", namespace, uri, sha256, "r1"))
    selector = "app.kubernetes.io/instance=iris"

    pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 and all(map(_ready, ps)) else None)(
        _pods(cluster, namespace, selector)), "two Ready serving pods", timeout=120)
    ips = {p["status"]["podIP"] for p in pods}
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE
        ip = pod["status"]["podIP"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(CIDR), ip
        netns = kubelet.pod_netns(namespace, pod["metadata"]["name"])
        assert netns is not None and netns in list_netns()
        # The pod IP lives inside the pod's namespace, and the root namespace reaches it by a /32.
        inside = subprocess.run(["ip", "-n", netns, "-o", "addr", "show", "eth0"], capture_output=True,
                                text=True, check=True).stdout
        assert f"{ip}/32" in inside
        assert any(line.startswith(f"{ip} dev mo") for line in _routes().splitlines())
        fetch, server = pod["status"]["initContainerStatuses"][0], pod["status"]["containerStatuses"][0]
        assert fetch["state"]["terminated"]["exitCode"] == 0
        assert server["ready"] and "running" in server["state"]
    # The catch-all stays: nothing else in the pod range is routable.
    assert "unreachable 10.244.0.0/16" in _routes()

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

    # Stopped and started again on the same port, it scrapes again (kept data and fresh samples).
    prometheus.stop()
    assert not prometheus.ready()
    prometheus.start()
    wait_for(lambda: _value(prometheus, f"count(up{{namespace=\"{namespace}\"}} == 1)") == 2,
             "Prometheus to scrape both pods again after its restart", timeout=60)

    # Deleting the Deployment stops the processes and removes the namespaces and routes.
    netns = {kubelet.pod_netns(namespace, p["metadata"]["name"]) for p in pods}
    pids = [pid for ns in netns if ns for pid in netns_pids(ns)]
    assert pids
    cluster.kubectl("delete", "deployment", "iris", "-n", namespace)
    wait_for(lambda: not _pods(cluster, namespace, selector), "the pods to be gone from the API", timeout=60)
    wait_for(lambda: not (netns & set(list_netns())), "the pods' network namespaces to be removed", timeout=30)
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")], "processes left running"
    assert not [ip for ip in ips if ip in _routes()]


def test_readiness_follows_the_probe(cluster: localcluster.Cluster, namespace: str, kubelet: NetKubelet,
                                     iris_model: tuple[str, str]) -> None:
    uri, sha256 = iris_model
    _apply(cluster, _service("never-ready", namespace))
    # The server runs and answers, but not at the probed path: Running, never Ready, never an endpoint.
    _apply(cluster, _deployment("never-ready", namespace, uri, sha256, "r1", replicas=1, ready_path="/nowhere"))
    pod = wait_for(lambda: next((p for p in _pods(cluster, namespace, "app.kubernetes.io/instance=never-ready")
                                 if p["status"].get("phase") == "Running"), None), "a Running pod", timeout=120)
    ip = pod["status"]["podIP"]
    # The server itself is up: its own health endpoint answers at the pod IP.
    wait_for(lambda: _http_status(ip, "/v2/health/ready") == 200, "the server to answer", timeout=60)
    # Several probe periods after the server answers, the pod is still not Ready.
    gen = LoadGenerator(cluster.kubeconfig, namespace, "never-ready", "iris", rate_per_s=5, duration_s=3)
    results = gen.start().wait(timeout=30)
    pod = _pods(cluster, namespace, "app.kubernetes.io/instance=never-ready")[0]
    assert not _ready(pod)
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    assert ip not in _ready_endpoints(cluster, namespace, "never-ready")
    assert results.ok == 0 and results.no_endpoint == results.sent > 0


def _http_status(ip: str, path: str) -> int:
    import http.client

    try:
        conn = http.client.HTTPConnection(ip, 8080, timeout=2)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


def test_failed_fetch_keeps_the_pod_unready_with_the_reason(
        cluster: localcluster.Cluster, namespace: str, kubelet: NetKubelet, iris_model: tuple[str, str]) -> None:
    uri, _ = iris_model
    _apply(cluster, _deployment("bad-sha", namespace, uri, "0" * 64, "r2", replicas=1))

    def failed_init() -> dict[str, Any] | None:
        for pod in _pods(cluster, namespace, "app.kubernetes.io/instance=bad-sha"):
            for status in pod["status"].get("initContainerStatuses") or []:
                term = status["state"].get("terminated") or status["lastState"].get("terminated")
                if term and term["exitCode"] != 0:
                    return pod
        return None

    pod = wait_for(failed_init, "the fetch-model init container to fail", timeout=120)
    status = pod["status"]["initContainerStatuses"][0]
    term = status["state"].get("terminated") or status["lastState"]["terminated"]
    assert term["reason"] == "Error"
    assert "sha256 mismatch" in term["message"]
    assert pod["status"]["phase"] == "Pending"
    assert not _ready(pod)
    initialized = next(c for c in pod["status"]["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False"
    # The server never started: it has no process and is still waiting.
    assert "waiting" in pod["status"]["containerStatuses"][0]["state"]
    # The kubelet retries with back-off, as a kubelet does, and the reason stays readable.
    pod = wait_for(lambda: (lambda p: p if p and p["status"]["initContainerStatuses"][0]["restartCount"] >= 1
                            else None)(failed_init()), "a retried fetch", timeout=60)
    assert "sha256 mismatch" in json.dumps(pod["status"]["initContainerStatuses"][0])
    assert not _ready(pod)


def test_stop_removes_the_node_and_its_namespaces(cluster: localcluster.Cluster, namespace: str,
                                                   iris_model: tuple[str, str]) -> None:
    # A second node, started and stopped here; a stale namespace of an earlier run is cleaned up.
    node, cidr = "modelops-harness-1", real_cidr(2)
    own = NetKubelet(cluster.kubeconfig, node, cidr, pool=POOL)
    stale = f"{own.netns_prefix}deadbeef"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    own.start()
    try:
        assert stale not in list_netns()
        uri, sha256 = iris_model
        dep = _deployment("solo", namespace, uri, sha256, "r1", replicas=1)
        dep["spec"]["template"]["spec"].update(pod_placement(node, POOL))
        _apply(cluster, dep)
        wait_for(lambda: [p for p in _pods(cluster, namespace, "app.kubernetes.io/instance=solo") if _ready(p)],
                 "a Ready pod on the second node", timeout=120)
        assert own.owned_netns()
    finally:
        own.stop()
    assert not own.owned_netns()
    assert node not in cluster.kubectl("get", "nodes", "-o", "name")


def test_load_generator_logs_the_failures_of_a_model_that_raises(
        cluster: localcluster.Cluster, namespace: str, kubelet: NetKubelet, tmp_path: Path) -> None:
    model = tmp_path / "fails"
    subprocess.run(models.train_command("--dataset", "iris", "--output", str(model), "--fail-above", "8"),
                   check=True, capture_output=True, timeout=300)
    sha256 = (model / "model.sha256").read_text().strip()
    _apply(cluster, _service("fails", namespace))
    _apply(cluster, _deployment("fails", namespace, f"file://{model / 'model.joblib'}", sha256, "bad", replicas=1))
    wait_for(lambda: _ready_endpoints(cluster, namespace, "fails"), "a ready endpoint", timeout=120)

    gen = LoadGenerator(cluster.kubeconfig, namespace, "fails", "iris", rate_per_s=40, duration_s=10,
                        max_requests=80, large_fraction=0.5, large_value=9.0)
    results = gen.start().wait(timeout=60)
    assert results.sent == 80, gen.describe()
    assert results.ok > 0 and results.failed > 0, gen.describe()
    assert results.by_revision["bad"].total == 80
    assert len(results.failures) == results.failed
    assert all(f.revision == "bad" and f.status >= 400 and f.body for f in results.failures), gen.describe()


def test_a_restarted_kubelet_cleans_up_and_runs_its_pods_again(
        cluster: localcluster.Cluster, namespace: str, iris_model: tuple[str, str], tmp_path: Path) -> None:
    node, cidr = "modelops-harness-2", real_cidr(3)
    command = [sys.executable, "-m", "devcluster.netkubelet", "--kubeconfig", str(cluster.kubeconfig),
               "--node", node, "--cidr", cidr, "--pool", POOL]
    log = open(tmp_path / "netkubelet.log", "ab")  # noqa: SIM115 - shared by both runs
    first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    second: subprocess.Popen[bytes] | None = None
    try:
        uri, sha256 = iris_model
        dep = _deployment("again", namespace, uri, sha256, "r1", replicas=1)
        dep["spec"]["template"]["spec"].update(pod_placement(node, POOL))
        _apply(cluster, dep)
        selector = "app.kubernetes.io/instance=again"
        pod = wait_for(lambda: next((p for p in _pods(cluster, namespace, selector) if _ready(p)), None),
                       "a Ready pod on the netkubelet subprocess", timeout=120)
        ip = pod["status"]["podIP"]
        netns = [ns for ns in list_netns() if ns.startswith(netns_prefix(node))]
        assert len(netns) == 1
        old_pids = netns_pids(netns[0])
        assert old_pids

        first.kill()  # no cleanup at all: its namespace and serving processes stay behind
        first.wait()
        assert netns[0] in list_netns()
        second = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # The new kubelet removes the leftovers, then runs the pod again with its address.
        wait_for(lambda: not [pid for pid in old_pids if os.path.exists(f"/proc/{pid}")],
                 "the old serving processes to be killed", timeout=60)
        assert wait_for(lambda: _http_status(ip, "/v2/health/ready") == 200, "the pod to serve again", timeout=120)
        pod = _pods(cluster, namespace, selector)[0]
        assert pod["status"]["podIP"] == ip
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
        log.close()
    assert not [ns for ns in list_netns() if ns.startswith(netns_prefix(node))]
    assert node not in cluster.kubectl("get", "nodes", "-o", "name")


def test_scaling_down_under_load_loses_no_request(cluster: localcluster.Cluster, namespace: str,
                                                  kubelet: NetKubelet, iris_model: tuple[str, str]) -> None:
    # The removed pod leaves the EndpointSlice at once (terminating), keeps serving through its
    # preStop sleep while the load generator notices, then drains on SIGTERM: no request fails.
    uri, sha256 = iris_model
    _apply(cluster, _service("shrink", namespace))
    _apply(cluster, _deployment("shrink", namespace, uri, sha256, "r1", replicas=2))
    selector = "app.kubernetes.io/instance=shrink"
    wait_for(lambda: len(_ready_endpoints(cluster, namespace, "shrink")) == 2, "two ready endpoints", timeout=120)
    gen = LoadGenerator(cluster.kubeconfig, namespace, "shrink", "iris", rate_per_s=40, duration_s=15).start()
    wait_for(lambda: gen.results().ok >= 40, "traffic to flow", timeout=30)
    cluster.kubectl("scale", "deployment", "shrink", "-n", namespace, "--replicas=1")
    wait_for(lambda: len(_pods(cluster, namespace, selector)) == 1, "one pod to be removed", timeout=60)
    results = gen.wait(timeout=60)
    assert results.failed == 0, gen.describe()
    assert len([ip for ip, tally in results.by_ip.items() if tally.ok]) == 2, gen.describe()
