"""Kubernetes Events as the pure core asks for them: a type, a stable CamelCase reason, a message.

Both state machines (`modelops.rollout`, `modelops.retraining`) return `EmitEvent` actions; the
controller posts them on the ModelDeployment in the order given. Each machine keeps its own reasons
(`modelops.rollout.events`, `modelops.retraining.actions`); docs/events.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventType = Literal["Normal", "Warning"]
EVENT_NORMAL: EventType = "Normal"
EVENT_WARNING: EventType = "Warning"


@dataclass(frozen=True)
class EmitEvent:
    type: EventType
    reason: str
    message: str
