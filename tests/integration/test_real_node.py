"""The harness's real node: pods from the project's images under a real kubelet, containerd and
kube-proxy, in a namespace that enforces the restricted Pod Security Standard.

What a cluster does and the old stand-in did not: the image's filesystem, runAsUser, a read-only root,
the claim's ownership, probes run by the kubelet, a Service's ClusterIP through kube-proxy, and no way
off the machine (no image pull, no nameserver, no route).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster import claims, localcluster, realnode
from devcluster.localcluster import Cluster
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}}
# What the pod prints: who it runs as, whether / is writable, its resolver and its routes.
PROBE_SCRIPT = """
import json, os, pathlib, http.server
facts = {"uid": os.getuid(), "gid": os.getgid(), "resolv": pathlib.Path("/etc/resolv.conf").read_text()}
try:
    pathlib.Path("/written").write_text("x"); facts["root_writable"] = True
except OSError as error:
    facts["root_writable"] = False; facts["root_error"] = error.errno
facts["routes"] = [line.split()[1] for line in pathlib.Path("/proc/net/route").read_text().splitlines()[1:]]
pathlib.Path("/data/written-by-pod").write_text("ok")
facts["data_file"] = os.stat("/data/written-by-pod").st_gid
print(json.dumps(facts), flush=True)
http.server.HTTPServer(("", 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.fixture(scope="module")
def node(cluster: Cluster) -> realnode.NodeSet:
    wait_for(lambda: localcluster.real_nodes_ready(cluster, 1), "a real node Ready", timeout=90)
    return localcluster.node_set(cluster)


@pytest.fixture
def restricted(cluster: Cluster, node: realnode.NodeSet, tmp_path: Path) -> Iterator[str]:
    name = f"real-node-{int(time.time() * 1000) % 1000000}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", name, "-o", "name", check=False),
             "the default service account")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    claims.release(cluster, name)


def _apply(cluster: Cluster, namespace: str, *objs: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def _pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def test_a_pod_runs_from_its_image_as_its_user_on_a_read_only_root(
        cluster: Cluster, restricted: str, tmp_path: Path) -> None:
    claims.provision(cluster, restricted, "data", tmp_path / "data")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "facts", "labels": {"app": "facts"}},
           "spec": {**realnode.placement(), "securityContext": POD_SECURITY,
                    "containers": [{"name": "facts", "image": "modelops-server:0.1.0", "imagePullPolicy": "Never",
                                    "command": ["python3", "-c", PROBE_SCRIPT], "ports": [{"containerPort": 8080}],
                                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                                    "securityContext": RESTRICTED_CONTAINER,
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "facts"},
               "spec": {"selector": {"app": "facts"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    _apply(cluster, restricted, pod, service)
    wait_for(lambda: _ready(_pod(cluster, restricted, "facts")), "the pod Ready by its kubelet-run probe", 90)
    facts = json.loads(cluster.kubectl("logs", "facts", "-n", restricted).splitlines()[0])
    assert (facts["uid"], facts["gid"]) == (65532, 65532)
    assert facts["root_writable"] is False and facts["root_error"] == 30  # EROFS
    assert "nameserver 127.0.0.1" in facts["resolv"] and facts["resolv"].count("nameserver") == 1
    assert "00000000" not in facts["routes"], facts["routes"]  # no default route
    # The claim, as a volume provisioned for the pods' fsGroup: written as 65532, group kept.
    written = tmp_path / "data" / "written-by-pod"
    assert written.read_text() == "ok" and written.stat().st_uid == 65532 and written.stat().st_gid == 65532
    # The Service's ClusterIP through the node's kube-proxy, from the host.
    ip = json.loads(cluster.kubectl("get", "svc", "facts", "-n", restricted, "-o", "json"))["spec"]["clusterIP"]
    def answers() -> bool:
        # kube-proxy programs a new Service's rules a moment after its EndpointSlice appears.
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(answers, "the ClusterIP answering through kube-proxy", timeout=30)


def test_the_restricted_standard_refuses_a_root_pod(cluster: Cluster, restricted: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
           "spec": {**realnode.placement(), "containers": [{"name": "c", "image": "modelops-server:0.1.0",
                                                            "securityContext": {"runAsUser": 0}}]}}
    with pytest.raises(localcluster.ClusterError, match="violates PodSecurity"):
        _apply(cluster, restricted, pod)


def test_a_missing_image_fails_at_once_without_leaving_the_machine(cluster: Cluster, restricted: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "missing"},
           "spec": {**realnode.placement(), "securityContext": POD_SECURITY,
                    "containers": [{"name": "c", "image": "registry.example.com/team/model-server:9.9",
                                    "imagePullPolicy": "IfNotPresent", "securityContext": RESTRICTED_CONTAINER}]}}
    started = time.monotonic()
    _apply(cluster, restricted, pod)

    def pull_failed() -> str:
        out = cluster.kubectl("get", "events", "-n", restricted, "--field-selector",
                              "involvedObject.name=missing,reason=Failed", "-o", "json")
        return " ".join(e["message"] for e in json.loads(out)["items"])

    message = wait_for(pull_failed, "the pull to fail", timeout=30)
    assert time.monotonic() - started < 30
    # The one place containerd tried: the dead registry on loopback (no DNS lookup, nothing sent off).
    assert realnode.DEAD_REGISTRY.removeprefix("https://") in message, message
    assert "registry.example.com/v2" not in message and "lookup" not in message, message
