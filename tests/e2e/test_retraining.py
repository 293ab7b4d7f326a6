"""End-to-end retraining on the real control plane: real servers export drift, the operator
triggers a Job whose pod really runs `modelops retrain-job` (the kubelet stand-in honours its
termination message), the gate scores the candidate on a frozen holdout, and the candidate goes out
through the canary steps, all without writing spec.

Timings are compressed (a 20 s drift window, a 2 s forDuration); each scenario waits on observable
state, never on sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from demo.scenario import (
    SHIFT,
    TrainedModel,
    apply,
    condition,
    events,
    get,
    manifest,
    retraining_spec,
    shifted_labelled_rows,
    shifted_rows,
    uri_for,
    wait_status,
    write_shifted_csv,
)
from devcluster.chart import ChartOperator
from devcluster.localcluster import Cluster
from devcluster.prometheus import Prometheus
from devcluster.realnode import NodeSet
from devcluster.traffic import LoadGenerator
from tests.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
NAME = "iris"


def _retraining_manifest(model: TrainedModel, root: Path, *, dataset: Path, gate: dict[str, Any] | None,
                         cooldown: str = "10m", max_rejections: int = 3) -> dict[str, Any]:
    obj = manifest(NAME, model, steps=[{"setWeight": 50}, {"pause": {"duration": "2s"}}], min_requests=5)
    obj["spec"]["retraining"] = retraining_spec(dataset, root / "holdout.csv", root / "out", gate=gate,
                                                cooldown=cooldown, max_rejections=max_rejections)
    return obj


def _retrain_by_hand(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """`kubectl modelops retrain`, then the status once the run's Job is in it."""
    cluster.kubectl("modelops", "retrain", NAME, "-n", namespace)
    return wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("job")), "the run's Job", 60)


def _outcome(st: dict[str, Any]) -> str | None:
    return (_retraining(st).get("lastResult") or {}).get("outcome")


def _jobs(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return list(get(cluster, namespace, "jobs").get("items", []))


def _retraining(st: dict[str, Any]) -> dict[str, Any]:
    return dict(st.get("retraining") or {})


def _diagnosis(cluster: Cluster, namespace: str) -> str:
    """What a person would look at when a scenario times out: retraining status, Jobs, their pods, Events."""
    st = get(cluster, namespace, "mdep", NAME).get("status") or {}
    pods = [(p["metadata"]["name"], p["status"].get("phase"), [
        (c.get("name"), c.get("state")) for c in p["status"].get("containerStatuses") or []])
        for p in get(cluster, namespace, "pods", "-l", "app.kubernetes.io/component=retrain").get("items", [])]
    jobs = [(j["metadata"]["name"], j.get("status")) for j in _jobs(cluster, namespace)]
    reasons = [(e["reason"], e["message"][:200]) for e in events(cluster, namespace, NAME)][-12:]
    return json.dumps({"retraining": st.get("retraining"), "message": st.get("message"), "jobs": jobs,
                       "pods": pods, "events": reasons}, indent=1, default=str)[:6000]


@pytest.fixture(autouse=True)
def diagnose_on_failure(request: pytest.FixtureRequest, cluster: Cluster, namespace: str) -> Any:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\nretraining diagnosis:\n" + _diagnosis(cluster, namespace))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_shifted_csv(tmp_path / "holdout.csv", SHIFT, seed=1)
    write_shifted_csv(tmp_path / "shifted.csv", SHIFT, seed=2, copies=3)
    (tmp_path / "out").mkdir()
    return tmp_path


def test_drift_triggers_one_job_whose_candidate_passes_the_gate_and_is_promoted(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    apply(cluster, namespace, _retraining_manifest(
        models["v1"], data, dataset=data / "shifted.csv",
        gate={"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.05}))
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=400,
                       rows=shifted_rows):
        st = wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("lastTriggered")),
                         "a drift trigger", 120)
        assert _retraining(st)["lastTriggered"]["signal"] == "Drift"
        st = wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("candidate")),
                         "the Job's candidate", 240)
        candidate = _retraining(st)["candidate"]
        assert candidate["gate"]["passed"] is True
        assert candidate["gate"]["candidate"] >= candidate["gate"]["current"] + 0.05
        promoted = wait_status(
            cluster, namespace, NAME,
            lambda s: s.get("phase") == "Healthy" and (s.get("stable") or {}).get("model", {}).get(
                "sha256") == candidate["sha256"], "the candidate promoted", 240)
    jobs = _jobs(cluster, namespace)
    assert [j["metadata"]["name"] for j in jobs] == [f"{NAME}-retrain-1"]
    assert promoted["stable"]["model"]["sha256"] == candidate["sha256"]
    # Spec still says v1: the operator never writes it; export prints the patch to commit.
    mdep = get(cluster, namespace, "mdep", NAME)
    assert mdep["spec"]["model"]["version"] == "1"
    reasons = [e["reason"] for e in events(cluster, namespace, NAME)]
    assert reasons.count("RetrainTriggered") == 1
    assert "RetrainPromoted" in reasons
    exported = cluster.kubectl("modelops", "retrain", "export", NAME, "-n", namespace, "-o", "json")
    assert json.loads(exported)["spec"]["model"]["sha256"] == candidate["sha256"]


def test_a_candidate_trained_on_shuffled_labels_is_rejected_by_the_gate_and_nothing_rolls(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    obj = _retraining_manifest(models["v1"], data, dataset=data / "shifted.csv",
                               gate={"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.05})
    obj["spec"]["retraining"]["job"]["args"] = ["--shuffle-labels"]
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    before = get(cluster, namespace, "mdep", NAME)["status"]["stable"]["revision"]
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=400,
                       rows=shifted_rows):
        st = wait_status(cluster, namespace, NAME,
                         lambda s: (_retraining(s).get("lastResult") or {}).get("outcome") == "Rejected",
                         "the candidate rejected", 300)
    assert st["stable"]["revision"] == before and not (st.get("canary") or {}).get("revision")
    rejected = [e for e in events(cluster, namespace, NAME) if e["reason"] == "CandidateRejected"]
    assert len(rejected) == 1 and "accuracy" in rejected[0]["message"]
    # Drift persists, and the cooldown drops further triggers: still exactly one Job.
    wait_for(lambda: any(e["reason"] == "RetrainSkipped" and "Cooldown" in e["message"]
                         for e in events(cluster, namespace, NAME)), "a trigger dropped by the cooldown",
             timeout=120)
    assert len(_jobs(cluster, namespace)) == 1


def test_an_unchanged_dataset_is_no_new_data(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    # The dataset the current model was trained on: retraining on it again would change nothing.
    obj = _retraining_manifest(models["v1"], data, dataset=data / "shifted.csv", gate=None)
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    # Unshifted traffic: the first candidate's canary has requests to judge, and no drift trigger fires.
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=20, duration_s=400):
        cluster.kubectl("modelops", "retrain", NAME, "-n", namespace)
        first = wait_status(cluster, namespace, NAME,
                            lambda s: (_retraining(s).get("lastResult") or {}).get("outcome") in (
                                "CandidateRecorded", "Promoted", "Skipped", "JobFailed"),
                            "the first run's result", 240)
        assert (first.get("retraining") or {}).get("lastResult", {}).get("outcome") != "JobFailed", first
        wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Healthy" and not (
            s.get("canary") or {}).get("revision"), "the first candidate settled", 240)
        cluster.kubectl("modelops", "retrain", NAME, "-n", namespace)
        wait_for(lambda: any(e["reason"] == "RetrainSkipped" and e["message"].startswith("NoNewData")
                             for e in events(cluster, namespace, NAME)), "NoNewData", timeout=240)
    assert condition(get(cluster, namespace, "mdep", NAME)["status"], "Ready").get("status") == "True"


# Two full retrain cycles around a one-minute cooldown (about 2 minutes): in `make test-faults`.
@pytest.mark.faults
def test_gate_off_a_bad_candidate_is_rolled_back_by_the_canary_and_repeats_end_in_retrain_blocked(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        prometheus: Prometheus, models: dict[str, TrainedModel], data: Path) -> None:
    # No gate: nothing scores the shuffled-label candidate before it takes traffic. The canary's
    # analysis reads its accuracy from the servers' feedback gauges (the load generator labels every
    # answered prediction), so the canary is what catches it.
    accuracy = {"name": "canary-accuracy", "min": 0.8, "prometheus": {
        "query": 'min(modelops_feedback_accuracy{model="$model",revision="$revision"})'}}
    obj = manifest(NAME, models["v1"], steps=[{"setWeight": 50}, {"analysis": {"count": 3}}], min_requests=5,
                   metrics=[{"name": "errors", "builtin": "errorRate", "max": 0.02}, accuracy],
                   prometheus_url=prometheus.url)
    obj["spec"]["retraining"] = retraining_spec(data / "shifted.csv", data / "holdout.csv", data / "out", gate=None,
                                                cooldown="1m", max_rejections=2)
    obj["spec"]["retraining"]["job"]["args"] = ["--shuffle-labels"]
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    before = get(cluster, namespace, "mdep", NAME)["status"]["stable"]
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=500,
                       labelled_rows=shifted_labelled_rows) as load:
        first = wait_status(cluster, namespace, NAME, lambda s: _outcome(s) == "RolledBack",
                            "the first candidate rolled back by the canary", 240)
        assert _retraining(first)["consecutiveRejections"] == 1 and not _retraining(first).get("blocked")
        # Drift persists; after the cooldown the loop tries again, and the second rollback blocks it.
        blocked = wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("blocked")),
                              "RetrainBlocked after the second rollback", 300)
        assert load.results().labelled > 0
    rs = _retraining(blocked)
    assert rs["consecutiveRejections"] == 2 and rs["runs"]["count"] == 2
    assert condition(blocked, "RetrainBlocked").get("status") == "True"
    assert [j["metadata"]["name"] for j in _jobs(cluster, namespace)] == [f"{NAME}-retrain-1", f"{NAME}-retrain-2"]
    # The stable model never changed; each candidate took canary traffic and was judged on it.
    assert blocked["stable"]["revision"] == before["revision"]
    assert blocked["stable"]["model"]["sha256"] == models["v1"].sha256
    reasons = [e["reason"] for e in events(cluster, namespace, NAME)]
    assert reasons.count("RetrainRolledBack") == 2 and reasons.count("RetrainBlocked") == 1, reasons
    assert "CandidateRejected" not in reasons
    rollbacks = [e["message"] for e in events(cluster, namespace, NAME) if e["reason"] == "RetrainRolledBack"]
    assert all("canary-accuracy" in m for m in rollbacks), rollbacks


def test_a_git_edit_of_spec_model_during_the_job_supersedes_its_candidate(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    obj = _retraining_manifest(models["v1"], data, dataset=data / "shifted.csv", gate=None)
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=20, duration_s=400):
        _retrain_by_hand(cluster, namespace)
        # Git moves on while the run is under way: spec.model is v2 now.
        obj["spec"]["model"] = {**obj["spec"]["model"], "version": models["v2"].version,
                                "uri": models["v2"].uri, "sha256": models["v2"].sha256}
        apply(cluster, namespace, obj)
        st = wait_status(cluster, namespace, NAME, lambda s: _outcome(s) == "Superseded", "the run superseded", 240)
        end = wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Healthy" and (
            s.get("stable") or {}).get("model", {}).get("sha256") == models["v2"].sha256, "v2 (Git's) stable", 240)
    assert not _retraining(st).get("candidate") and not _retraining(end).get("candidate")
    assert [e["source"] for e in end["history"] if e.get("source")].count("Retrain") == 0, end["history"]
    superseded = [e["message"] for e in events(cluster, namespace, NAME) if e["reason"] == "CandidateSuperseded"]
    assert len(superseded) == 1 and "spec.model changed" in superseded[0], superseded
    assert [j["metadata"]["name"] for j in _jobs(cluster, namespace)] == [f"{NAME}-retrain-1"]


# Also a property of the pure evaluator (tests/unit/retraining); this run on real servers takes a minute:
# in `make test-faults`.
@pytest.mark.faults
def test_windows_below_min_samples_never_trigger(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    apply(cluster, namespace, _retraining_manifest(models["v1"], data, dataset=data / "shifted.csv", gate=None))
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    seen: list[dict[str, Any]] = []
    # The same moved world, but 2 requests a second: a 20 s window holds about 40 rows, below minSamples 100.
    # 28 s: the window is full of moved rows for the last 8 s (forDuration is 2 s).
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=2, duration_s=28,
                       rows=shifted_rows) as load:
        with pytest.raises(AssertionError, match="timed out"):
            wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("lastTriggered")) or bool(
                _retraining(s).get("breachSince")), "a trigger or a breach", 28, seen=seen)
        assert load.results().ok >= 40
    assert seen and not any(_retraining(s).get("breachSince") for s in seen)
    assert not _jobs(cluster, namespace)
    # The drift was there all along: with enough rows per window the same shift triggers.
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=120,
                       rows=shifted_rows):
        st = wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("lastTriggered")),
                         "a trigger once windows are full", 90)
    assert _retraining(st)["lastTriggered"]["samples"] >= 100


@pytest.mark.faults
def test_the_operator_killed_mid_job_adopts_the_job_and_starts_no_second_one(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], data: Path) -> None:
    apply(cluster, namespace, _retraining_manifest(models["v1"], data, dataset=data / "shifted.csv", gate=None))
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=20, duration_s=400):
        started = _retrain_by_hand(cluster, namespace)
        # Status is written before the Job is created: kill once the Job exists, so it runs unwatched.
        wait_for(lambda: bool(_jobs(cluster, namespace)), "the Job created", timeout=30)
        operator.kill()
        # The run finishes while no operator watches; its result waits in the termination message.
        wait_for(lambda: any((j.get("status") or {}).get("succeeded") for j in _jobs(cluster, namespace)),
                 "the Job done with the operator down", timeout=180)
        operator.start()
        end = wait_status(cluster, namespace, NAME, lambda s: _outcome(s) == "Promoted" and s.get("phase") == "Healthy",
                          "the adopted Job's candidate promoted", 240)
    job = started["retraining"]["job"]["name"]
    assert job == f"{NAME}-retrain-1"
    assert [j["metadata"]["name"] for j in _jobs(cluster, namespace)] == [job]
    assert _retraining(end)["runs"]["count"] == 1 and _retraining(end)["lastResult"]["job"] == job
    reasons = [e["reason"] for e in events(cluster, namespace, NAME)]
    assert reasons.count("RetrainTriggered") == 1 and reasons.count("RetrainPromoted") == 1, reasons


@pytest.mark.xfail(strict=True, reason=(
    "found on the real node, not fixed yet: the candidate trained on served data never gets Ready pods "
    "(canary 0/2 ready), while a candidate trained from a dataset file is promoted; its pods mount the "
    "same claim twice (model store read-only, request log read-write)"))
def test_the_loop_closes_from_production_data_alone(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        models: dict[str, TrainedModel], tmp_path: Path) -> None:
    # Nothing from outside: the servers log what they serve under the retraining output prefix, clients
    # label their predictions through the feedback endpoint, and the Job trains on that join.
    v1 = models["v1"]
    (tmp_path / "out").mkdir()
    obj = manifest(NAME, v1, steps=[{"setWeight": 50}, {"pause": {"duration": "2s"}}], min_requests=5)
    retraining = retraining_spec(tmp_path / "unused.csv", tmp_path / "unused.csv", tmp_path / "out", gate=None)
    retraining["job"]["dataset"] = {"fromServing": True}
    retraining["job"].pop("holdout")
    retraining["triggers"]["drift"]["forDuration"] = "1h"  # the run is asked for by hand, once data is logged
    obj["spec"]["retraining"] = retraining
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    served = tmp_path / "out" / "served"
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=300,
                       labelled_rows=shifted_labelled_rows) as load:
        # The servers write their log at least once per drift window (20 s here).
        wait_for(lambda: any((served / "labels").glob("*.parquet")) and any((served / "requests").glob("*.parquet")),
                 "the servers' request log and labels on disk", timeout=90)
        assert load.results().labelled > 0
        cluster.kubectl("modelops", "retrain", NAME, "-n", namespace)
        st = wait_status(cluster, namespace, NAME, lambda s: bool(_retraining(s).get("candidate"))
                         or _outcome(s) == "JobFailed", "a candidate trained on served data", 180)
        assert _outcome(st) != "JobFailed", _retraining(st).get("lastResult")
        candidate = _retraining(st)["candidate"]
        assert candidate["rows"] > 100  # labelled rows of the moved world, nothing else
        wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Healthy" and (s.get("stable") or {}).get(
            "model", {}).get("sha256") == candidate["sha256"], "the candidate promoted", 180)
    out = tmp_path / "out" / candidate["job"]
    lineage = json.loads((out / "metadata.json").read_text())["lineage"]
    assert lineage["dataset"]["uri"] == uri_for(served)
