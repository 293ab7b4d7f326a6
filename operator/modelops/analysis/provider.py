"""The metric-provider interface alone (Flagger's `providers/provider.go`): the Protocol and the types
every provider shares. It imports no provider; `modelops.analysis.factory.provider_for` chooses one.

The controller builds an `AnalysisTarget` when `modelops.rollout.analysis_runs.analysis_due` says a run is
due, asks the factory for the provider, awaits `measure` for `spec.rollout.analysis.effective_metrics()`,
and hands the readings to the state machine as an `Observed.measurement`.

Adding a provider: one module implementing `MetricProvider` (importing from here, never from the
factory), and one branch in `factory.provider_for` that chooses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from modelops.analysis import queries
from modelops.analysis.judging import MetricReading
from modelops.api.durations import parse_duration
from modelops.api.rollout_spec import Metric
from modelops.api.spec import ModelDeploymentSpec

# A whole measurement (every query of one ModelDeployment) never takes longer than this, so one
# slow Prometheus or pod cannot hold up the operator's other ModelDeployments for long.
DEFAULT_TIMEOUT_SECONDS = 10.0


class ProviderError(Exception):
    """A provider could not produce a value (unreachable, timeout, bad answer)."""


@dataclass(frozen=True)
class TrackTarget:
    """One track to measure: its revision, and its ready pods' `ip:port` (for direct scraping)."""

    revision: str
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisTarget:
    namespace: str
    name: str  # the ModelDeployment
    model: str  # spec.model.name, the `model` label of the server's metrics
    canary: TrackTarget
    stable: TrackTarget | None
    window: timedelta  # `analysis_window(spec)`: canary and stable over the same window


class MetricProvider(Protocol):
    async def measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        """One reading per metric; failures are readings with `error` set, never exceptions."""
        ...

    async def is_online(self) -> bool: ...


def analysis_window(spec: ModelDeploymentSpec) -> timedelta:
    """The PromQL window of a measurement: the analysis interval, but never under four scrapes."""
    return queries.query_window(parse_duration(spec.rollout.analysis.interval),
                                parse_duration(spec.monitoring.scrape_interval))


def failed_readings(metrics: Sequence[Metric], error: str) -> tuple[MetricReading, ...]:
    """Every metric unmeasured for the same reason (e.g. the whole measurement timed out)."""
    return tuple(MetricReading(m.name, canary=None, error=error) for m in metrics)
