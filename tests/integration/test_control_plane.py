"""The local control plane behaves like a cluster: kwok makes pods ready, Services get
EndpointSlices, and deleting an owner garbage-collects its children."""

from __future__ import annotations

import json

import pytest

from devcluster.localcluster import Cluster
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}]},
        },
    },
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


def _get(cluster: Cluster, namespace: str, *what: str) -> dict:  # type: ignore[type-arg]
    out = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out else {}


def test_deployment_becomes_ready_with_endpoints(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(DEPLOYMENT))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(SERVICE))
    wait_for(lambda: _get(cluster, namespace, "deployment", "web").get("status", {}).get("readyReplicas") == 3,
             "3 ready replicas")
    pods = _get(cluster, namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    ips = {p["status"]["podIP"] for p in pods}
    assert all(ip.startswith("10.244.") for ip in ips), ips

    def endpoint_ips() -> set[str]:
        slices = _get(cluster, namespace, "endpointslices", "-l", "kubernetes.io/service-name=web")
        return {a for s in slices.get("items", []) for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") for a in e["addresses"]}

    assert wait_for(lambda: endpoint_ips() == ips, "EndpointSlices listing the 3 pod IPs")


def test_deleting_owner_collects_children(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({**DEPLOYMENT, "spec": {
        **DEPLOYMENT["spec"], "replicas": 2}}))  # type: ignore[dict-item]
    wait_for(lambda: len(_get(cluster, namespace, "pods", "-l", "app=web").get("items", [])) == 2, "2 pods")
    cluster.kubectl("delete", "deployment", "web", "-n", namespace, "--wait=false")
    wait_for(lambda: _get(cluster, namespace, "replicasets", "-l", "app=web").get("items") == [],
             "the ReplicaSet garbage-collected")
    wait_for(lambda: _get(cluster, namespace, "pods", "-l", "app=web").get("items") == [],
             "the pods garbage-collected")
