"""Where model storage lives inside a pod: ``pvc://`` URIs as real volumes, and object-store credentials.

Pure helpers of the serving Deployment builder (the claim mounted read-only for the fetch step) and
the retraining Job builder (read-write). They mount a claim at ``PVC_ROOT/<claim>``, which is where
the code in the pod (modelops.artifacts.uri, through the artifact store) looks for
``pvc://<claim>/<path>``. Plain data in and out; no I/O.
"""

from __future__ import annotations

from typing import Any

from modelops.artifacts.uri import PVC_ROOT, parse_pvc_uri

MODEL_STORE_VOLUME = "model-store"


def pvc_mount_path(claim: str) -> str:
    return f"{PVC_ROOT}/{claim}"


def pvc_volume(uri: str, read_only: bool, name: str = MODEL_STORE_VOLUME) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The pod volume, the container volumeMount and the in-pod path of a ``pvc://`` URI.

    Servers mount read-only (a server never writes its model store); training Jobs read-write.
    """
    claim, rel = parse_pvc_uri(uri)
    volume = {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
    mount = {"name": name, "mountPath": pvc_mount_path(claim), "readOnly": read_only}
    local = pvc_mount_path(claim) + ("/" + str(rel) if rel.parts else "")
    return volume, mount, local


SERVED_VOLUME = "served-log"


def served_uri(output_uri: str) -> str:
    """Where the servers log what they serve (spec.retraining.job.dataset.fromServing): `served/` under
    the retraining output prefix, where the retrained models go. One place per ModelDeployment, whatever
    revision serves (Git's model, a canary, a promoted retrain), so the next run reads everything
    served since; the servers write there and the retraining Job reads it."""
    return output_uri.rstrip("/") + "/served"


def credentials_env_from(secret: str | None) -> list[dict[str, Any]]:
    """envFrom entries exposing an object-store credentials Secret (AWS_ACCESS_KEY_ID, ...) to a container.

    The kubelet reads the Secret into the pod's environment; the operator never reads it.
    """
    return [{"secretRef": {"name": secret}}] if secret else []


def model_store_mounts(uri: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, fetch-step volumeMounts) that bring a model URI's storage into the pod: the claim,
    read-only, for ``pvc://``; nothing for URIs fetched over the network."""
    if not uri.startswith("pvc://"):
        return [], []
    volume, mount, _ = pvc_volume(uri, read_only=True)
    return [volume], [mount]
