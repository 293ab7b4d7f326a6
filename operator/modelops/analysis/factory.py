"""The metric-provider factory (Flagger's `providers/factory.go`): which provider measures a
ModelDeployment. The only module that imports the providers; they import the interface
(`modelops.analysis.provider`), never this, so no import circle is possible.

Called by `modelops.controller.reconcile` once per analysis run.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from modelops.analysis.allowlist import AllowedPrometheus, prometheus_allowed, refusal
from modelops.analysis.prometheus import PrometheusProvider
from modelops.analysis.provider import DEFAULT_TIMEOUT_SECONDS, MetricProvider
from modelops.analysis.refused import RefusedProvider
from modelops.analysis.scrape import ScrapeProvider
from modelops.api.spec import ModelDeploymentSpec


def provider_for(
    spec: ModelDeploymentSpec,
    session: aiohttp.ClientSession,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    *,
    prometheus_allow: Sequence[AllowedPrometheus] = (),
) -> MetricProvider:
    """Prometheus when spec.monitoring.prometheusUrl is set and on the operator's allow-list
    (`prometheus_allow`, from `--prometheus-allow`; empty: no Prometheus may be queried), a provider
    of Error readings when it is set but not allowed, otherwise a direct scrape of the pods."""
    url = spec.monitoring.prometheus_url
    if url:
        if not prometheus_allowed(url, prometheus_allow):
            return RefusedProvider(refusal(url))
        return PrometheusProvider(url, session, timeout=timeout)
    return ScrapeProvider(session, timeout=timeout)
