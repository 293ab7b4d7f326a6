"""The context of one pass of the retraining loop: status being rebuilt, actions, and the earliest
time a tick is needed. Made by `machine.next_retraining`; read and updated by every step of the pass
(`machine`, `signals`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelops.api.conditions import find_condition, set_condition
from modelops.api.events import EVENT_NORMAL, EVENT_WARNING, EmitEvent
from modelops.api.retraining_spec import Retraining
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus, RetrainingStatus, RetrainResult
from modelops.api.timefmt import format_time
from modelops.retraining.actions import RetrainAction
from modelops.retraining.observed import RetrainObserved


@dataclass
class Tick:
    """The pieces of one pass: status being rebuilt, actions, and the earliest time a tick is needed."""

    spec: ModelDeploymentSpec
    retraining: Retraining
    status: ModelDeploymentStatus
    rs: RetrainingStatus
    observed: RetrainObserved
    now: datetime
    mdep: str
    actions: list[RetrainAction]
    wake: list[datetime]

    @property
    def stamp(self) -> str:
        return format_time(self.now)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.actions.append(EmitEvent(EVENT_WARNING if warning else EVENT_NORMAL, reason, message))

    def result(self, outcome: str, message: str, reason: str = "", job: str | None = None) -> None:
        self.rs = self.rs.model_copy(update={"last_result": RetrainResult.model_validate(
            {"outcome": outcome, "reason": reason, "message": message[:2048], "at": self.stamp, "job": job})})

    def dropped(self, reason: str, message: str) -> None:
        self.rs = self.rs.model_copy(update={"last_dropped": RetrainResult.model_validate(
            {"outcome": "Skipped", "reason": reason, "message": message[:2048], "at": self.stamp})})

    def update(self, **changes: object) -> None:
        self.rs = self.rs.model_copy(update=changes)

    def condition(self, type_: str, on: bool, reason: str, message: str) -> None:
        old = find_condition(self.status.conditions, type_)
        if old is None and not on:
            return  # never set: no need to say False
        conditions = set_condition(self.status.conditions, type_, "True" if on else "False", reason, message,
                                   self.stamp, self.observed.generation)
        self.status = self.status.model_copy(update={"conditions": conditions})
