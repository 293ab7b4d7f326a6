"""What the controller observed this tick: the input of `modelops.rollout.machine.next_state`.

The controller fills an `Observed` from the cluster (the ModelDeployment's metadata, its child
Deployments, the router) and from the analysis provider; the state machine never reads the world.
Commands come from annotations the kubectl plugin writes (`modelops.rollout.commands.parse_commands`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelops.analysis.judging import MetricReading
from modelops.api.commands import Command
from modelops.api.spec import ModelSource


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
