"""End-to-end canary scenarios on the real control plane, with real serving processes behind the
pods (one network namespace per pod), real metrics and a kube-proxy-like load generator.

Each scenario waits on observable state (status, Deployments, load results), never on sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest

from demo.scenario import (
    TrainedModel,
    apply,
    condition,
    deployments,
    events,
    manifest,
    wait_status,
)
from devcluster.chart import ChartOperator
from devcluster.localcluster import Cluster
from devcluster.prometheus import Prometheus
from devcluster.realnode import NodeSet
from devcluster.traffic import LoadGenerator
from tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
NAME = "iris"


def _healthy_on(version: str) -> Any:
    def check(st: dict[str, Any]) -> bool:
        return (st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == version
                and not (st.get("canary") or {}).get("revision")
                and condition(st, "Ready").get("status") == "True")
    return check


def _deploy_stable(cluster: Cluster, namespace: str, model: TrainedModel, **kw: Any) -> dict[str, Any]:
    apply(cluster, namespace, manifest(NAME, model, **kw))
    return wait_status(cluster, namespace, NAME, _healthy_on(model.version), f"v{model.version} Healthy", 120)


def _load(cluster: Cluster, namespace: str, **kw: Any) -> LoadGenerator:
    options: dict[str, Any] = {"rate_per_s": 60, "duration_s": 240, "max_requests": 20000}
    options.update(kw)
    gen = LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", **options)
    gen.start()
    return gen


def test_good_model_is_promoted_in_steps(cluster: Cluster, namespace: str, operator: ChartOperator,
                                         real_node: NodeSet, models: dict[str, TrainedModel]) -> None:
    _deploy_stable(cluster, namespace, models["v1"])
    load = _load(cluster, namespace)
    try:
        seen: list[dict[str, Any]] = []
        apply(cluster, namespace, manifest(NAME, models["v2"]))
        final = wait_status(cluster, namespace, NAME, _healthy_on("2"), "v2 promoted", 180, seen)
    finally:
        load.stop()
    weights = [(s.get("canary") or {}).get("weight") for s in seen]
    assert 10 in weights and 50 in weights, weights
    assert max(w or 0 for w in weights) <= 100
    assert final["history"][-1]["outcome"] == "Promoted"
    reasons = [e["reason"] for e in events(cluster, namespace, NAME)]
    assert "CanaryStarted" in reasons and "Promoted" in reasons, reasons
    wait_for(lambda: len(deployments(cluster, namespace, NAME)) == 1, "the old stable Deployment gone")
    results = load.results()
    assert results.ok > 0 and results.failed == 0, results.failures[:5]


def test_failing_model_is_rolled_back_without_stable_errors(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    stable = _deploy_stable(cluster, namespace, models["v1"])
    load = _load(cluster, namespace, large_fraction=0.5)
    try:
        apply(cluster, namespace, manifest(NAME, models["failing"]))
        aborted = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Aborted", "the canary aborted",
                              150)
        wait_for(lambda: all((d.get("spec") or {}).get("replicas") == 0
                             for d in deployments(cluster, namespace, NAME)
                             if d["metadata"]["labels"]["modelops.dev/revision"] != stable["stable"]["revision"]),
                 "the canary scaled to zero")
    finally:
        load.stop()
    assert aborted["canary"]["weight"] == 0
    degraded = condition(aborted, "Degraded")
    assert degraded.get("status") == "True", aborted["conditions"]
    assert "errors" in degraded["message"] and "0.02" in degraded["message"], degraded["message"]
    assert aborted["stable"]["modelVersion"] == "1"
    results = load.results()
    stable_rev = stable["stable"]["revision"]
    assert results.failed_for(stable_rev) == 0, results.failures[:5]
    assert results.ok_for(stable_rev) > 0


def test_slower_model_fails_latency_comparison(cluster: Cluster, namespace: str, operator: ChartOperator,
                                               real_node: NodeSet, models: dict[str, TrainedModel]) -> None:
    metrics = [{"name": "p99", "builtin": "latencyP99", "vsStable": {"maxIncrease": 1.0}}]
    _deploy_stable(cluster, namespace, models["v1"], metrics=metrics)
    load = _load(cluster, namespace)
    try:
        apply(cluster, namespace, manifest(NAME, models["slow"], metrics=metrics))
        aborted = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Aborted", "the canary aborted",
                              150)
    finally:
        load.stop()
    message = condition(aborted, "Degraded").get("message", "")
    assert "p99" in message, message
    result = next(m for m in aborted["analysis"]["metrics"] if m["name"] == "p99")
    assert result["verdict"] == "Failed" and result["value"] > result["stableValue"] * 2, result


def test_prometheus_outage_holds_inconclusive_then_resumes(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        prometheus: Prometheus, models: dict[str, TrainedModel]) -> None:
    steps = [{"setWeight": 50}, {"analysis": {"count": 2}}]
    kw: dict[str, Any] = {"steps": steps, "interval": "4s", "prometheus_url": prometheus.url}
    _deploy_stable(cluster, namespace, models["v1"], **kw)
    load = _load(cluster, namespace)
    try:
        apply(cluster, namespace, manifest(NAME, models["v2"], **kw))
        wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("stepIndex") == 1,
                    "the canary at its analysis step", 120)
        prometheus.stop()
        held = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Inconclusive",
                           "the rollout holding Inconclusive", 120)
        assert held["stable"]["modelVersion"] == "1" and held["canary"]["modelVersion"] == "2"
        errors = [m for m in held["analysis"]["metrics"] if m["verdict"] in ("Error", "Inconclusive")]
        assert errors, held["analysis"]
        prometheus.start()
        wait_status(cluster, namespace, NAME, _healthy_on("2"), "v2 promoted once Prometheus is back", 180)
    finally:
        load.stop()
        if not prometheus.running():
            prometheus.start()


KILL_POINTS = {
    "canary-created": lambda s: bool((s.get("canary") or {}).get("revision")),
    "mid-shift": lambda s: (s.get("canary") or {}).get("stepIndex", 0) >= 2,
    "analysing": lambda s: (s.get("analysis") or {}).get("successes", 0) >= 1,
    "promoting": lambda s: s.get("phase") == "Promoting",
    "aborting": lambda s: s.get("phase") == "Aborted",
}


# One kill point runs in `make test`; every one of them in `make test-faults` (about a minute each).
@pytest.mark.parametrize("kill_point", [k if k == "mid-shift" else pytest.param(k, marks=pytest.mark.faults)
                                        for k in KILL_POINTS])
def test_operator_killed_resumes_to_the_same_end(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], kill_point: str) -> None:
    # 25% of 2 stable pods is one canary pod: promotion has a second pod to start, so it is seen.
    steps = [{"setWeight": 10}, {"pause": {"duration": "2s"}}, {"setWeight": 25}, {"analysis": {"count": 2}}]
    _deploy_stable(cluster, namespace, models["v1"], steps=steps)
    aborting = kill_point == "aborting"
    load = _load(cluster, namespace, large_fraction=0.5 if aborting else 0.0)
    try:
        apply(cluster, namespace, manifest(NAME, models["failing" if aborting else "v2"], steps=steps))
        wait_status(cluster, namespace, NAME, KILL_POINTS[kill_point], kill_point, 150)
        operator.kill()
        operator.start()
        if aborting:
            end = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Aborted"
                              and (s.get("canary") or {}).get("readyReplicas", 1) == 0, "aborted, canary at 0", 150)
        else:
            end = wait_status(cluster, namespace, NAME, _healthy_on("2"), "v2 promoted", 150)
    finally:
        load.stop()
    names = [d["metadata"]["name"] for d in deployments(cluster, namespace, NAME)]
    assert len(names) == len(set(names)) <= 2, names
    outcomes = [h["outcome"] for h in end["history"]]
    assert outcomes == (["Deployed", "Aborted"] if aborting else ["Deployed", "Promoted"]), outcomes
    if aborting:
        assert end["stable"]["modelVersion"] == "1" and end["canary"]["weight"] == 0
    else:
        wait_for(lambda: len(deployments(cluster, namespace, NAME)) == 1, "one Deployment left")


def test_new_version_mid_canary_restarts_the_rollout(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    steps = [{"setWeight": 10}, {"pause": {"duration": "6s"}}, {"setWeight": 50}, {"pause": {"duration": "2s"}}]
    _deploy_stable(cluster, namespace, models["v1"], steps=steps)
    load = _load(cluster, namespace)
    try:
        apply(cluster, namespace, manifest(NAME, models["v2"], steps=steps))
        first = wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("stepIndex") == 1,
                            "the first canary pausing at 10%", 120)
        newer = TrainedModel(models["v2"].directory, "2.1", models["v2"].sha256)
        apply(cluster, namespace, manifest(NAME, newer, steps=steps))
        restarted = wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("modelVersion")
                                == "2.1", "the canary restarted on v2.1", 60)
        assert restarted["canary"]["revision"] != first["canary"]["revision"]
        assert restarted["canary"]["stepIndex"] <= 1
        old = f"{NAME}-{first['canary']['revision']}"
        wait_for(lambda: old not in [d["metadata"]["name"] for d in deployments(cluster, namespace, NAME)],
                 "the superseded canary's Deployment removed")
        final = wait_status(cluster, namespace, NAME, _healthy_on("2.1"), "v2.1 promoted", 180)
    finally:
        load.stop()
    outcomes = [h["outcome"] for h in final["history"]]
    assert "Superseded" in outcomes and outcomes[-1] == "Promoted", outcomes
    assert load.results().failed == 0


def test_model_with_wrong_sha256_never_takes_traffic(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel]) -> None:
    stable = _deploy_stable(cluster, namespace, models["v1"])
    load = _load(cluster, namespace)
    try:
        apply(cluster, namespace, manifest(NAME, models["v2"], sha256="0" * 64))
        held = wait_status(cluster, namespace, NAME,
                           lambda s: "sha256" in " ".join(c.get("message", "") for c in s.get("conditions", [])),
                           "a condition naming the sha256 mismatch", 90)
    finally:
        load.stop()
    assert held["canary"]["observedWeight"] == 0
    assert held["stable"]["revision"] == stable["stable"]["revision"]
    results = load.results()
    assert results.ok_for(held["canary"]["revision"]) == 0
    assert results.failed == 0, results.failures[:5]
