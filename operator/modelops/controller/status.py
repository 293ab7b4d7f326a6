"""Reconcile errors as status: the condition reasons a person sees in `kubectl get mdep` and
`kubectl modelops status` when the operator cannot carry out what it decided.

Pure functions over the API models, called by `modelops.controller.reconcile`.
"""

from __future__ import annotations

import datetime as dt

from modelops.api import conditions as cond
from modelops.api.status import ModelDeploymentStatus
from modelops.api.timefmt import format_time

# Reasons the shell reports (the rollout machine has its own in modelops.rollout.conditions).
REASON_FORBIDDEN = "Forbidden"
REASON_ROUTE_NOT_FOUND = "RouteNotFound"
REASON_ROUTE_NOT_REFERENCING = "RouteNotReferencing"
REASON_SERVICE_NOT_OWNED = "ServiceNotOwned"
REASON_AUTOSCALER_NOT_OWNED = "AutoscalerNotOwned"
REASON_NAME_TAKEN = "NameTaken"
REASON_INVALID_SPEC = "InvalidSpec"


class ReconcileProblem(Exception):
    """Something the operator cannot do by itself; reported as a condition and a Warning Event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def with_error(status: ModelDeploymentStatus, reason: str, message: str, now: dt.datetime,
               generation: int | None) -> ModelDeploymentStatus:
    """`status` with Ready=False and Stalled=True for `reason`, and the message in front."""
    stamp = format_time(now)
    conditions = list(status.conditions)
    conditions = cond.set_condition(conditions, cond.READY, "False", reason, message, stamp, generation)
    conditions = cond.set_condition(conditions, cond.RECONCILING, "False", reason, message, stamp, generation)
    conditions = cond.set_condition(conditions, cond.STALLED, "True", reason, message, stamp, generation)
    text = message if not status.message else f"{message}; {status.message}"
    return status.model_copy(update={"conditions": conditions, "message": text[:2048]})


def invalid_spec(status: ModelDeploymentStatus, message: str, now: dt.datetime,
                 generation: int) -> ModelDeploymentStatus:
    """A spec the API server accepted but the operator cannot read: stalled until it changes."""
    stamp = format_time(now)
    conditions = list(status.conditions)
    for type_, value in ((cond.READY, "False"), (cond.RECONCILING, "False"), (cond.STALLED, "True")):
        conditions = cond.set_condition(conditions, type_, value,  # type: ignore[arg-type]
                                        REASON_INVALID_SPEC, message, stamp, generation)
    return status.model_copy(update={"observed_generation": generation, "phase": "Failed", "message": message,
                                     "conditions": conditions})
