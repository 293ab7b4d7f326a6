"""The retraining Job the builder makes is accepted by the real API server, and PodSecurity admission finds
nothing in it that violates the "restricted" standard (server-side dry run: no pod runs)."""

from __future__ import annotations

import json
import subprocess

import pytest
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import RetrainTrigger
from modelops.resources.jobs import retrain_job
from modelops.retraining.actions import CreateJob, JobParams

from devcluster.localcluster import Cluster

pytestmark = pytest.mark.integration


def test_job_passes_validation_and_restricted_admission(cluster: Cluster, namespace: str) -> None:
    # For workload objects PodSecurity only warns (enforce applies to pods), so the warning is what we check.
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/warn=restricted", "pod-security.kubernetes.io/warn-version=latest")
    parent = ModelSource(name="iris", version="1", uri="pvc://models/iris/1/model.joblib", sha256="a" * 64)
    spec = ModelDeploymentSpec.model_validate({
        "model": parent.wire(),
        "retraining": {"triggers": {"schedule": "@daily"},
                       "job": {"dataset": {"uri": "pvc://data/iris.csv", "targetColumn": "label"},
                               "holdout": {"uri": "pvc://data/holdout.csv"}, "output": {"uri": "pvc://models/iris"},
                               "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                               "credentialsSecret": "s3-creds", "args": ["--estimator", "forest"]},
                       "gate": {"metric": "accuracy", "minValue": 0.8}},
    })
    create = CreateJob("iris-retrain-1", 1, JobParams(
        trigger=RetrainTrigger(at="2025-01-01T00:00:00Z", signal="Schedule"), version="1-r1",
        output_uri="pvc://models/iris/iris-retrain-1", parent=parent, current_dataset_sha256=None))
    body = retrain_job("iris", namespace, "0b3c3a3e-0000-4000-8000-000000000001", spec, create)
    proc = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "create",
                           "--dry-run=server", "-o", "json", "-f", "-"],
                          input=json.dumps(body), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "PodSecurity" not in proc.stderr, proc.stderr
    created = json.loads(proc.stdout)
    assert created["metadata"]["name"] == "iris-retrain-1"
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
