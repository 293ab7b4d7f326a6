"""The ModelDeployment kind: its API group, version and names, and the object as the operator reads it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus

GROUP = "modelops.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAME = "mdep"


class ModelDeploymentObject(BaseModel):
    """The parts of a ModelDeployment object the operator reads."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any]
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0))
