"""pydantic models of the ModelDeployment spec and status.

These are the single source of truth: `modelops crd` generates the CRD's OpenAPI schema (with its
bounds and CEL rules) from them, the controller parses objects with them, and the pure core takes
them as input. Field names are camelCase on the wire through aliases.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modelops.api.durations import DURATION, Duration, parse_duration
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.uri import parse_pvc_uri

GROUP = "modelops.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAME = "mdep"

# The images `make image` builds (README "Images"): serving pods run the server, retraining Jobs the trainer.
DEFAULT_SERVER_IMAGE = "modelops-server:0.1.0"
DEFAULT_TRAINER_IMAGE = "modelops-trainer:0.1.0"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256 = r"^[0-9a-f]{64}$"
URI_SCHEMES = ("http", "https", "pvc", "file", "s3")


def duration_at_least(field: str, minimum: str) -> str:
    """A CEL rule: the duration in `field` (if set and well-formed) is at least `minimum`.

    The pattern check reports a malformed value by itself; the guard keeps `duration()` from failing
    on it, so the message the user reads names the pattern, not a CEL evaluation error.
    """
    pattern = DURATION.replace("\\", "\\\\")  # a CEL string literal reads `\.` as an escape
    return (f"!has(self.{field}) || !self.{field}.matches('{pattern}') || "
            f"duration(self.{field}) >= duration('{minimum}')")


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class Model(BaseModel):
    """Base for every API model: frozen, camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in the Kubernetes API (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- spec


class ModelSource(Model):
    """Which model the pods serve and where its artifact lives."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.format != 'joblib' || has(self.sha256)",
                    "sha256 is required when format is joblib: loading a joblib file runs code",
                    ".sha256",
                ),
                cel(
                    "!self.uri.startsWith('pvc://') || (self.uri.matches("
                    "'^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[^/]')"
                    " && !self.uri.matches('/[.][.](/|$)'))",
                    "a pvc:// uri is pvc://<claim>/<path>: a PersistentVolumeClaim name, then a relative path "
                    "without '..'",
                    ".uri",
                ),
            ]
        }
    )

    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63, description="Model name (DNS label).")
    version: str = Field(
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        min_length=1,
        max_length=63,
        description="Model version, shown in status and metric labels.",
    )
    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^(https?|pvc|file|s3)://[^\s]+$",
        description="Artifact location: http(s)://, pvc://<claim>/<path> (mounted read-only), s3://<bucket>/<key> "
        "or file://<path>.",
    )
    sha256: str | None = Field(
        default=None, pattern=SHA256, max_length=64, description="Lowercase hex sha256 of the model file."
    )
    format: Literal["joblib", "skops"] = Field(default="joblib", description="Serialization format.")
    credentials_secret: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
        description="Secret (same namespace) whose keys become the environment of the fetch step and the server, "
        "e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for s3://. The operator never reads it.",
    )

    @field_validator("uri")
    @classmethod
    def _pvc_uri_stays_inside_its_claim(cls, uri: str) -> str:
        if uri.startswith("pvc://"):
            try:
                parse_pvc_uri(uri)
            except ArtifactError as error:
                raise ValueError(str(error)) from None  # the message names the bad part (claim, '..', absolute)
        return uri


class Batching(Model):
    """Adaptive micro-batching in the model server."""

    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_latency_ms: float = Field(default=2.0, ge=0, le=1000)


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


class Autoscaling(Model):
    """HPA mode: a HorizontalPodAutoscaler the operator creates sizes the stable track; the operator
    stops writing its replicas and sizes the canary (and a promotion) from the stable's current count."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas", ".minReplicas")
            ]
        }
    )

    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(ge=1, le=100)
    target_cpu_utilization: int = Field(
        default=80, ge=1, le=100, description="Average CPU use the HPA aims at, percent of the pods' CPU requests."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("serving.autoscaling: minReplicas must not exceed maxReplicas")
        return self


class Serving(Model):
    """How the serving pods run."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.grpcPort != self.port", "grpcPort must differ from port", ".grpcPort")
            ]
        }
    )

    replicas: int = Field(default=2, ge=0, le=100, description="Pods of the stable track (ignored with autoscaling).")
    autoscaling: Autoscaling | None = Field(
        default=None, description="HPA mode: an autoscaler owns the stable track's replicas instead of `replicas`."
    )
    image: str = Field(default=DEFAULT_SERVER_IMAGE, min_length=1, max_length=512)
    workers: int = Field(default=1, ge=1, le=32, description="Server worker processes per pod.")
    port: int = Field(default=8080, ge=1024, le=65535)
    grpc_port: int = Field(
        default=9000, ge=1024, le=65535, description="Port of the Open Inference Protocol v2 gRPC service."
    )
    resources: Resources | None = None
    batching: Batching = Field(default_factory=Batching)
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(
        default=None, max_length=16, description="Schedule serving pods only on nodes with these labels."
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=16)

    def total(self, stable_replicas: int | None) -> int:
        """The stable track's size: `replicas`, or in HPA mode what the autoscaler set (`stable_replicas`,
        the stable Deployment's spec.replicas; None before it exists), kept within its bounds."""
        if self.autoscaling is None:
            return self.replicas
        current = stable_replicas or 0
        return min(max(current, self.autoscaling.min_replicas), self.autoscaling.max_replicas)


class HTTPRouteRef(Model):
    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)


class Traffic(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.router != 'GatewayAPI' || has(self.httpRoute)",
                    "httpRoute is required when router is GatewayAPI",
                    ".httpRoute",
                )
            ]
        }
    )

    router: Literal["ReplicaRatio", "GatewayAPI"] = "ReplicaRatio"
    http_route: HTTPRouteRef | None = None
    max_surge: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="ReplicaRatio: most canary pods run next to the full-strength stable track (each one is an "
        "extra pod). A weight w needs about replicas * w / (100 - w) canary pods; above the cap the canary "
        "carries less than the step's weight and status says so. Default: serving.replicas (pods at most "
        "double: weights up to 50% are carried as asked). GatewayAPI sets weights exactly and ignores it.",
    )


class Pause(Model):
    """A pause: timed when `duration` is set, otherwise until promoted."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    duration_at_least("duration", "1ms"),
                    "a pause of 0s does not wait: leave out the step, or leave out duration to wait for promote",
                    ".duration",
                )
            ]
        }
    )

    duration: Duration | None = None


class AnalysisStep(Model):
    """Hold the step until this many consecutive analysis intervals pass."""

    count: int = Field(default=1, ge=1, le=100)


class Step(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.setWeight), has(self.pause), has(self.analysis)].filter(x, x).size() == 1",
                    "each step sets exactly one of setWeight, pause, analysis",
                )
            ]
        }
    )

    set_weight: int | None = Field(default=None, ge=1, le=100)
    pause: Pause | None = None
    analysis: AnalysisStep | None = None


class VsStable(Model):
    """Compare the canary with the stable track over the same window."""

    max_increase: float = Field(
        ge=0,
        le=1,
        description="Allowed relative increase, 0.2 = 20%; at most 1 (100%): beyond that the comparison hardly "
        "ever trips.",
    )


class PrometheusQuery(Model):
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL; $revision, $track, $namespace, $name and $interval are substituted.",
    )


BuiltinMetric = Literal["errorRate", "latencyP99", "predictionDrift", "featureDrift"]
# Builtins that are never negative and have no upper bound (seconds, PSI).
_POSITIVE_BUILTINS = "['latencyP99', 'predictionDrift', 'featureDrift']"


class Metric(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.builtin) != has(self.prometheus)",
                    "set exactly one of builtin, prometheus",
                ),
                cel(
                    "has(self.max) || has(self.min) || has(self.vsStable)",
                    "set at least one of max, min, vsStable",
                ),
                cel(
                    "!has(self.min) || !has(self.max) || self.min <= self.max",
                    "min must not exceed max",
                    ".min",
                ),
                # Limits a builtin's value can never cross make a gate that never trips (or always does).
                cel(
                    "!has(self.builtin) || self.builtin != 'errorRate' || !has(self.max) || "
                    "(self.max >= 0.0 && self.max < 1.0)",
                    "max of errorRate must be at least 0 and below 1: an error rate is a share between 0 and 1, "
                    "so max 1 or more never trips",
                    ".max",
                ),
                cel(
                    "!has(self.builtin) || self.builtin != 'errorRate' || !has(self.min) || "
                    "(self.min > 0.0 && self.min <= 1.0)",
                    "min of errorRate must be above 0 and at most 1: an error rate is a share between 0 and 1",
                    ".min",
                ),
                cel(
                    f"!has(self.builtin) || !(self.builtin in {_POSITIVE_BUILTINS}) || !has(self.max) || "
                    "self.max > 0.0",
                    "max of latencyP99, predictionDrift or featureDrift must be above 0: the value is never "
                    "below 0, so max 0 or less fails every canary",
                    ".max",
                ),
                cel(
                    f"!has(self.builtin) || !(self.builtin in {_POSITIVE_BUILTINS}) || !has(self.min) || "
                    "self.min > 0.0",
                    "min of latencyP99, predictionDrift or featureDrift must be above 0: the value is never "
                    "below 0, so min 0 or less never trips",
                    ".min",
                ),
            ]
        }
    )

    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    builtin: BuiltinMetric | None = None
    prometheus: PrometheusQuery | None = None
    max: float | None = Field(default=None, ge=-1e12, le=1e12)
    min: float | None = Field(default=None, ge=-1e12, le=1e12)
    vs_stable: VsStable | None = None


# What judges a canary when spec.rollout.analysis.metrics is left out: no analysis must be asked for
# (`disabled: true`), never the result of a forgotten list. The error rate has an absolute limit
# (1% of requests answered 5xx); p99 latency is compared with the stable track in the same window,
# with room for the noise of a p99 over few requests.
DEFAULT_METRICS: tuple[Metric, ...] = (
    Metric(name="error-rate", builtin="errorRate", max=0.01),
    Metric(name="latency-p99", builtin="latencyP99", vs_stable=VsStable(max_increase=0.5)),
)


class Analysis(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.metrics) || self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                    "metric names must be unique",
                    ".metrics",
                ),
                cel(
                    "!has(self.metrics) || self.metrics.size() > 0",
                    "metrics is empty: leave it out for the default metrics (error rate, p99 against stable), "
                    "or set disabled: true to promote on the steps alone",
                    ".metrics",
                ),
                cel(
                    "!has(self.disabled) || !self.disabled || !has(self.metrics)",
                    "disabled: true and metrics contradict each other: remove one of them",
                    ".disabled",
                ),
                cel(
                    duration_at_least("interval", "1s"),
                    "interval must be at least 1s: a 0s interval never waits between runs",
                    ".interval",
                ),
            ]
        }
    )

    disabled: bool = Field(
        default=False,
        description="No analysis: the canary advances on its steps alone. Leaving metrics out does not do "
        "this; it gives the default metrics.",
    )
    interval: Duration = Field(default="30s", description="Time between analysis runs (at least 1s).")
    failure_limit: int = Field(default=2, ge=0, le=100, description="Failed measurements tolerated.")
    inconclusive_limit: int = Field(default=5, ge=0, le=1000, description="Inconclusive ones before the rollout holds.")
    min_requests: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Canary requests in the window needed before any verdict (at least 1: a canary that "
        "served nothing is never judged).",
    )
    no_data: Literal["Inconclusive", "Failed"] = "Inconclusive"
    # A list (not None) when left out, as before: the CRD gets no default for it, so `has()` in the
    # rules above still tells "left out" from "written empty"; `effective_metrics` treats both alike.
    metrics: list[Metric] = Field(
        default_factory=list,
        max_length=16,
        description="What judges the canary. Left out: error-rate (errorRate max 0.01) and latency-p99 "
        "(latencyP99 at most 50% above stable). An empty list is refused; say disabled: true instead.",
    )

    def effective_metrics(self) -> tuple[Metric, ...]:
        """The metrics that judge the canary: none when disabled, the defaults when left out.

        An empty list (refused at apply time, but possibly stored by an older CRD) also gets the
        defaults: silence must never mean "promote on timers".
        """
        if self.disabled:
            return ()
        return tuple(self.metrics) if self.metrics else DEFAULT_METRICS


_ANALYSIS_OFF = "(has(self.analysis) && has(self.analysis.disabled) && self.analysis.disabled)"


class Rollout(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"{_ANALYSIS_OFF} || !has(self.steps) || self.steps.exists(s, has(s.setWeight))",
                    "steps need a setWeight while analysis is on: a canary that carries no traffic is never "
                    "judged (no steps at all would promote it unjudged); add one, or set analysis.disabled: true",
                    ".steps",
                ),
                cel(
                    f"!{_ANALYSIS_OFF} || !has(self.steps) || !self.steps.exists(s, has(s.analysis))",
                    "an analysis step cannot pass with analysis.disabled: true: remove the step or the flag",
                    ".steps",
                ),
                cel(
                    "!has(self.steps) || (self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
                    "self.steps.filter(s, has(s.setWeight)).all(s, "
                    "self.steps.filter(t, has(t.setWeight) && t.setWeight == s.setWeight).size() == 1))",
                    "setWeight values must be strictly increasing",
                    ".steps",
                )
            ]
        }
    )

    traffic: Traffic = Field(default_factory=Traffic)
    steps: list[Step] = Field(
        default_factory=lambda: [
            Step(set_weight=10),
            Step(pause=Pause(duration="30s")),
            Step(set_weight=50),
            Step(pause=Pause(duration="30s")),
        ],
        max_length=32,
    )
    analysis: Analysis = Field(default_factory=Analysis)
    bake_time: Duration = Field(default="0s", description="After promotion, how long an undo is a fast switch back.")


class DriftMonitoring(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.threshold > 0.0",
                    "threshold must be above 0: a PSI is never below 0, so 0 reports drift always", ".threshold"),
                cel(duration_at_least("window", "1s"), "window must be at least 1s", ".window"),
            ]
        }
    )

    threshold: float = Field(default=0.2, ge=0, le=10, description="PSI above which drift is reported.")
    window: Duration = "10m"


# A PromQL window must hold several scrapes: `rate()` needs two samples, and with one scrape per
# window (the window equal to the scrape interval) it is empty half the time.
SCRAPES_PER_WINDOW = 4


class Monitoring(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(duration_at_least("scrapeInterval", "1s"), "scrapeInterval must be at least 1s",
                    ".scrapeInterval"),
            ]
        }
    )

    prometheus_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Prometheus to query (it must be in the operator's --prometheus-allow list); without it "
        "the operator scrapes the pods directly.",
    )
    scrape_interval: Duration = Field(
        default="30s",
        description=f"How often that Prometheus scrapes the serving pods. PromQL windows span at least "
        f"{SCRAPES_PER_WINDOW} scrape intervals (or the analysis interval, if longer).",
    )
    drift: DriftMonitoring = Field(default_factory=DriftMonitoring)


# ---------------------------------------------------------------- retraining (spec)

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


class QualityTrigger(Model):
    """Retrain when ground-truth quality (from the feedback endpoint) falls below a bar."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.metric == 'accuracy' ? (has(self.below) && !has(self.above)) "
                    ": (has(self.above) && !has(self.below))",
                    "quality: accuracy takes `below`, mae takes `above`",
                    ".metric",
                )
            ]
        }
    )

    metric: Literal["accuracy", "mae"]
    below: float | None = Field(default=None, ge=0, le=1, description="accuracy: trigger below this.")
    above: float | None = Field(default=None, ge=0, le=1e12, description="mae: trigger above this.")
    min_samples: int = Field(default=100, ge=30, le=100_000_000, description="Labelled rows a window needs to count.")
    for_duration: Duration = "5m"

    @model_validator(mode="after")
    def _bound_matches_metric(self) -> QualityTrigger:
        if self.metric == "accuracy" and (self.below is None or self.above is not None):
            raise ValueError("quality: accuracy takes `below`, mae takes `above`")
        if self.metric == "mae" and (self.above is None or self.below is not None):
            raise ValueError("quality: accuracy takes `below`, mae takes `above`")
        return self


class PromQLTrigger(Model):
    """Retrain when a PromQL expression stays above a value."""

    query: str = Field(min_length=1, max_length=4096, description="PromQL returning one number.")
    above: float = Field(ge=-1e12, le=1e12)
    for_duration: Duration = "5m"


class RetrainTriggers(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.drift) || has(self.quality) || has(self.promql) || has(self.schedule)",
                    "retraining.triggers: set at least one of drift, quality, promql, schedule",
                )
            ]
        }
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

    @model_validator(mode="after")
    def _one_trigger(self) -> RetrainTriggers:
        if not (self.drift or self.quality or self.promql or self.schedule):
            raise ValueError("retraining.triggers: set at least one of drift, quality, promql, schedule")
        return self


class RetrainDataset(Model):
    """Where training data comes from: a URI a team's pipeline refreshes, or the servers' own logs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.uri) != (has(self.fromServing) && self.fromServing)",
                    "retraining.job.dataset: set exactly one of uri, fromServing: true",
                ),
            ]
        }
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

    @model_validator(mode="after")
    def _one_source(self) -> RetrainDataset:
        if (self.uri is not None) == self.from_serving:
            raise ValueError("retraining.job.dataset: set exactly one of uri, fromServing: true")
        return self


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


class Guardrails(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "duration(self.cooldown) >= duration('1m')",
                    "retraining.guardrails.cooldown must be at least 1m",
                    ".cooldown",
                )
            ]
        }
    )

    cooldown: Duration = Field(default="1h", description="After a run starts, triggers are dropped for this long.")
    max_runs_per_day: int = Field(default=3, ge=1, le=100, description="Runs per UTC day.")
    require_new_data: bool = Field(default=True, description="Skip (NoNewData) when the dataset is unchanged.")
    max_consecutive_rejections: int = Field(
        default=3, ge=1, le=100, description="Rejected or rolled-back candidates in a row before RetrainBlocked."
    )

    @field_validator("cooldown")
    @classmethod
    def _cooldown_at_least_a_minute(cls, value: str) -> str:
        if parse_duration(value) < timedelta(minutes=1):
            raise ValueError("retraining.guardrails.cooldown must be at least 1m")
        return value


class Gate(Model):
    """The candidate must reach minValue (maxValue for mae) and beat the current model by minImprovement."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.metric == 'mae' ? !has(self.minValue) : !has(self.maxValue)",
                    "retraining.gate: mae takes maxValue, accuracy/f1/r2 take minValue",
                    ".metric",
                )
            ]
        }
    )

    metric: Literal["accuracy", "f1", "r2", "mae"] = "accuracy"
    min_value: float | None = Field(default=None, ge=-1e12, le=1e12)
    max_value: float | None = Field(default=None, ge=0, le=1e12)
    min_improvement: float = Field(
        default=0.0, ge=-1e12, le=1e12, description="How much better than current (lower for mae) it must be."
    )

    @model_validator(mode="after")
    def _bound_matches_metric(self) -> Gate:
        if self.metric == "mae" and self.min_value is not None:
            raise ValueError("retraining.gate: mae takes maxValue, accuracy/f1/r2 take minValue")
        if self.metric != "mae" and self.max_value is not None:
            raise ValueError("retraining.gate: mae takes maxValue, accuracy/f1/r2 take minValue")
        return self


class Retraining(Model):
    """The loop in one object: triggers start a guarded Job; its candidate is gated, then rolled out."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.gate) || has(self.job.holdout)",
                    "retraining.job.holdout is required when a gate is set",
                    ".job.holdout",
                )
            ]
        }
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
    def _holdout_for_gate(self) -> Retraining:
        if self.gate is not None and self.job.holdout is None:
            raise ValueError("retraining.job.holdout is required when a gate is set")
        for trigger in (self.triggers.drift, self.triggers.quality, self.triggers.promql):
            if trigger is not None:
                parse_duration(trigger.for_duration)
        parse_duration(self.job.deadline)
        return self


class ModelDeploymentSpec(Model):
    model: ModelSource
    serving: Serving = Field(default_factory=Serving)
    rollout: Rollout = Field(default_factory=Rollout)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    retraining: Retraining | None = None

    @field_validator("rollout")
    @classmethod
    def _durations_parse(cls, value: Rollout) -> Rollout:
        parse_duration(value.analysis.interval)
        for step in value.steps:
            if step.pause and step.pause.duration:
                parse_duration(step.pause.duration)
        return value

    @field_validator("monitoring")
    @classmethod
    def _monitoring_durations_parse(cls, value: Monitoring) -> Monitoring:
        parse_duration(value.scrape_interval)
        parse_duration(value.drift.window)
        return value


# ---------------------------------------------------------------- status


class StatusModel(Model):
    """Base for every status model: unknown fields are ignored, not refused.

    Status is written by the operator itself, so a field this version does not know was written by a
    newer one (an upgrade rolled back, two versions during a rollout of the operator). Refusing it
    would stall the object for good; ignoring it lets this version carry on with what it knows.
    Spec models stay strict (`Model`): there an unknown field is a user's typo.
    """

    model_config = ConfigDict(extra="ignore")


def _known_fields_only(model: type[BaseModel]) -> BeforeValidator:
    """Drop keys `model` does not know before validating: a strict spec model embedded in status."""
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k in known}
        return value

    return BeforeValidator(drop)


# The model a track runs, as recorded in status (a newer operator may know more ModelSource fields).
StatusModelSource = Annotated[ModelSource, _known_fields_only(ModelSource)]


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
