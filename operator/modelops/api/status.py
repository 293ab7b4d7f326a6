"""The ModelDeployment status: written by the operator only, read back on every tick (the state
machines keep all their memory here). Tolerant of fields a newer operator wrote (`StatusModel`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelops.api.base import StatusModel, known_fields_only
from modelops.api.spec import ModelSource

# The model a track runs, as recorded in status (a newer operator may know more ModelSource fields).
StatusModelSource = Annotated[ModelSource, known_fields_only(ModelSource)]


class Condition(StatusModel):
    type: str = Field(max_length=64)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=2048)
    last_transition_time: str = Field(max_length=64)
    observed_generation: int | None = None


class TrackStatus(StatusModel):
    revision: str | None = Field(default=None, max_length=64)
    model_version: str | None = Field(default=None, max_length=63)
    replicas: int = 0
    ready_replicas: int = 0
    model: StatusModelSource | None = Field(
        default=None, description="The model this track runs, to rebuild its Deployment after spec moved on."
    )
    deployed_at: str | None = Field(
        default=None,
        max_length=64,
        description="When this revision first served at full strength as stable (deployed or promoted); set "
        "once. Decisions read this, never the display history.",
    )


class CanaryStatus(StatusModel):
    revision: str | None = Field(default=None, max_length=64)
    model_version: str | None = Field(default=None, max_length=63)
    weight: int = Field(default=0, ge=0, le=100, description="Desired share of traffic, percent.")
    observed_weight: int = Field(default=0, ge=0, le=100, description="Share the router carries now.")
    step_index: int = 0
    step_started_at: str | None = Field(default=None, max_length=64)
    replicas: int = 0
    ready_replicas: int = 0
    paused: bool = False
    paused_at: str | None = Field(
        default=None, max_length=64, description="When a user paused it; a timed pause's clock stops meanwhile."
    )
    aborted: bool = False
    abort_reason: str | None = Field(default=None, max_length=2048)
    model: StatusModelSource | None = Field(default=None, description="The model the canary runs.")
    analysis_step_successes: int = Field(
        default=0, ge=0, description="Successful runs in a row since the current analysis step began."
    )
    rollback: bool = Field(
        default=False, description="An undo: straight to full strength, then switched; no steps, no analysis."
    )


class MetricResult(StatusModel):
    name: str = Field(max_length=63)
    value: float | None = None
    stable_value: float | None = None
    limit: str | None = Field(default=None, max_length=256)
    verdict: Literal["Successful", "Failed", "Inconclusive", "Error"]
    samples: int = 0
    message: str = Field(default="", max_length=1024)
    measured_at: str = Field(max_length=64)


class AnalysisStatus(StatusModel):
    phase: Literal["Pending", "Running", "Successful", "Failed", "Inconclusive"] = "Pending"
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    last_run_at: str | None = Field(default=None, max_length=64)
    metrics: list[MetricResult] = Field(default_factory=list, max_length=16)
    started_at: str | None = Field(
        default=None,
        max_length=64,
        description="When the canary first carried traffic; run 1 is due an interval later.",
    )
    consecutive_successes: int = Field(default=0, ge=0)
    consecutive_inconclusives: int = Field(
        default=0, ge=0, description="Inconclusive or Error runs in a row; above inconclusiveLimit: Stalled."
    )


class HistoryEntry(StatusModel):
    revision: str = Field(max_length=64)
    model_version: str = Field(max_length=63)
    outcome: Literal["Promoted", "Aborted", "Superseded", "Rolledback", "Deployed"]
    reason: str = Field(default="", max_length=1024)
    at: str = Field(max_length=64)
    uri: str | None = Field(default=None, max_length=2048)
    sha256: str | None = Field(default=None, max_length=64)
    format: str | None = Field(default=None, max_length=16)
    source: Literal["Git", "Retrain", "Undo"] | None = Field(
        default=None, description="Where this version came from: a Git edit of spec, a retrain, or an undo."
    )


HISTORY_LIMIT = 10


class PreviousStatus(StatusModel):
    """The revision a promotion replaced, kept until `until` (bake window): an undo is a quick switch."""

    revision: str = Field(max_length=64)
    model_version: str | None = Field(default=None, max_length=63)
    model: StatusModelSource | None = None
    until: str = Field(max_length=64)


class PinnedRevision(StatusModel):
    """An undo pins this revision instead of the spec's, until the spec's revision changes from `replaces`."""

    revision: str = Field(max_length=64)
    model_version: str | None = Field(default=None, max_length=63)
    model: StatusModelSource | None = None
    replaces: str = Field(max_length=64, description="The spec revision current when the undo was asked.")


# ---------------------------------------------------------------- retraining (status)


RetrainSignal = Literal["Drift", "Quality", "PromQL", "Schedule", "Manual"]


class RetrainTrigger(StatusModel):
    """The evidence of the last trigger (also passed to the Job and recorded in metadata.json)."""

    at: str = Field(max_length=64)
    signal: RetrainSignal
    value: float | None = None
    samples: int | None = None
    window: str | None = Field(default=None, max_length=32)
    reason: str = Field(default="", max_length=1024)


class RetrainRuns(StatusModel):
    count: int = Field(default=0, ge=0, description="Runs ever started; the next Job is `<mdep>-retrain-<count+1>`.")
    runs_today: int = Field(default=0, ge=0)
    day_started_at: str | None = Field(default=None, max_length=64, description="UTC midnight runsToday counts from.")
    last_started_at: str | None = Field(default=None, max_length=64)


class RetrainJobStatus(StatusModel):
    name: str = Field(max_length=253)
    number: int = Field(ge=1, description="The run's number n in `<mdep>-retrain-<n>`.")
    started_at: str = Field(max_length=64)
    phase: Literal["Pending", "Running"] = "Pending"
    trigger: RetrainTrigger | None = None
    parent_sha256: str | None = Field(default=None, max_length=64, description="The model the run should beat.")
    replaces_model: StatusModelSource | None = Field(default=None, description="spec.model when the run started.")


class GateResult(StatusModel):
    metric: str = Field(max_length=32)
    candidate: float | None = None
    current: float | None = None
    passed: bool
    message: str = Field(default="", max_length=1024)


class RetrainCandidate(StatusModel):
    """A retrained model waiting to go out (or going out): it lapses when spec.model moves on from
    `replacesModel`, like the undo pin with `replaces`."""

    model: StatusModelSource
    sha256: str = Field(max_length=64)
    dataset_sha256: str | None = Field(default=None, max_length=64)
    rows: int | None = None
    job: str = Field(max_length=253)
    replaces_model: StatusModelSource
    replaces_revision: str | None = Field(default=None, max_length=64)
    replaces_generation: int | None = None
    gate: GateResult | None = None
    approved: bool = False
    recorded_at: str = Field(max_length=64)


RetrainOutcome = Literal[
    "Triggered", "Skipped", "JobFailed", "Rejected", "CandidateRecorded", "Promoted", "RolledBack", "Superseded",
]


class RetrainResult(StatusModel):
    outcome: RetrainOutcome
    reason: str = Field(default="", max_length=64)
    message: str = Field(default="", max_length=2048)
    at: str = Field(max_length=64)
    job: str | None = Field(default=None, max_length=253)


class RetrainingStatus(StatusModel):
    last_triggered: RetrainTrigger | None = None
    runs: RetrainRuns = Field(default_factory=RetrainRuns)
    job: RetrainJobStatus | None = None
    candidate: RetrainCandidate | None = None
    promoted: RetrainCandidate | None = Field(
        default=None,
        description="The retrained model serving now, kept as the desired model until spec.model moves on.",
    )
    consecutive_rejections: int = Field(default=0, ge=0)
    blocked: bool = False
    blocked_reason: str | None = Field(default=None, max_length=1024)
    next_run_after: str | None = Field(default=None, max_length=64)
    last_result: RetrainResult | None = Field(default=None, description="The last run's outcome (or a run skipped).")
    last_dropped: RetrainResult | None = Field(
        default=None,
        description="The last trigger a guardrail dropped (cooldown, budget, canary, ...): kept apart so that "
        "lastResult still shows the last run.",
    )
    breach_since: dict[str, str] = Field(
        default_factory=dict, description="Signal -> when its current breach began (forDuration runs from there)."
    )
    schedule_checked_at: str | None = Field(
        default=None, max_length=64, description="Cron fires up to here are handled."
    )
    stable_dataset_sha256: str | None = Field(
        default=None, max_length=64, description="The dataset the stable model was trained on (from its retrain)."
    )
    retrained_sha256: str | None = Field(
        default=None, max_length=64, description="The model the last promoted retrain produced."
    )
    drift_persists: bool = False


class ModelDeploymentStatus(StatusModel):
    observed_generation: int | None = None
    phase: str | None = Field(default=None, max_length=32)
    message: str | None = Field(default=None, max_length=2048)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    stable: TrackStatus | None = None
    canary: CanaryStatus | None = None
    analysis: AnalysisStatus | None = None
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    previous: PreviousStatus | None = None
    pinned: PinnedRevision | None = None
    handled_commands: dict[str, str] = Field(
        default_factory=dict, description="Command annotation name -> nonce of the last request handled."
    )
    retraining: RetrainingStatus | None = None

    @model_validator(mode="after")
    def _bounded_history(self) -> ModelDeploymentStatus:
        if len(self.history) > HISTORY_LIMIT:
            raise ValueError(f"history holds at most {HISTORY_LIMIT} entries")
        return self
