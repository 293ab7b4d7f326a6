"""Prometheus metric provider: instant PromQL queries over HTTP (`/api/v1/query`).

Chosen by `provider.provider_for` when spec.monitoring.prometheusUrl is set. Canary and stable are
queried over the same window, all queries of one measurement concurrently, each under a hard
timeout; an unreachable or slow Prometheus yields readings with `error` (judged Inconclusive/Error),
never an exception, so the rollout holds and says why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import aiohttp

from modelops.analysis import queries
from modelops.analysis.judging import TRACK_CANARY, TRACK_STABLE, MetricReading
from modelops.analysis.provider import (
    DEFAULT_TIMEOUT_SECONDS,
    AnalysisTarget,
    ProviderError,
    TrackTarget,
    failed_readings,
)
from modelops.api.models import Metric


class PrometheusProvider:
    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = timeout

    async def query(self, promql: str) -> float | None:
        """The single value of an instant query; None for an empty result. Raises ProviderError."""
        try:
            async with self.session.get(
                f"{self.url}/api/v1/query",
                params={"query": promql},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status != 200:
                    text = (await response.text())[:200]
                    raise ProviderError(f"prometheus answered HTTP {response.status}: {text}")
                body: Any = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"prometheus unreachable: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        return _single_value(body)

    async def is_online(self) -> bool:
        try:
            await self.query("vector(1)")
        except ProviderError:
            return False
        return True

    async def measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._measure(metrics, target)
        except TimeoutError:
            return failed_readings(metrics, f"prometheus did not answer within {self.timeout:g}s")

    async def _measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        requests_query = queries.requests_query(target.model, target.canary.revision, target.window)
        per_metric = [
            asyncio.gather(
                self._value(self._query_for(m, target, target.canary, TRACK_CANARY)),
                self._value(self._query_for(m, target, target.stable, TRACK_STABLE)) if target.stable else _none(),
            )
            for m in metrics
        ]
        requests, results = await asyncio.gather(self._value(requests_query), asyncio.gather(*per_metric))
        readings: list[MetricReading] = []
        for metric, (canary, stable) in zip(metrics, results, strict=True):
            error = next((v for v in (canary, requests) if isinstance(v, ProviderError)), None)
            readings.append(
                MetricReading(
                    name=metric.name,
                    canary=_number(canary),
                    stable=_number(stable),
                    samples=round(_number(requests) or 0),
                    error=str(error) if error is not None else None,
                )
            )
        return tuple(readings)

    def _query_for(self, metric: Metric, target: AnalysisTarget, track: TrackTarget, name: str) -> str:
        if metric.builtin is not None:
            return queries.builtin_query(metric.builtin, target.model, track.revision, target.window)
        assert metric.prometheus is not None
        return queries.substitute(metric.prometheus.query, revision=track.revision, track=name,
                                  namespace=target.namespace, name=target.name, model=target.model,
                                  window=target.window)

    async def _value(self, promql: str) -> float | ProviderError | None:
        try:
            return await self.query(promql)
        except ProviderError as exc:
            return exc


async def _none() -> None:
    return None


def _number(value: float | ProviderError | None) -> float | None:
    if isinstance(value, ProviderError) or value is None or math.isnan(value):
        return None
    return value


def _single_value(body: Any) -> float | None:
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise ProviderError(f"prometheus query failed: {error or 'unexpected answer'}")
    data: dict[str, Any] = body.get("data") or {}
    kind: Any = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "scalar":
            return float(result[1])
        if kind == "vector":
            if not result:
                return None
            if len(result) > 1:
                raise ProviderError(f"query returned {len(result)} series; aggregate it to one (e.g. sum or max)")
            return float(result[0]["value"][1])
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise ProviderError(f"prometheus answer not understood: {exc}") from exc
    raise ProviderError(f"query returned a {kind}; an instant vector or scalar is needed")
