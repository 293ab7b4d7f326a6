"""What `next_retraining` decided: the new status and the actions the controller carries out.

The controller writes `RetrainDecision.status` first (status is the loop's memory) and only then
applies the actions: `CreateJob` is idempotent (the name is deterministic: an AlreadyExists owned by
this ModelDeployment is the same run, adopted), so a crash in between never starts a second run.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops.api.events import EmitEvent
from modelops.api.spec import ModelSource
from modelops.api.status import ModelDeploymentStatus, RetrainTrigger

# Event reasons (stable: alerts match on them).
EVENT_TRIGGERED = "RetrainTriggered"
EVENT_SKIPPED = "RetrainSkipped"
EVENT_JOB_FAILED = "RetrainJobFailed"
EVENT_CANDIDATE_REJECTED = "CandidateRejected"
EVENT_CANDIDATE_RECORDED = "CandidateRecorded"
EVENT_CANDIDATE_SUPERSEDED = "CandidateSuperseded"
EVENT_PROMOTED = "RetrainPromoted"
EVENT_ROLLED_BACK = "RetrainRolledBack"
EVENT_BLOCKED = "RetrainBlocked"
EVENT_DRIFT_PERSISTS = "DriftPersists"
EVENT_COMMAND_HANDLED = "CommandHandled"
EVENT_COMMAND_IGNORED = "CommandIgnored"

# RetrainSkipped reasons.
SKIP_COOLDOWN = "Cooldown"
SKIP_DAILY_BUDGET = "DailyBudget"
SKIP_CANARY = "CanaryInProgress"
SKIP_UNDO_PINNED = "UndoPinned"
SKIP_NO_NEW_DATA = "NoNewData"
SKIP_BLOCKED = "Blocked"
SKIP_ALREADY_RUNNING = "AlreadyRunning"
SKIP_IDENTICAL = "IdenticalArtifact"
SKIP_CANDIDATE_PENDING = "CandidatePending"
SKIP_DRIFT_PERSISTS = "DriftPersists"

# Conditions the loop sets on the ModelDeployment.
CONDITION_BLOCKED = "RetrainBlocked"
CONDITION_DRIFT_PERSISTS = "DriftPersists"


@dataclass(frozen=True)
class JobParams:
    """What the run needs besides spec.retraining.job: the model it must beat and why it runs."""

    trigger: RetrainTrigger
    version: str  # the candidate's model version
    output_uri: str  # the directory the run writes (`<output prefix>/<job name>`)
    parent: ModelSource | None  # the model serving now (the gate's `current`, lineage's parent)
    current_dataset_sha256: str | None  # requireNewData: the Job stops early on this digest


@dataclass(frozen=True)
class CreateJob:
    """The Job `name` exists (build it with modelops.resources.jobs.retrain_job); create it when absent."""

    name: str
    n: int
    params: JobParams


@dataclass(frozen=True)
class DeleteJob:
    name: str


RetrainAction = CreateJob | DeleteJob | EmitEvent


@dataclass(frozen=True)
class RetrainDecision:
    status: ModelDeploymentStatus
    actions: tuple[RetrainAction, ...]
    requeue_after: float | None  # seconds until a tick is needed (cooldown end, forDuration, cron)

    @property
    def events(self) -> tuple[EmitEvent, ...]:
        return tuple(a for a in self.actions if isinstance(a, EmitEvent))

    @property
    def create_job(self) -> CreateJob | None:
        return next((a for a in self.actions if isinstance(a, CreateJob)), None)
