"""The metric-provider interface (à la Flagger: one small Protocol, chosen by a factory).

The controller builds an `AnalysisTarget` when `modelops.rollout.machine.analysis_due` says a run is
due, asks `provider_for(spec, session)` for the provider, awaits `measure`, and hands the readings
to the state machine as an `Observed.measurement`. Adding a provider is adding one module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import aiohttp

from modelops.analysis.judging import MetricReading
from modelops.api.models import Metric, ModelDeploymentSpec, parse_duration

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
    window: timedelta  # spec.rollout.analysis.interval: canary and stable over the same window


class MetricProvider(Protocol):
    async def measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        """One reading per metric; failures are readings with `error` set, never exceptions."""
        ...

    async def is_online(self) -> bool: ...


def analysis_window(spec: ModelDeploymentSpec) -> timedelta:
    return parse_duration(spec.rollout.analysis.interval)


def provider_for(
    spec: ModelDeploymentSpec, session: aiohttp.ClientSession, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> MetricProvider:
    """Prometheus when spec.monitoring.prometheusUrl is set, otherwise a direct scrape of the pods."""
    # Imported here so that each provider module stays optional for the other's users.
    from modelops.analysis.prometheus import PrometheusProvider
    from modelops.analysis.scrape import ScrapeProvider

    if spec.monitoring.prometheus_url:
        return PrometheusProvider(spec.monitoring.prometheus_url, session, timeout=timeout)
    return ScrapeProvider(session, timeout=timeout)


def failed_readings(metrics: Sequence[Metric], error: str) -> tuple[MetricReading, ...]:
    """Every metric unmeasured for the same reason (e.g. the whole measurement timed out)."""
    return tuple(MetricReading(m.name, canary=None, error=error) for m in metrics)
