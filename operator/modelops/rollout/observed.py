"""What the controller observed this tick: the input of `modelops.rollout.machine.next_state`.

The controller fills an `Observed` from the cluster (the ModelDeployment's metadata, its child
Deployments, the router) and from the analysis provider; the state machine never reads the world.
Commands come from annotations the kubectl plugin writes (`parse_commands`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelops.analysis.judging import MetricReading
from modelops.api.models import ModelSource

ANNOTATION_PREFIX = "modelops.dev/"
COMMAND_PROMOTE = "promote"
COMMAND_ABORT = "abort"
COMMAND_PAUSE = "pause"
COMMAND_RESUME = "resume"
COMMAND_RETRY = "retry"
COMMAND_UNDO = "undo"
# Handled in this order when several are new in one tick: stopping wins over moving on.
COMMANDS = (COMMAND_ABORT, COMMAND_UNDO, COMMAND_RETRY, COMMAND_PAUSE, COMMAND_RESUME, COMMAND_PROMOTE)
PROMOTE_STEP = "step"
PROMOTE_FULL = "full"


@dataclass(frozen=True)
class Command:
    """One imperative request; a nonce already recorded in status.handledCommands is not re-run."""

    name: str
    value: str
    nonce: str


@dataclass(frozen=True)
class DesiredRevision:
    """What spec asks the pods to run: the revision hash (computed in resources/) and its model."""

    revision: str
    model: ModelSource


@dataclass(frozen=True)
class DeploymentObservation:
    """One child Deployment of the ModelDeployment as read from the cluster."""

    revision: str
    replicas: int  # spec.replicas
    ready_replicas: int  # status.readyReplicas
    problem: str | None = None  # why a pod of it is not starting (e.g. its model failed verification)


@dataclass(frozen=True)
class Measurement:
    """One analysis run the controller took this tick (because `analysis_due` said so)."""

    canary_revision: str
    taken_at: datetime
    readings: tuple[MetricReading, ...]


@dataclass(frozen=True)
class Observed:
    generation: int
    desired: DesiredRevision
    deployments: tuple[DeploymentObservation, ...] = ()  # every Deployment of this mdep, any revision
    observed_weight: int = 0  # percent the router carries to the canary now (traffic.router)
    # The canary revision `observed_weight` was measured for; None: the canary of the status read.
    weight_revision: str | None = None
    measurement: Measurement | None = None
    commands: tuple[Command, ...] = ()

    def deployment(self, revision: str | None) -> DeploymentObservation | None:
        return next((d for d in self.deployments if d.revision == revision), None)

    def problem(self, revision: str | None) -> str | None:
        found = self.deployment(revision)
        return found.problem if found is not None else None

    def ready(self, revision: str | None) -> int:
        found = self.deployment(revision)
        return found.ready_replicas if found is not None else 0


def parse_commands(annotations: Mapping[str, str]) -> tuple[Command, ...]:
    """Commands from `modelops.dev/<command>` annotations.

    An annotation's value is JSON `{"value": "...", "nonce": "..."}`; a plain string is taken as a
    nonce with an empty value, so `kubectl annotate mdep/x modelops.dev/abort=$(date +%s)` works too.
    """
    commands: list[Command] = []
    for name in COMMANDS:
        raw = annotations.get(ANNOTATION_PREFIX + name)
        if raw is None:
            continue
        value, nonce = "", raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            value = str(parsed.get("value", "") or "")
            nonce = str(parsed.get("nonce", "") or "")
        if nonce:
            commands.append(Command(name=name, value=value, nonce=nonce))
    return tuple(commands)
