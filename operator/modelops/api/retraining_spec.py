"""spec.retraining: the loop in one object (triggers, the Job, guardrails, the gate, promotion).
Read by `modelops.retraining`, `modelops.resources.jobs` and the trainer."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelops.api.base import CheckedModel, Model
from modelops.api.compute import Resources
from modelops.api.durations import Duration, parse_duration
from modelops.api.validation import DNS_LABEL, SHA256, CrossFieldRule

# Five cron fields (minute hour day-of-month month day-of-week), each `*`, a number, a range, a
# list of those, each with an optional `/step`; month and weekday names as cron accepts them; or
# one of the @-shorthands. The operator evaluates the schedule with cronsim, which is stricter.
_CRON_ATOM = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?"
_CRON_FIELD = rf"{_CRON_ATOM}(,{_CRON_ATOM})*"
CRON = rf"^((@(yearly|annually|monthly|weekly|daily|midnight|hourly))|({_CRON_FIELD}( +{_CRON_FIELD}){{4}}))$"
# Where a retraining Job reads and writes; s3:// needs credentials from a Secret (job.credentialsSecret).
DATA_URI = r"^(https?|pvc|file|s3)://[^\s]+$"
OUTPUT_URI = r"^(pvc|file|s3)://[^\s]+$"
RETRAIN_METRICS = ("accuracy", "f1", "r2", "mae")


class DriftTrigger(Model):
    """Retrain when the stable track's input or prediction distribution has moved, and stays moved."""

    threshold: float | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Fixed PSI threshold. Unset: derived from each window's sample size (a chi-squared critical "
        "value at `significance`, corrected across the features watched), never below minPsi.",
    )
    significance: float = Field(
        default=0.001,
        ge=1e-12,
        le=0.1,
        description="False alarm probability per window over all features together (derived threshold only).",
    )
    min_psi: float = Field(
        default=0.1,
        ge=0,
        le=10,
        description="Floor of the derived threshold: a shift this small is not worth a retrain however many "
        "samples prove it.",
    )
    min_samples: int = Field(default=100, ge=30, le=100_000_000, description="A window with fewer rows never counts.")
    for_duration: Duration = Field(default="5m", description="How long the breach must hold before it triggers.")
    window: Duration = Field(default="10m", description="The window the PSI is computed over (the servers' window).")
    features: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, max_length=256, description="Features to watch (default: all, and the predictions)."
    )


class QualityTrigger(CheckedModel):
    """Retrain when ground-truth quality (from the feedback endpoint) falls below a bar."""

    cross_field_rules = (
        CrossFieldRule(
            "self.metric == 'accuracy' ? (has(self.below) && !has(self.above)) "
            ": (has(self.above) && !has(self.below))",
            "quality: accuracy takes `below`, mae takes `above`",
            ".metric",
            holds=lambda q: (q.below is not None and q.above is None) if q.metric == "accuracy"
            else (q.above is not None and q.below is None),
        ),
    )

    metric: Literal["accuracy", "mae"]
    below: float | None = Field(default=None, ge=0, le=1, description="accuracy: trigger below this.")
    above: float | None = Field(default=None, ge=0, le=1e12, description="mae: trigger above this.")
    min_samples: int = Field(default=100, ge=30, le=100_000_000, description="Labelled rows a window needs to count.")
    for_duration: Duration = "5m"


class PromQLTrigger(Model):
    """Retrain when a PromQL expression stays above a value."""

    query: str = Field(min_length=1, max_length=4096, description="PromQL returning one number.")
    above: float = Field(ge=-1e12, le=1e12)
    for_duration: Duration = "5m"


class RetrainTriggers(CheckedModel):
    cross_field_rules = (
        CrossFieldRule(
            "has(self.drift) || has(self.quality) || has(self.promql) || has(self.schedule)",
            "retraining.triggers: set at least one of drift, quality, promql, schedule",
            holds=lambda t: bool(t.drift or t.quality or t.promql or t.schedule),
        ),
    )

    drift: DriftTrigger | None = None
    quality: QualityTrigger | None = None
    promql: PromQLTrigger | None = None
    schedule: str | None = Field(
        default=None,
        pattern=CRON,
        max_length=128,
        description="Cron schedule (UTC), the backstop: `0 3 * * 0` is Sundays at 03:00.",
    )


class RetrainDataset(CheckedModel):
    """Where training data comes from: a URI a team's pipeline refreshes, or the servers' own logs."""

    cross_field_rules = (
        CrossFieldRule(
            "has(self.uri) != (has(self.fromServing) && self.fromServing)",
            "retraining.job.dataset: set exactly one of uri, fromServing: true",
            holds=lambda d: (d.uri is not None) != d.from_serving,
        ),
    )

    uri: str | None = Field(default=None, max_length=2048, pattern=DATA_URI, description="CSV or Parquet file.")
    target_column: str | None = Field(
        default=None, min_length=1, max_length=253, description="Label column (default: the last column)."
    )
    sha256: str | None = Field(
        default=None, pattern=SHA256, max_length=64, description="Expected digest of the dataset file."
    )
    from_serving: bool = Field(
        default=False,
        description="Train on the requests the servers logged, joined with the feedback labels.",
    )


class Holdout(Model):
    """The frozen evaluation set both the candidate and the current model are scored on."""

    uri: str = Field(min_length=1, max_length=2048, pattern=DATA_URI)
    sha256: str | None = Field(default=None, pattern=SHA256, max_length=64)


class OutputLocation(Model):
    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=OUTPUT_URI,
        description="Prefix under which each run writes `<mdep>-retrain-<n>/` (model, model.sha256, metadata.json).",
    )


class RetrainJob(Model):
    """The Kubernetes Job each run is: `modelops retrain-job` (train, then evaluate) in the serving image."""

    image: str | None = Field(default=None, min_length=1, max_length=512, description="Default: spec.serving.image.")
    args: list[Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=list, max_length=32, description="Extra `modelops train` arguments, e.g. --estimator forest."
    )
    dataset: RetrainDataset
    holdout: Holdout | None = Field(default=None, description="Required when a gate is set.")
    output: OutputLocation
    resources: Resources | None = None
    deadline: Duration = Field(default="1h", description="activeDeadlineSeconds of the Job.")
    backoff_limit: int = Field(default=1, ge=0, le=10)
    service_account_name: str | None = Field(default=None, pattern=DNS_LABEL, max_length=63)
    credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL,
        max_length=63,
        description="Secret whose keys become the Job's environment (e.g. AWS_ACCESS_KEY_ID for s3://).",
    )


class Guardrails(CheckedModel):
    cross_field_rules = (
        CrossFieldRule(
            "duration(self.cooldown) >= duration('1m')",
            "retraining.guardrails.cooldown must be at least 1m",
            ".cooldown",
            holds=lambda cooldown: parse_duration(cooldown) >= timedelta(minutes=1),
            on_field=True,
        ),
    )

    cooldown: Duration = Field(default="1h", description="After a run starts, triggers are dropped for this long.")
    max_runs_per_day: int = Field(default=3, ge=1, le=100, description="Runs per UTC day.")
    require_new_data: bool = Field(default=True, description="Skip (NoNewData) when the dataset is unchanged.")
    max_consecutive_rejections: int = Field(
        default=3, ge=1, le=100, description="Rejected or rolled-back candidates in a row before RetrainBlocked."
    )


class Gate(CheckedModel):
    """The candidate must reach minValue (maxValue for mae) and beat the current model by minImprovement."""

    cross_field_rules = (
        CrossFieldRule(
            "self.metric == 'mae' ? !has(self.minValue) : !has(self.maxValue)",
            "retraining.gate: mae takes maxValue, accuracy/f1/r2 take minValue",
            ".metric",
            holds=lambda g: g.min_value is None if g.metric == "mae" else g.max_value is None,
        ),
    )

    metric: Literal["accuracy", "f1", "r2", "mae"] = "accuracy"
    min_value: float | None = Field(default=None, ge=-1e12, le=1e12)
    max_value: float | None = Field(default=None, ge=0, le=1e12)
    min_improvement: float = Field(
        default=0.0, ge=-1e12, le=1e12, description="How much better than current (lower for mae) it must be."
    )


class Retraining(CheckedModel):
    """The loop in one object: triggers start a guarded Job; its candidate is gated, then rolled out."""

    cross_field_rules = (
        CrossFieldRule(
            "!has(self.gate) || has(self.job.holdout)",
            "retraining.job.holdout is required when a gate is set",
            ".job.holdout",
            holds=lambda r: r.gate is None or r.job.holdout is not None,
        ),
    )

    triggers: RetrainTriggers
    job: RetrainJob
    guardrails: Guardrails = Field(default_factory=Guardrails)
    gate: Gate | None = None
    promotion: Literal["Auto", "Manual"] = Field(
        default="Auto",
        description="Auto: the candidate goes out through spec.rollout; Manual: waits for `kubectl modelops approve`.",
    )

    @model_validator(mode="after")
    def _durations_parse(self) -> Retraining:
        for trigger in (self.triggers.drift, self.triggers.quality, self.triggers.promql):
            if trigger is not None:
                parse_duration(trigger.for_duration)
        parse_duration(self.job.deadline)
        return self
