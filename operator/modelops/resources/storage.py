"""Where model storage lives inside a pod: ``pvc://`` URIs as real volumes, and object-store credentials.

Pure helpers shared by the serving Deployment builder (the claim mounted read-only for the fetch
step), the retraining Job builder (read-write), and the code in the pod that resolves a URI
(``modelops fetch``, the request log, ``modelops dataset build``): they all agree that
``pvc://<claim>/<path>`` is the file ``/mnt/pvc/<claim>/<path>``, because the builders mount the
claim there. Plain data in and out; no I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import PurePosixPath
from typing import Any

PVC_ROOT = "/mnt/pvc"
MODEL_STORE_VOLUME = "model-store"
# A PersistentVolumeClaim name is a DNS-1123 subdomain.
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class StorageURIError(ValueError):
    """A storage URI that cannot name a place inside a volume; the message says which part is wrong."""


def parse_pvc_uri(uri: str) -> tuple[str, PurePosixPath]:
    """``pvc://<claim>/<path>`` -> (claim, relative path). Refuses '..', absolute paths and bad claim names
    in either part, so a URI can never reach outside the claim's mount."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "pvc":
        raise StorageURIError(f"{uri}: not a pvc:// URI")
    claim = urllib.parse.unquote(parsed.netloc)
    if not claim:
        raise StorageURIError(f"{uri}: the claim is missing (expected pvc://<claim>/<path>; an absolute path "
                              "is not a claim)")
    if "/" in claim or claim in (".", "..") or len(claim) > 253 or not _CLAIM.match(claim):
        raise StorageURIError(f"{uri}: claim {claim!r} is not a PersistentVolumeClaim name "
                              "(lower-case DNS-1123 subdomain, no '..' or '/')")
    raw = urllib.parse.unquote(parsed.path)
    if raw.startswith("//"):
        raise StorageURIError(f"{uri}: the path inside claim {claim!r} must be relative, got {raw[1:]!r}")
    rel = PurePosixPath(raw.lstrip("/"))
    if ".." in rel.parts:
        raise StorageURIError(f"{uri}: the path inside claim {claim!r} must not contain '..'")
    return claim, rel


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
