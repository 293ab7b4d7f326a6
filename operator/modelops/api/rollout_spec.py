"""spec.rollout: how a new version goes out (traffic router, steps) and what judges the canary
(analysis and its metrics). Read by `modelops.rollout`, `modelops.traffic` and `modelops.analysis`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelops.api.base import Model
from modelops.api.durations import Duration
from modelops.api.validation import DNS_LABEL, CrossFieldRule, duration_at_least


class HTTPRouteRef(Model):
    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)


class Traffic(Model):
    cross_field_rules = (
        CrossFieldRule(
            "self.router != 'GatewayAPI' || has(self.httpRoute)",
            "httpRoute is required when router is GatewayAPI",
            ".httpRoute",
        ),
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

    cross_field_rules = (
        CrossFieldRule(
            duration_at_least("duration", "1ms"),
            "a pause of 0s does not wait: leave out the step, or leave out duration to wait for promote",
            ".duration",
        ),
    )

    duration: Duration | None = None


class AnalysisStep(Model):
    """Hold the step until this many consecutive analysis intervals pass."""

    count: int = Field(default=1, ge=1, le=100)


class Step(Model):
    cross_field_rules = (
        CrossFieldRule(
            "[has(self.setWeight), has(self.pause), has(self.analysis)].filter(x, x).size() == 1",
            "each step sets exactly one of setWeight, pause, analysis",
        ),
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
    cross_field_rules = (
        CrossFieldRule(
            "has(self.builtin) != has(self.prometheus)",
            "set exactly one of builtin, prometheus",
        ),
        CrossFieldRule(
            "has(self.max) || has(self.min) || has(self.vsStable)",
            "set at least one of max, min, vsStable",
        ),
        CrossFieldRule(
            "!has(self.min) || !has(self.max) || self.min <= self.max",
            "min must not exceed max",
            ".min",
        ),
        # Limits a builtin's value can never cross make a gate that never trips (or always does).
        CrossFieldRule(
            "!has(self.builtin) || self.builtin != 'errorRate' || !has(self.max) || "
            "(self.max >= 0.0 && self.max < 1.0)",
            "max of errorRate must be at least 0 and below 1: an error rate is a share between 0 and 1, "
            "so max 1 or more never trips",
            ".max",
        ),
        CrossFieldRule(
            "!has(self.builtin) || self.builtin != 'errorRate' || !has(self.min) || "
            "(self.min > 0.0 && self.min <= 1.0)",
            "min of errorRate must be above 0 and at most 1: an error rate is a share between 0 and 1",
            ".min",
        ),
        CrossFieldRule(
            f"!has(self.builtin) || !(self.builtin in {_POSITIVE_BUILTINS}) || !has(self.max) || "
            "self.max > 0.0",
            "max of latencyP99, predictionDrift or featureDrift must be above 0: the value is never "
            "below 0, so max 0 or less fails every canary",
            ".max",
        ),
        CrossFieldRule(
            f"!has(self.builtin) || !(self.builtin in {_POSITIVE_BUILTINS}) || !has(self.min) || "
            "self.min > 0.0",
            "min of latencyP99, predictionDrift or featureDrift must be above 0: the value is never "
            "below 0, so min 0 or less never trips",
            ".min",
        ),
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
    cross_field_rules = (
        CrossFieldRule(
            "!has(self.metrics) || self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
            "metric names must be unique",
            ".metrics",
        ),
        CrossFieldRule(
            "!has(self.metrics) || self.metrics.size() > 0",
            "metrics is empty: leave it out for the default metrics (error rate, p99 against stable), "
            "or set disabled: true to promote on the steps alone",
            ".metrics",
        ),
        CrossFieldRule(
            "!has(self.disabled) || !self.disabled || !has(self.metrics)",
            "disabled: true and metrics contradict each other: remove one of them",
            ".disabled",
        ),
        CrossFieldRule(
            duration_at_least("interval", "1s"),
            "interval must be at least 1s: a 0s interval never waits between runs",
            ".interval",
        ),
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
    cross_field_rules = (
        CrossFieldRule(
            f"{_ANALYSIS_OFF} || !has(self.steps) || self.steps.exists(s, has(s.setWeight))",
            "steps need a setWeight while analysis is on: a canary that carries no traffic is never "
            "judged (no steps at all would promote it unjudged); add one, or set analysis.disabled: true",
            ".steps",
        ),
        CrossFieldRule(
            f"!{_ANALYSIS_OFF} || !has(self.steps) || !self.steps.exists(s, has(s.analysis))",
            "an analysis step cannot pass with analysis.disabled: true: remove the step or the flag",
            ".steps",
        ),
        CrossFieldRule(
            "!has(self.steps) || (self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
            "self.steps.filter(s, has(s.setWeight)).all(s, "
            "self.steps.filter(t, has(t.setWeight) && t.setWeight == s.setWeight).size() == 1))",
            "setWeight values must be strictly increasing",
            ".steps",
        ),
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
