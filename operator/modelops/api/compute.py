"""Compute resources and scheduling of pods, as serving pods and retraining Jobs both ask for them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelops.api.base import Model


class ResourceList(Model):
    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$", max_length=16)
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?([KMGT]i?|[kMGT])?$", max_length=16)


class Resources(Model):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Toleration(Model):
    key: str | None = Field(default=None, max_length=253)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
