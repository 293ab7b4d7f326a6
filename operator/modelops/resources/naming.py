"""Names, labels and the revision hash shared by every child object of a ModelDeployment.

Called by the builders in this package, by the controller (to find children) and by tests.
"""

from __future__ import annotations

import hashlib
import json

from modelops.api.models import ModelDeploymentSpec

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


def revision_of(namespace: str, name: str, spec: ModelDeploymentSpec) -> str:
    """A stable hash of what the serving pods run: the model and the serving template, not replicas.

    The ModelDeployment's identity is part of it, so that two of them serving the same model never
    share a revision, and metrics selected by revision never mix.
    """
    runs = {
        "owner": f"{namespace}/{name}",
        "model": spec.model.wire(),
        "serving": spec.serving.model_copy(update={"replicas": 0}).wire(),
    }
    digest = hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()
    return digest[:REVISION_LENGTH]


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
