"""HPA mode on the real control plane, run by the operator under the shipped RBAC: the operator
creates a HorizontalPodAutoscaler for the stable Deployment, never takes its replica count back,
sizes the canary and the promotion from it, retargets it on promotion, and removes it when
autoscaling is switched off. The autoscaler's own scaling is played by `kubectl scale` (what the
HPA controller does through the scale subresource; this control plane has no metrics API)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from demo.scenario import apply, get, wait_status
from devcluster.localcluster import Cluster
from tests.conftest import OperatorProcess, wait_for

pytestmark = pytest.mark.integration
NAME = "scaled"


def _manifest(version: str, autoscaling: dict[str, Any] | None) -> dict[str, Any]:
    """A ModelDeployment on kwok's nodes (pods Ready at once, nothing served)."""
    serving: dict[str, Any] = {"replicas": 2}
    if autoscaling is not None:
        serving["autoscaling"] = autoscaling
    return {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": NAME},
            "spec": {"model": {"name": "iris", "version": version, "uri": "file:///models/iris/model.skops",
                               "format": "skops"},
                     "serving": serving,
                     "rollout": {"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": {"disabled": True}}}}


def _replicas(cluster: Cluster, namespace: str, revision: str) -> int:
    dep = get(cluster, namespace, "deployment", f"{NAME}-{revision}")
    return int((dep.get("spec") or {}).get("replicas") or 0)


def _hpa(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return get(cluster, namespace, "hpa", NAME)


def test_hpa_mode_the_autoscaler_owns_the_stable_count_and_the_canary_follows_it(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    bounds = {"minReplicas": 2, "maxReplicas": 6}
    apply(cluster, namespace, _manifest("1", bounds))
    st = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Healthy", "v1 Healthy", 120)
    v1 = st["stable"]["revision"]
    wait_for(lambda: _hpa(cluster, namespace), "the HorizontalPodAutoscaler", timeout=30)
    hpa = _hpa(cluster, namespace)
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{NAME}-{v1}"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"

    # The autoscaler scales the stable track to 4: the operator reads it and does not take it back.
    cluster.kubectl("scale", "deployment", f"{NAME}-{v1}", "-n", namespace, "--replicas", "4")
    wait_status(cluster, namespace, NAME, lambda s: (s.get("stable") or {}).get("readyReplicas") == 4,
                "status reading 4 stable pods", 60)
    time.sleep(3)  # several reconciles (the status changes enqueue them) with the count at 4
    assert _replicas(cluster, namespace, v1) == 4

    # The canary at 50% is sized next to the 4 pods the autoscaler chose, not spec.replicas.
    apply(cluster, namespace, _manifest("2", bounds))
    st = wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("readyReplicas") == 4
                     and (s.get("canary") or {}).get("stepIndex") == 1, "the canary at 50% with 4 pods", 120)
    v2 = st["canary"]["revision"]
    assert st["canary"]["observedWeight"] == 50
    cluster.kubectl("modelops", "promote", NAME, "-n", namespace)
    st = wait_status(cluster, namespace, NAME, lambda s: (s.get("stable") or {}).get("revision") == v2
                     and s.get("phase") == "Healthy", "v2 promoted", 120)
    assert _replicas(cluster, namespace, v2) == 4
    wait_for(lambda: _hpa(cluster, namespace)["spec"]["scaleTargetRef"]["name"] == f"{NAME}-{v2}",
             "the autoscaler retargeted at the new stable Deployment", timeout=30)

    # Autoscaling off: the autoscaler goes and spec.replicas sizes the stable track again.
    apply(cluster, namespace, _manifest("2", None))
    wait_for(lambda: not _hpa(cluster, namespace), "the HorizontalPodAutoscaler removed", timeout=30)
    wait_for(lambda: _replicas(cluster, namespace, v2) == 2, "the stable track back at spec.replicas 2", timeout=60)
    # The operator warned about nothing (the HPA controller's own warnings, no metrics API here, are its).
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    warnings = [(e["reason"], e["message"]) for e in events if e.get("type") == "Warning"
                and e["involvedObject"]["kind"] == "ModelDeployment"]
    assert not warnings, warnings
