"""Pure builder of the retraining Job: `modelops retrain-job` (train, then gate) in the serving image.

Called by the controller when `next_retraining` returns a `CreateJob`; unit-tested without a
cluster. The Job is owned by the ModelDeployment (ownerReference controller=true), named
deterministically (`<mdep>-retrain-<n>`, so a restarted operator adopts it instead of starting
another), runs under the restricted Pod Security Standard like the serving pods, and reports its
result through `/dev/termination-log` (modelops.retraining.result), so the operator needs no access
to the storage. pvc:// URIs mount their claim read-write under PVC_ROOT; s3:// needs only the
credentials Secret as environment.
"""

from __future__ import annotations

import json
from typing import Any

from modelops.api.durations import parse_duration
from modelops.api.spec import DEFAULT_SERVER_IMAGE, DEFAULT_TRAINER_IMAGE, ModelDeploymentSpec
from modelops.artifacts.uri import PVC_ROOT, pvc_claim
from modelops.resources.builders import _CONTAINER_SECURITY, _POD_SECURITY, _resources, owner_reference
from modelops.resources.naming import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_NAME,
    LABEL_PART_OF,
    MANAGED_BY,
)
from modelops.resources.volumes import served_uri
from modelops.retraining.actions import CreateJob

TERMINATION_LOG = "/dev/termination-log"
RETRAIN_NAME = "modelops-retrain"  # app.kubernetes.io/name of Job pods: never selected by the serving Services
LABEL_RUN = "modelops.dev/retrain-run"
FINISHED_JOB_TTL_SECONDS = 86_400  # a day to read the logs of a finished run; the result is in status already


def job_labels(mdep: str, n: int, model: str) -> dict[str, str]:
    """Labels of a retraining Job and its pod (distinct from the serving pods' selector)."""
    return {LABEL_NAME: RETRAIN_NAME, LABEL_INSTANCE: mdep, LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_PART_OF: "modelops", LABEL_COMPONENT: "retrain", LABEL_MODEL: model, LABEL_RUN: str(n)}


def job_image(spec: ModelDeploymentSpec) -> str:
    """spec.retraining.job.image; unset: the trainer image next to the default server image, or the
    serving image itself when the user chose one (a custom image is taken to carry the trainer too)."""
    job = spec.retraining.job if spec.retraining is not None else None
    if job is not None and job.image:
        return job.image
    return DEFAULT_TRAINER_IMAGE if spec.serving.image == DEFAULT_SERVER_IMAGE else spec.serving.image


def _deadline_seconds(text: str) -> int:
    return max(1, int(parse_duration(text).total_seconds()))


def retrain_args(spec: ModelDeploymentSpec, create: CreateJob) -> list[str]:
    """`modelops retrain-job` arguments: data, output, the model to beat, the gate and the evidence."""
    retraining = spec.retraining
    if retraining is None:
        raise ValueError("spec.retraining is not set; there is no Job to build")
    job, params = retraining.job, create.params
    args = ["retrain-job", "--output", params.output_uri, "--format", spec.model.format,
            "--name", spec.model.name, "--version", params.version, "--pvc-root", PVC_ROOT,
            "--termination-log", TERMINATION_LOG, "--image", job_image(spec)]
    if job.dataset.from_serving:
        args += ["--from-serving", served_uri(job.output.uri)]
    else:
        assert job.dataset.uri is not None  # the API's validator: exactly one source
        args += ["--dataset", job.dataset.uri]
    if job.dataset.target_column:
        args += ["--target", job.dataset.target_column]
    if job.dataset.sha256:
        args += ["--dataset-sha256", job.dataset.sha256]
    if job.holdout is not None:
        args += ["--holdout", job.holdout.uri]
        if job.holdout.sha256:
            args += ["--holdout-sha256", job.holdout.sha256]
    if params.parent is not None:
        args += ["--current", params.parent.uri]
        if params.parent.sha256:
            args += ["--current-sha256", params.parent.sha256]
    gate = retraining.gate
    if gate is not None:
        args += ["--gate-metric", gate.metric, "--min-improvement", f"{gate.min_improvement:g}"]
        if gate.min_value is not None:
            args += ["--min-value", f"{gate.min_value:g}"]
        if gate.max_value is not None:
            args += ["--max-value", f"{gate.max_value:g}"]
    if params.current_dataset_sha256:
        args += ["--skip-if-dataset-sha256", params.current_dataset_sha256]
    args += ["--trigger", json.dumps(params.trigger.wire(), sort_keys=True, separators=(",", ":"))]
    if job.args:
        args += ["--", *job.args]
    return args


def retrain_job(mdep: str, namespace: str, uid: str, spec: ModelDeploymentSpec, create: CreateJob) -> dict[str, Any]:
    """The Job of run `create.n`: deterministic for the same inputs (server-side apply is a no-op)."""
    retraining = spec.retraining
    if retraining is None:
        raise ValueError("spec.retraining is not set; there is no Job to build")
    job = retraining.job
    labels = job_labels(mdep, create.n, spec.model.name)
    args = retrain_args(spec, create)
    uris = [u for u in (job.dataset.uri, job.holdout.uri if job.holdout else None, job.output.uri,
                        create.params.parent.uri if create.params.parent else None,
                        served_uri(job.output.uri) if job.dataset.from_serving else None) if u]
    claims = sorted({c for c in (pvc_claim(u) for u in uris) if c})
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    for claim in claims:
        volume = f"pvc-{claim}"[:63].rstrip("-")
        mounts.append({"name": volume, "mountPath": f"{PVC_ROOT}/{claim}"})
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
    container: dict[str, Any] = {
        "name": "retrain",
        "image": job_image(spec),
        "imagePullPolicy": "IfNotPresent",
        "command": ["modelops"],
        "args": args,
        "terminationMessagePath": TERMINATION_LOG,
        # The result JSON when the run wrote one; the log's tail when it crashed before that.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [{"name": "HOME", "value": "/tmp"}],
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }
    if job.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": job.credentials_secret}}]
    resources = _resources(job.resources.requests, job.resources.limits) if job.resources else {}
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "securityContext": _POD_SECURITY,
        "containers": [container],
        "volumes": volumes,
    }
    # Runs land where the model is served unless told otherwise (same node pool, same taints).
    if spec.serving.node_selector:
        pod["nodeSelector"] = dict(spec.serving.node_selector)
    if spec.serving.tolerations:
        pod["tolerations"] = [t.wire() for t in spec.serving.tolerations]
    if job.service_account_name:
        pod["serviceAccountName"] = job.service_account_name
    else:
        pod["automountServiceAccountToken"] = False
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": create.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {"modelops.dev/trigger": create.params.trigger.signal},
            "ownerReferences": [owner_reference(mdep, uid)],
        },
        "spec": {
            "backoffLimit": job.backoff_limit,
            "activeDeadlineSeconds": _deadline_seconds(job.deadline),
            "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
