"""The child-object builders: deterministic, owned, labelled, restricted, and revision-stable."""

from __future__ import annotations

import json

from modelops.api.spec import ModelDeploymentSpec
from modelops.resources import builders
from modelops.resources.naming import LABEL_REVISION, revision_of

SPEC = ModelDeploymentSpec.model_validate({
    "model": {"name": "iris", "version": "1", "uri": "file:///m/model.joblib", "sha256": "a" * 64},
    "serving": {"replicas": 3},
})


def test_revision_ignores_replicas_but_not_the_model_or_the_owner() -> None:
    scaled = SPEC.model_copy(update={"serving": SPEC.serving.model_copy(update={"replicas": 7})})
    assert revision_of("ns", "iris", scaled) == revision_of("ns", "iris", SPEC)
    newer = SPEC.model_copy(update={"model": SPEC.model.model_copy(update={"version": "2"})})
    assert revision_of("ns", "iris", newer) != revision_of("ns", "iris", SPEC)
    assert revision_of("other", "iris", SPEC) != revision_of("ns", "iris", SPEC)


def test_deployment_is_deterministic_owned_and_restricted() -> None:
    a = builders.deployment("iris", "ns", "uid-1", SPEC, "abc1234567", 3)
    b = builders.deployment("iris", "ns", "uid-1", SPEC, "abc1234567", 3)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["metadata"]["name"] == "iris-abc1234567"
    assert a["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert a["spec"]["selector"]["matchLabels"][LABEL_REVISION] == "abc1234567"
    pod = a["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"] + pod["initContainers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The artifact is verified before the server ever deserialises it.
    fetch = pod["initContainers"][0]["args"]
    assert fetch[:2] == ["fetch", "file:///m/model.joblib"] and "a" * 64 in fetch
    assert "--sha256" in pod["containers"][0]["args"]


def test_hpa_mode_the_autoscaler_targets_the_stable_deployment_and_applies_leave_replicas_alone() -> None:
    spec = ModelDeploymentSpec.model_validate({**SPEC.model_dump(by_alias=True, exclude_none=True), "serving": {
        "autoscaling": {"minReplicas": 2, "maxReplicas": 8, "targetCpuUtilization": 70}}})
    hpa = builders.autoscaler("iris", "ns", "uid-1", spec, "abc1234567")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris-abc1234567"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # An apply without replicas leaves the autoscaler's count as it is; the template is the same.
    free = builders.deployment("iris", "ns", "uid-1", spec, "abc1234567", None)
    sized = builders.deployment("iris", "ns", "uid-1", spec, "abc1234567", 5)
    assert "replicas" not in free["spec"] and sized["spec"]["replicas"] == 5
    assert free["metadata"]["annotations"] == sized["metadata"]["annotations"]


def test_from_serving_servers_log_where_the_job_reads_and_only_that_is_writable() -> None:
    from modelops.api.status import RetrainTrigger
    from modelops.resources.jobs import retrain_args
    from modelops.retraining.actions import CreateJob, JobParams

    spec = ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "pvc://models/iris/1/model.joblib", "sha256": "a" * 64},
        "retraining": {"triggers": {"drift": {"window": "2m"}},
                       "job": {"dataset": {"fromServing": True}, "output": {"uri": "pvc://models/iris/retrained"}}},
    })
    dep = builders.deployment("iris", "ns", "uid-1", spec, "abc1234567", 2)
    pod = dep["spec"]["template"]["spec"]
    server = pod["containers"][0]
    args = server["args"]
    logged = args[args.index("--log-requests-to") + 1]
    assert logged == "pvc://models/iris/retrained/served"  # one place, whichever revision serves
    assert args[args.index("--log-max-seconds") + 1] == "60"  # at most a minute, and the 2 m window is longer
    served = next(v for v in pod["volumes"] if v["name"] == "served-log")
    assert served["persistentVolumeClaim"] == {"claimName": "models", "readOnly": False}
    assert {"name": "served-log", "mountPath": "/mnt/pvc/models", "readOnly": False} in server["volumeMounts"]
    # The model's store stays read-only, and only the fetch step mounts it.
    assert all(m.get("readOnly") is not False for m in pod["initContainers"][0]["volumeMounts"])
    job = retrain_args(spec, CreateJob("iris-retrain-1", 1, JobParams(
        trigger=RetrainTrigger(at="2026-01-01T00:00:00Z", signal="Manual"), version="1-r1",
        output_uri="pvc://models/iris/retrained/iris-retrain-1", parent=None, current_dataset_sha256=None)))
    assert job[job.index("--from-serving") + 1] == logged
    # Without fromServing the servers log nothing.
    plain = builders.deployment("iris", "ns", "uid-1", SPEC, "abc1234567", 2)
    assert "--log-requests-to" not in plain["spec"]["template"]["spec"]["containers"][0]["args"]


def test_service_selects_every_revision_and_track_service_one() -> None:
    svc = builders.service("iris", "ns", "uid-1", SPEC)
    assert LABEL_REVISION not in svc["spec"]["selector"]
    track = builders.track_service("iris", "ns", "uid-1", SPEC, "canary", "abc1234567")
    assert track["metadata"]["name"] == "iris-canary"
    assert track["spec"]["selector"][LABEL_REVISION] == "abc1234567"


def test_pod_commands_are_what_the_cli_accepts() -> None:
    """The init step and the server are run as `modelops <args>`: the real parser must take them."""
    from modelops.cli.main import build_parser

    skops = ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "pvc://models/iris/model.skops", "format": "skops"}})
    for spec in (SPEC, skops):
        pod = builders.deployment("iris", "ns", "uid-1", spec, "abc1234567", 2)["spec"]["template"]["spec"]
        for container in pod["initContainers"] + pod["containers"]:
            args = build_parser().parse_args(container["args"])
            assert args.command == container["args"][0]
