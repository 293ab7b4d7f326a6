"""Prometheus metric provider: instant PromQL queries over HTTP (`/api/v1/query`).

Chosen by `factory.provider_for` when spec.monitoring.prometheusUrl is set. Canary and stable are
queried over the same window, all queries of one measurement concurrently, each under a hard
timeout; an unreachable or slow Prometheus yields readings with `error` (judged Inconclusive/Error),
never an exception, so the rollout holds and says why. The error is always our own short text
(HTTP status + a fixed description): nothing from a remote body reaches status. Redirects are not
followed (they could lead past the allow-list) and answers over 1 MiB are not read.

`minRequests` holds as with the direct scrape: every measurement also asks for the canary's
requests in the window (`queries.requests_query`), and `judging.judge_metric` calls fewer than
`minRequests` Inconclusive (or Failed under `noData: Failed`), never a pass.
"""

from __future__ import annotations

import asyncio
import json
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
from modelops.api.rollout_spec import Metric

# Far above any instant-query answer of one series; a bigger body is not read at all.
MAX_ANSWER_BYTES = 1024 * 1024


class PrometheusProvider:
    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = timeout

    async def query(self, promql: str) -> float | None:
        """The single value of an instant query; None for an empty result. Raises ProviderError.

        The error never carries text from the answer: status is read by people who may not see
        that Prometheus, and a body is whatever the server (or something in between) chose to send.
        """
        try:
            async with self.session.get(
                f"{self.url}/api/v1/query",
                params={"query": promql},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # A redirect could lead anywhere, past the operator's allow-list.
                allow_redirects=False,
            ) as response:
                raw = await _read_capped(response)
                if response.status != 200 and not _is_api_error(response.status, raw):
                    status = response.status
                    raise ProviderError(f"prometheus answered HTTP {status} ({_describe_status(status)})")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderError(f"prometheus unreachable: {_describe_failure(exc)}") from exc
        try:
            body: Any = json.loads(raw)
        except ValueError as exc:
            raise ProviderError(f"prometheus answered HTTP {response.status} with a body that is not JSON") from exc
        return _single_value(body, response.status)

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


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, refused beyond MAX_ANSWER_BYTES: an instant query of one series is a few hundred."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ProviderError(f"prometheus answer larger than {MAX_ANSWER_BYTES // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_api_error(status: int, raw: bytes) -> bool:
    """Prometheus answers a bad or failed query with 400/422/503 and a JSON `status: error`: read it."""
    if status not in (400, 422, 503):
        return False
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "error"


_STATUS_TEXT = {
    301: "a redirect, which is not followed",
    302: "a redirect, which is not followed",
    303: "a redirect, which is not followed",
    307: "a redirect, which is not followed",
    308: "a redirect, which is not followed",
    400: "bad request",
    401: "unauthorized: the operator has no credentials for it",
    403: "forbidden",
    404: "not found: is prometheusUrl the Prometheus server's base address?",
    405: "method not allowed",
    408: "request timeout",
    422: "the query could not be executed",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "unavailable",
    504: "gateway timeout",
}

# Prometheus' own `errorType` values (web/api/v1): a fixed vocabulary, described in our words.
_ERROR_TYPES = {
    "bad_data": "the query is not valid PromQL or its parameters are wrong",
    "execution": "the query failed while executing",
    "timeout": "the query timed out in Prometheus",
    "canceled": "the query was canceled",
    "internal": "Prometheus had an internal error",
    "unavailable": "Prometheus is not ready",
    "not_found": "not found",
    "too_many_samples": "the query touches too many samples",
}


def _describe_status(status: int) -> str:
    if status in _STATUS_TEXT:
        return _STATUS_TEXT[status]
    if 300 <= status < 400:
        return "a redirect, which is not followed"
    if 400 <= status < 500:
        return "refused"
    return "server error" if status >= 500 else "unexpected status"


def _describe_failure(exc: BaseException) -> str:
    """A transport failure in our words: the exception's type, plus the OS reason for a refused
    connection (local text), never a message built from what the server sent."""
    if isinstance(exc, TimeoutError):
        return f"no answer within the timeout ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or type(exc.os_error).__name__})"
    return type(exc).__name__


def _single_value(body: Any, status: int = 200) -> float | None:
    if not isinstance(body, dict) or body.get("status") != "success":
        error_type = body.get("errorType") if isinstance(body, dict) else None
        known = _ERROR_TYPES.get(error_type) if isinstance(error_type, str) else None
        detail = known or "an answer that is not a successful query result"
        raise ProviderError(f"prometheus query failed (HTTP {status}): {detail}")
    data: Any = body.get("data")
    if not isinstance(data, dict):
        raise ProviderError("prometheus answer not understood: no data")
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
        raise ProviderError(f"prometheus answer not understood: expected a {kind} holding a number") from exc
    kind_text = kind if kind in ("matrix", "string") else "result of an unknown type"
    raise ProviderError(f"query returned a {kind_text}; an instant vector or scalar is needed")
