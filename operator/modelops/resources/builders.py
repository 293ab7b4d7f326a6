"""Pure builders of the child objects a ModelDeployment owns: one Deployment per revision and
the Services that select them. Plain dicts in, plain dicts out, byte-for-byte deterministic so
that server-side apply of an unchanged object is a no-op.

Called by the controller on every reconcile; unit-tested without a cluster.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from modelops.api.compute import ResourceList
from modelops.api.durations import parse_duration
from modelops.api.spec import ModelDeploymentSpec
from modelops.resources.naming import (
    LABEL_COMPONENT,
    LABEL_MODEL,
    LABEL_REVISION,
    LABEL_VERSION,
    common_labels,
    deployment_name,
    revision_selector,
    selector_labels,
    service_name,
    track_service_name,
)
from modelops.resources.volumes import (
    SERVED_VOLUME,
    credentials_env_from,
    model_store_mounts,
    pvc_volume,
    served_uri,
)

MODEL_DIR = "/models/current"
PRESTOP_SLEEP_SECONDS = 3
OWNER_API_VERSION = "modelops.dev/v1alpha1"
OWNER_KIND = "ModelDeployment"
TEMPLATE_HASH = "modelops.dev/template-hash"
# Serving pods' requests when spec.serving.resources gives none (spec.serving.resources.requests overrides).
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}
STARTUP_SECONDS = 300


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": OWNER_API_VERSION,
        "kind": OWNER_KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _resources(requests: ResourceList | None, limits: ResourceList | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests is not None and requests.wire():
        out["requests"] = requests.wire()
    if limits is not None and limits.wire():
        out["limits"] = limits.wire()
    return out


# The "restricted" Pod Security Standard, for the pod and each container.
_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                 "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                       "capabilities": {"drop": ["ALL"]}}


def fetch_args(spec: ModelDeploymentSpec) -> list[str]:
    """The init step: fetch and verify the artifact before anything deserialises it."""
    args = ["fetch", spec.model.uri, "--output", MODEL_DIR]
    if spec.model.sha256:
        args += ["--sha256", spec.model.sha256]
    return args


def serve_args(spec: ModelDeploymentSpec, revision: str) -> list[str]:
    s = spec.serving
    args = ["serve", MODEL_DIR, "--host", "0.0.0.0", "--port", str(s.port), "--grpc-port", str(s.grpc_port),
            "--name", spec.model.name, "--version", spec.model.version, "--revision", revision,
            "--workers", str(s.workers), "--max-batch-size", str(s.batching.max_batch_size),
            "--max-latency-ms", f"{s.batching.max_latency_ms:g}"]
    if spec.model.sha256:
        args += ["--sha256", spec.model.sha256]
    args += ["--drift-window", f"{drift_window_seconds(spec):g}"]
    served = served_log(spec)
    if served is not None:
        # Files reach the store at least once per drift window: the data a trigger saw is there
        # for the Job it starts.
        args += ["--log-requests-to", served, "--log-max-seconds", f"{min(60.0, drift_window_seconds(spec)):g}"]
    return args


def served_log(spec: ModelDeploymentSpec) -> str | None:
    """The request log the servers write when retraining trains on served data (fromServing), else None."""
    retraining = spec.retraining
    if retraining is None or not retraining.job.dataset.from_serving:
        return None
    return served_uri(retraining.job.output.uri)


def drift_window_seconds(spec: ModelDeploymentSpec) -> float:
    """The servers' PSI window: the retraining drift trigger's window when set, else monitoring's."""
    drift = spec.retraining.triggers.drift if spec.retraining is not None else None
    window = drift.window if drift is not None else spec.monitoring.drift.window
    return parse_duration(window).total_seconds()


def template_hash(template: dict[str, Any]) -> str:
    """A digest of a pod template as this operator version builds it: when a new operator version
    builds a different template for a running revision, the controller rolls it out deliberately."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def deployment(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec, revision: str,
               replicas: int | None) -> dict[str, Any]:
    """The Deployment that runs one revision of the model (annotated with its template's hash).

    `replicas` None leaves the field out: in HPA mode the autoscaler owns the stable track's count,
    and an apply that names it would take it back."""
    body = _deployment(name, namespace, uid, spec, revision, replicas or 0)
    body["metadata"]["annotations"] = {TEMPLATE_HASH: template_hash(body["spec"]["template"])}
    if replicas is None:
        del body["spec"]["replicas"]
    return body


def _owned_metadata(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """Metadata of a child named like its ModelDeployment (autoscaler, disruption budget)."""
    return {"name": name, "namespace": namespace,
            "labels": {**common_labels(name), LABEL_MODEL: spec.model.name},
            "ownerReferences": [owner_reference(name, uid)]}


def autoscaler(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec, stable_revision: str) -> dict[str, Any]:
    """HPA mode: the HorizontalPodAutoscaler of the stable track (it follows the stable revision on promotion)."""
    scaling = spec.serving.autoscaling
    if scaling is None:
        raise ValueError("autoscaler() needs spec.serving.autoscaling")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _owned_metadata(name, namespace, uid, spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": deployment_name(name, stable_revision)},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": scaling.target_cpu_utilization}}}],
        },
    }


def _deployment(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec, revision: str,
                replicas: int) -> dict[str, Any]:
    s = spec.serving
    labels = {**common_labels(name), LABEL_REVISION: revision, LABEL_MODEL: spec.model.name,
              LABEL_VERSION: spec.model.version, LABEL_COMPONENT: "server"}
    store_volumes, store_mounts = model_store_mounts(spec.model.uri)
    served = served_log(spec)
    served_mounts: list[dict[str, Any]] = []
    if served is not None and served.startswith("pvc://"):
        # The request log is the one thing a server writes: its claim read-write, for the server alone.
        volume, mount, _ = pvc_volume(served, read_only=False, name=SERVED_VOLUME)
        store_volumes = [*store_volumes, volume]
        served_mounts = [mount]
    env_from = {"envFrom": credentials_env_from(spec.model.credentials_secret)} if spec.model.credentials_secret else {}
    container: dict[str, Any] = {
        "name": "server",
        "image": s.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["modelops"],
        "args": serve_args(spec, revision),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "ports": [{"name": "http", "containerPort": s.port, "protocol": "TCP"},
                  {"name": "grpc", "containerPort": s.grpc_port, "protocol": "TCP"}],
        # The server listens only once its model is loaded: up to 5 minutes for that, then liveness.
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"},
                         "periodSeconds": 2, "failureThreshold": STARTUP_SECONDS // 2},
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"},
                           "periodSeconds": 2, "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"},
                          "periodSeconds": 10, "failureThreshold": 3},
        "env": [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/metrics"}],
        **env_from,
        # Keep serving while endpoint removal reaches every proxy, then drain (SIGTERM).
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"},
                         *served_mounts],
    }
    # Never BestEffort: without requests the scheduler packs pods blindly and they are evicted first.
    requests = s.resources.requests if s.resources and s.resources.requests else None
    limits = s.resources.limits if s.resources else None
    container["resources"] = _resources(requests or ResourceList.model_validate(DEFAULT_REQUESTS), limits)
    init: dict[str, Any] = {
        "name": "fetch-model",
        "image": s.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["modelops"],
        "args": fetch_args(spec),
        # A failed verification's message (expected vs actual digest) becomes the pod's status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        **env_from,
        "securityContext": _CONTAINER_SECURITY,
        "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"},
                         *store_mounts],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name, revision),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": revision_selector(name, revision)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(s.port),
                                    "prometheus.io/path": "/metrics"},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": _POD_SECURITY,
                    "initContainers": [init],
                    "containers": [container],
                    "volumes": [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}, *store_volumes],
                    **({"nodeSelector": dict(s.node_selector)} if s.node_selector else {}),
                    **({"tolerations": [t.wire() for t in s.tolerations]} if s.tolerations else {}),
                    # Spread a revision's pods over nodes and zones when the cluster allows it.
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                         "labelSelector": {"matchLabels": revision_selector(name, revision)}}
                        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")],
                },
            },
        },
    }


def disruption_budget(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """One PodDisruptionBudget over every serving pod of the ModelDeployment: a drain takes one at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _owned_metadata(name, namespace, uid, spec),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}},
    }


def service(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The Service clients call: it selects every serving pod of the ModelDeployment."""
    return _service(service_name(name), namespace, name, uid, spec, selector_labels(name))


def track_service(name: str, namespace: str, uid: str, spec: ModelDeploymentSpec, track: str,
                  revision: str) -> dict[str, Any]:
    """A Service over one track (stable or canary), a weighted backend of an HTTPRoute."""
    return _service(track_service_name(name, track), namespace, name, uid, spec,
                    revision_selector(name, revision))


def _service(svc: str, namespace: str, owner: str, uid: str, spec: ModelDeploymentSpec,
             selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": svc,
            "namespace": namespace,
            "labels": {**common_labels(owner), LABEL_MODEL: spec.model.name},
            "ownerReferences": [owner_reference(owner, uid)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
                      # OIP v2 gRPC: cleartext HTTP/2, named so meshes and Gateway API route it as such.
                      {"name": "grpc", "port": spec.serving.grpc_port, "targetPort": "grpc", "protocol": "TCP",
                       "appProtocol": "kubernetes.io/h2c"}],
        },
    }
