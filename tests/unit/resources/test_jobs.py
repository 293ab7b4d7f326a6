"""The retraining Job: owned, deterministic, restricted, wired to its data, and it reports through the
termination message."""

from __future__ import annotations

import json
from typing import Any

from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import RetrainTrigger
from modelops.artifacts.uri import pvc_claim
from modelops.cli.main import build_parser
from modelops.resources.jobs import retrain_job
from modelops.resources.naming import LABEL_NAME, selector_labels
from modelops.retraining.actions import CreateJob, JobParams

PARENT = ModelSource(name="iris", version="1", uri="pvc://models/iris/1/model.joblib", sha256="a" * 64)


def spec(**job: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {
        "dataset": {"uri": "pvc://data/iris.csv", "targetColumn": "label", "sha256": "c" * 64},
        "holdout": {"uri": "s3://bucket/holdout.csv"},
        "output": {"uri": "pvc://models/iris/"},
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
        "deadline": "30m", "backoffLimit": 2, "serviceAccountName": "trainer", "credentialsSecret": "s3-creds",
        "args": ["--estimator", "forest"],
    }
    body.update(job)
    return ModelDeploymentSpec.model_validate({
        "model": PARENT.wire(), "serving": {"image": "registry.local/modelops:1"},
        "retraining": {"triggers": {"schedule": "@daily"}, "job": body,
                       "gate": {"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.01}},
    })


CREATE = CreateJob("iris-retrain-3", 3, JobParams(
    trigger=RetrainTrigger(at="2025-01-01T00:00:00Z", signal="Drift", value=0.4, samples=500, window="10m"),
    version="1-r3", output_uri="pvc://models/iris/iris-retrain-3", parent=PARENT, current_dataset_sha256="d" * 64))


def test_job_is_owned_deterministic_and_restricted() -> None:
    a = retrain_job("iris", "ns", "uid-1", spec(), CREATE)
    assert json.dumps(a, sort_keys=True) == json.dumps(retrain_job("iris", "ns", "uid-1", spec(), CREATE),
                                                       sort_keys=True)
    assert a["kind"] == "Job" and a["metadata"]["name"] == "iris-retrain-3"
    owner = a["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] is True
    assert a["spec"]["activeDeadlineSeconds"] == 1800 and a["spec"]["backoffLimit"] == 2
    pod = a["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "trainer"
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["image"] == "registry.local/modelops:1"  # the serving image by default
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["resources"] == {"limits": {"cpu": "2", "memory": "2Gi"}}
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    # The serving Services select by these labels: a training pod must never match them.
    labels = a["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_NAME] != selector_labels("iris")[LABEL_NAME]


def test_pvc_claims_are_mounted_read_write_and_s3_needs_none() -> None:
    pod = retrain_job("iris", "ns", "uid-1", spec(), CREATE)["spec"]["template"]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"data", "models"}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert "/mnt/pvc/data" in mounts and "/mnt/pvc/models" in mounts
    assert not any(m.get("readOnly") for m in mounts.values())
    assert pvc_claim("s3://bucket/x") is None and pvc_claim("pvc://c/x") == "c"


def test_args_parse_as_the_retrain_job_command() -> None:
    container = retrain_job("iris", "ns", "uid-1", spec(), CREATE)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["modelops"]
    args = build_parser().parse_args(container["args"])
    assert args.dataset == "pvc://data/iris.csv" and args.target == "label" and args.dataset_sha256 == "c" * 64
    assert args.output == "pvc://models/iris/iris-retrain-3" and args.version == "1-r3"
    assert args.current == PARENT.uri and args.current_sha256 == "a" * 64
    assert args.gate_metric == "accuracy" and args.min_value == 0.8 and args.min_improvement == 0.01
    assert args.skip_if_dataset_sha256 == "d" * 64
    assert json.loads(args.trigger)["signal"] == "Drift"
    assert [a for a in args.train_args if a != "--"] == ["--estimator", "forest"]


def test_from_serving_reads_the_servers_logs_under_the_output_prefix() -> None:
    s = spec(dataset={"fromServing": True})
    args = build_parser().parse_args(retrain_job("iris", "ns", "u", s, CREATE)["spec"]["template"]["spec"]
                                     ["containers"][0]["args"])
    assert args.from_serving == "pvc://models/iris/served" and args.dataset is None
