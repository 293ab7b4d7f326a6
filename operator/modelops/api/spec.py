"""The ModelDeployment spec: the model to serve, how its pods run, monitoring, and the roots of
rollout and retraining (`rollout_spec`, `retraining_spec`).

These models are the single source of truth: `modelops crd` generates the CRD's OpenAPI schema (with
its bounds and CEL rules) from them, the controller parses objects with them, and the pure core takes
them as input. Field names are camelCase on the wire through aliases.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from modelops.api.base import CheckedModel, Model
from modelops.api.compute import Resources, Toleration
from modelops.api.durations import Duration, parse_duration
from modelops.api.retraining_spec import Retraining
from modelops.api.rollout_spec import Rollout
from modelops.api.validation import DNS_LABEL, SHA256, CrossFieldRule, duration_at_least
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.uri import parse_pvc_uri

# The images `make image` builds (README "Images"): serving pods run the server, retraining Jobs the trainer.
DEFAULT_SERVER_IMAGE = "modelops-server:0.1.0"
DEFAULT_TRAINER_IMAGE = "modelops-trainer:0.1.0"


class ModelSource(Model):
    """Which model the pods serve and where its artifact lives."""

    cross_field_rules = (
        CrossFieldRule(
            "self.format != 'joblib' || has(self.sha256)",
            "sha256 is required when format is joblib: loading a joblib file runs code",
            ".sha256",
        ),
        CrossFieldRule(
            "!self.uri.startsWith('pvc://') || (self.uri.matches("
            "'^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[^/]')"
            " && !self.uri.matches('/[.][.](/|$)'))",
            "a pvc:// uri is pvc://<claim>/<path>: a PersistentVolumeClaim name, then a relative path "
            "without '..'",
            ".uri",
        ),
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


class Autoscaling(CheckedModel):
    """HPA mode: a HorizontalPodAutoscaler the operator creates sizes the stable track; the operator
    stops writing its replicas and sizes the canary (and a promotion) from the stable's current count."""

    cross_field_rules = (
        CrossFieldRule(
            "self.minReplicas <= self.maxReplicas",
            "minReplicas must not exceed maxReplicas",
            ".minReplicas",
            holds=lambda a: a.min_replicas <= a.max_replicas,
        ),
    )

    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(ge=1, le=100)
    target_cpu_utilization: int = Field(
        default=80, ge=1, le=100, description="Average CPU use the HPA aims at, percent of the pods' CPU requests."
    )


class Serving(Model):
    """How the serving pods run."""

    cross_field_rules = (
        CrossFieldRule("self.grpcPort != self.port", "grpcPort must differ from port", ".grpcPort"),
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


class DriftMonitoring(Model):
    cross_field_rules = (
        CrossFieldRule("self.threshold > 0.0",
            "threshold must be above 0: a PSI is never below 0, so 0 reports drift always", ".threshold"),
        CrossFieldRule(duration_at_least("window", "1s"), "window must be at least 1s", ".window"),
    )

    threshold: float = Field(default=0.2, ge=0, le=10, description="PSI above which drift is reported.")
    window: Duration = "10m"


# A PromQL window must hold several scrapes: `rate()` needs two samples, and with one scrape per
# window (the window equal to the scrape interval) it is empty half the time.
SCRAPES_PER_WINDOW = 4


class Monitoring(Model):
    cross_field_rules = (
        CrossFieldRule(duration_at_least("scrapeInterval", "1s"), "scrapeInterval must be at least 1s",
            ".scrapeInterval"),
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
