"""Names, labels and the revision hash shared by every child object of a ModelDeployment.

Called by the builders in this package, by the controller (to find children) and by tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from modelops.api.spec import ModelDeploymentSpec

MANAGED_BY = "modelops"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_REVISION = "modelops.dev/revision"
LABEL_MODEL = "modelops.dev/model"
SERVER_NAME = "modelops-server"
REVISION_LENGTH = 10


def written(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A model as the user wrote it: values equal to their defaults left out, at every depth.

    Whether a default was written out or left implicit (or filled in by the API server from the CRD's
    schema) makes no difference, so a field a newer operator adds with a default hashes like before.
    """
    return model.model_dump(by_alias=True, exclude_defaults=True, exclude=exclude, mode="json")


def revision_of(namespace: str, name: str, spec: ModelDeploymentSpec) -> str:
    """A stable hash of what the user asked the serving pods to run: the model and the serving
    template, not replicas or autoscaling, and not defaults.

    Defaults are left out (`written`) so that an operator upgrade adding a defaulted field does not
    change every revision and re-canary every model; a changed default reaches running pods through
    the pod template, not through the revision. The ModelDeployment's identity is part of the hash,
    so that two of them serving the same model never share a revision, and metrics selected by
    revision never mix.
    """
    runs = {
        "owner": f"{namespace}/{name}",
        "model": written(spec.model),
        "serving": written(spec.serving, exclude={"replicas", "autoscaling"}),
    }
    digest = hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()
    return digest[:REVISION_LENGTH]


# What the revision hash of operator 0.1.0 covered (every field, defaults included), so that the
# revisions it made are still recognised: see `desired_revision`.
_LEGACY_MODEL: set[str] = {"name", "version", "uri", "sha256", "format"}
_LEGACY_SERVING: dict[str, Any] = {
    **dict.fromkeys(("replicas", "image", "workers", "port", "resources", "node_selector", "tolerations"), True),
    "batching": {"max_batch_size", "max_latency_ms"},
}


def legacy_revision_of(namespace: str, name: str, spec: ModelDeploymentSpec) -> str:
    """The revision operator 0.1.0 gave this spec: defaults included, fields it did not know left out."""
    runs = {
        "owner": f"{namespace}/{name}",
        "model": spec.model.model_dump(by_alias=True, exclude_none=True, mode="json", include=_LEGACY_MODEL),
        "serving": spec.serving.model_copy(update={"replicas": 0}).model_dump(
            by_alias=True, exclude_none=True, mode="json", include=_LEGACY_SERVING),
    }
    digest = hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()
    return digest[:REVISION_LENGTH]


def desired_revision(namespace: str, name: str, spec: ModelDeploymentSpec, running: Iterable[str | None]) -> str:
    """The revision the controller should want for `spec`, given the revisions running now (stable, canary).

    Normally `revision_of`. But a track an older operator started for this very spec carries that
    operator's hash of it; wanting the new hash would re-canary every model on the upgrade that
    changed the hash. So a running revision equal to the legacy hash of this spec is kept, until the
    user changes what the pods run.
    """
    legacy = legacy_revision_of(namespace, name, spec)
    return legacy if legacy in set(running) else revision_of(namespace, name, spec)


def deployment_name(mdep: str, revision: str) -> str:
    return f"{mdep}-{revision}"


def service_name(mdep: str) -> str:
    return mdep


def track_service_name(mdep: str, track: str) -> str:
    return f"{mdep}-{track}"


def selector_labels(mdep: str) -> dict[str, str]:
    """Labels that select every serving pod of one ModelDeployment, whatever its revision."""
    return {LABEL_NAME: SERVER_NAME, LABEL_INSTANCE: mdep}


def revision_selector(mdep: str, revision: str) -> dict[str, str]:
    return {**selector_labels(mdep), LABEL_REVISION: revision}


def common_labels(mdep: str) -> dict[str, str]:
    return {**selector_labels(mdep), LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: "modelops"}
