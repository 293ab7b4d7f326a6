"""The operator against the real control plane: a sample becomes Ready, follows spec changes,
leaves no children behind when deleted, and a restarted operator changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import claims
from devcluster.localcluster import Cluster
from tests.conftest import OperatorProcess, wait_for

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "iris.yaml"


def _json(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any]:
    out = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _children(cluster: Cluster, namespace: str) -> dict[str, list[str]]:
    selector = "app.kubernetes.io/instance=iris,app.kubernetes.io/managed-by=modelops"
    return {kind: sorted(i["metadata"]["name"] for i in _json(cluster, namespace, kind, "-l", selector)["items"])
            for kind in ("deployments", "services")}


def test_sample_becomes_ready_follows_replicas_and_cleans_up(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    claims.provision(cluster, namespace, "models")  # the sample's pvc://models/... is mounted
    cluster.kubectl("apply", "-n", namespace, "-f", str(SAMPLE))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    mdep = _json(cluster, namespace, "mdep", "iris")
    status = mdep["status"]
    assert status["observedGeneration"] == mdep["metadata"]["generation"]
    assert status["stable"]["readyReplicas"] == 2
    assert status["stable"]["modelVersion"] == "1"
    assert not any(k.startswith("kopf.zalando.org") for k in mdep["metadata"].get("annotations", {}))
    assert mdep["metadata"].get("finalizers", []) == [] or all(
        f.startswith("modelops.dev/") for f in mdep["metadata"]["finalizers"])
    children = _children(cluster, namespace)
    assert len(children["deployments"]) == 1 and children["services"] == ["iris"]
    deployment = _json(cluster, namespace, "deployment", children["deployments"][0])
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelops"

    # Printer columns a person reads.
    table = cluster.kubectl("get", "mdep", "iris", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header == ["NAME", "MODEL", "STABLE", "CANARY", "WEIGHT", "PHASE", "READY", "REASON", "AGE"]
    assert "True" in table.splitlines()[1]

    # Scaling is not a new revision: the same Deployment follows.
    cluster.kubectl("patch", "mdep", "iris", "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"serving": {"replicas": 3}}}))
    wait_for(lambda: _json(cluster, namespace, "mdep", "iris")["status"]["stable"]["readyReplicas"] == 3,
             "3 ready replicas in status")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=60s")
    assert _children(cluster, namespace) == children

    cluster.kubectl("delete", "mdep", "iris", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(lambda: _children(cluster, namespace) == {"deployments": [], "services": []},
             "children garbage-collected")


def test_restarted_operator_changes_nothing(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    manifest = yaml.safe_load(SAMPLE.read_text())
    claims.provision(cluster, namespace, "models")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    wait_for(lambda: _json(cluster, namespace, "mdep", "iris")["status"].get("phase") == "Healthy", "Healthy")
    before = _json(cluster, namespace, "mdep", "iris")
    deployments_before = {d["metadata"]["name"]: d["metadata"]["resourceVersion"]
                          for d in _json(cluster, namespace, "deployments")["items"]}
    operator.stop()
    offset = operator.log.stat().st_size
    operator.start()
    # The new operator lists the object at startup and reconciles it: wait for it to say so.
    wait_for(lambda: f"reconciled {namespace}/iris" in operator.log.read_text()[offset:],
             "the restarted operator to reconcile the object")
    after = _json(cluster, namespace, "mdep", "iris")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert {d["metadata"]["name"]: d["metadata"]["resourceVersion"]
            for d in _json(cluster, namespace, "deployments")["items"]} == deployments_before
