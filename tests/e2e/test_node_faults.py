"""Faults a real node makes possible, mid-canary, each ending as an undisturbed run would (v2 promoted,
v1's users unharmed): a serving container killed (the kubelet restarts it), the node's kubelet stopped
for 60 s (pods go NotReady, the rollout holds), the leader operator pod deleted (the standby carries
on), and kube-apiserver down for 17 s (both replicas reconcile again soon after it is back).

In `make test-faults` (marker `faults`): a minute or two each. Each prints its figure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from demo.scenario import TrainedModel, apply, condition, manifest, status, wait_status
from devcluster import localcluster
from devcluster.chart import ChartOperator
from devcluster.localcluster import Cluster
from devcluster.realnode import NodeSet
from devcluster.traffic import LoadGenerator

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.faults]
NAME = "iris"
STEPS = [{"setWeight": 50}, {"pause": {"duration": "40s"}}, {"setWeight": 100}, {"pause": {"duration": "5s"}}]


def _healthy_on(version: str) -> Any:
    def check(st: dict[str, Any]) -> bool:
        return (st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == version
                and not (st.get("canary") or {}).get("revision") and condition(st, "Ready").get("status") == "True")
    return check


def _start_canary(cluster: Cluster, namespace: str, models: dict[str, TrainedModel]) -> LoadGenerator:
    apply(cluster, namespace, manifest(NAME, models["v1"], steps=STEPS))
    wait_status(cluster, namespace, NAME, _healthy_on("1"), "v1 Healthy", 180)
    load = LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=20, duration_s=400,
                         max_requests=8000)
    load.start()
    apply(cluster, namespace, manifest(NAME, models["v2"], steps=STEPS))
    wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("stepIndex") == 1,
                "the canary in its pause at 50%", 120)
    return load


def _finish(cluster: Cluster, namespace: str, load: LoadGenerator, timeout: float = 240) -> dict[str, Any]:
    try:
        final = wait_status(cluster, namespace, NAME, _healthy_on("2"), "v2 promoted", timeout)
    finally:
        load.stop()
    assert final["history"][-1]["outcome"] == "Promoted", final["history"]
    return final


def _pods(cluster: Cluster, namespace: str, revision: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"modelops.dev/revision={revision}", "-o", "json")
    return list(json.loads(out)["items"])


def test_a_serving_container_killed_mid_canary_is_restarted_and_the_rollout_ends_as_usual(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    load = _start_canary(cluster, namespace, models)
    canary = status(cluster, namespace, NAME)["canary"]["revision"]
    pod = _pods(cluster, namespace, canary)[0]
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    node = real_node.node(0)
    tasks = subprocess.run(node.ctr("tasks", "ls"), capture_output=True, text=True, check=True).stdout
    pid = next(int(line.split()[1]) for line in tasks.splitlines() if line.startswith(container_id))
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = next(p for p in _pods(cluster, namespace, canary) if p["metadata"]["name"] == pod["metadata"]["name"])
        if now["status"]["containerStatuses"][0].get("restartCount", 0) >= 1:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the kubelet did not restart the killed container")
    print(f"\ncontainer restarted by the kubelet {time.monotonic() - deadline + 90:.1f}s after the kill")
    _finish(cluster, namespace, load)


def test_the_kubelet_stopped_for_60s_holds_the_rollout_and_it_ends_as_usual(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    load = _start_canary(cluster, namespace, models)
    node = real_node.node(0)
    real_node.stop_component(node, "kubelet")
    stopped = time.monotonic()
    seen: list[str] = []
    try:
        while time.monotonic() - stopped < 60:
            st = status(cluster, namespace, NAME)
            seen.append(str(st.get("phase")))
            assert (st.get("stable") or {}).get("modelVersion") == "1", "promoted while the node was away"
            time.sleep(1)
    finally:
        real_node.start_kubelet(node)
    print(f"\nphases while the kubelet was stopped: {sorted(set(seen))}")
    _finish(cluster, namespace, load, timeout=300)


def test_the_leader_pod_deleted_mid_step_the_standby_carries_on(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    load = _start_canary(cluster, namespace, models)
    killed_at = time.monotonic()
    old = operator.kill()
    new = operator.start(timeout=60)
    took = time.monotonic() - killed_at
    print(f"\nleader {old} deleted; {new['metadata']['name']} leads {took:.1f}s later")
    assert new["metadata"]["name"] != old
    _finish(cluster, namespace, load)


def test_an_api_outage_of_17s_mid_canary_is_followed_by_reconciles_soon_after(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    load = _start_canary(cluster, namespace, models)
    localcluster.stop_component(cluster, "kube-apiserver", crash=True)
    time.sleep(17)
    localcluster.start_apiserver(cluster)
    back = time.monotonic()
    # A person's edit as soon as the API answers; reconciling again means observing its generation.
    cluster.kubectl("patch", "mdep", NAME, "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"serving":{"replicas":3}}}')
    obj = json.loads(cluster.kubectl("get", "mdep", NAME, "-n", namespace, "-o", "json"))
    generation = obj["metadata"]["generation"]
    wait_status(cluster, namespace, NAME, lambda s: int(s.get("observedGeneration") or 0) >= generation,
                "the edit observed after the API came back", 180)
    print(f"\nan edit made when kube-apiserver was back observed {time.monotonic() - back:.1f}s later "
          f"(leader now {operator.leader_name()})")
    _finish(cluster, namespace, load)
