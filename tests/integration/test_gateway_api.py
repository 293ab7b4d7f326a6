"""The GatewayAPI router against the real HTTPRoute schema: the operator points the two track
Services at the stable and canary revisions and moves the route's backendRef weights step by step.

Pods run on kwok's nodes (no gateway forwards traffic here); what is checked is what the operator
writes, which is what any Gateway API implementation would act on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devcluster.localcluster import Cluster
from tests.conftest import OperatorProcess, wait_for

pytestmark = pytest.mark.integration
KUBECTL_MODELOPS = str(Path(sys.executable).parent / "kubectl-modelops")


def _mdep(version: str) -> dict[str, Any]:
    return {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "gw"},
            "spec": {"model": {"name": "iris", "version": version, "uri": "file:///m/model.skops", "format": "skops"},
                     "serving": {"replicas": 2},
                     "rollout": {"traffic": {"router": "GatewayAPI", "httpRoute": {"name": "gw"}},
                                 "steps": [{"setWeight": 20}, {"pause": {}}], "analysis": {"disabled": True}}}}


ROUTE = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "gw"},
         "spec": {"parentRefs": [{"name": "public"}],
                  "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/iris"}}],
                             "backendRefs": [{"name": "gw", "port": 80}]}]}}


def _json(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any]:
    out = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _weights(cluster: Cluster, namespace: str) -> dict[str, int]:
    rules = _json(cluster, namespace, "httproute", "gw").get("spec", {}).get("rules", [])
    return {ref["name"]: ref.get("weight", 1) for ref in (rules[0].get("backendRefs") or [])} if rules else {}


def test_route_weights_follow_the_steps_and_promotion(cluster: Cluster, namespace: str,
                                                      operator: OperatorProcess) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(ROUTE))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_mdep("1")))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/gw", "--timeout=90s")
    stable = _json(cluster, namespace, "mdep", "gw")["status"]["stable"]["revision"]
    wait_for(lambda: _weights(cluster, namespace) == {"gw-stable": 100, "gw-canary": 0}, "all weight on stable")

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(_mdep("2")))
    wait_for(lambda: _weights(cluster, namespace) == {"gw-stable": 80, "gw-canary": 20}, "20% on the canary")
    status = _json(cluster, namespace, "mdep", "gw")["status"]
    canary = status["canary"]["revision"]
    selectors = {s: _json(cluster, namespace, "service", s)["spec"]["selector"]["modelops.dev/revision"]
                 for s in ("gw-stable", "gw-canary")}
    assert selectors == {"gw-stable": stable, "gw-canary": canary}
    wait_for(lambda: _json(cluster, namespace, "mdep", "gw")["status"]["canary"]["observedWeight"] == 20,
             "the observed weight read back from the route")
    # The rule's own matches and parentRefs are the user's: untouched.
    route = _json(cluster, namespace, "httproute", "gw")
    assert route["spec"]["rules"][0]["matches"] == ROUTE["spec"]["rules"][0]["matches"]  # type: ignore[index]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "public"}]

    proc = subprocess.run([KUBECTL_MODELOPS, "promote", "gw", "--full", "-n", namespace,
                           "--kubeconfig", str(cluster.kubeconfig)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: (_json(cluster, namespace, "mdep", "gw")["status"].get("stable") or {}).get("revision")
             == canary, "the canary promoted to stable", timeout=90)
    wait_for(lambda: _json(cluster, namespace, "service", "gw-stable")["spec"]["selector"]["modelops.dev/revision"]
             == canary, "gw-stable selecting the promoted revision")
    wait_for(lambda: _weights(cluster, namespace).get("gw-stable") == 100, "all weight on the new stable")
