"""The metric providers against real local HTTP servers (aiohttp on 127.0.0.1): a fake Prometheus
answering /api/v1/query, and fake model-server pods serving /metrics pages that move between scrapes."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from modelops.analysis.allowlist import parse_allow_list
from modelops.analysis.factory import provider_for
from modelops.analysis.judging import judge_run
from modelops.analysis.prometheus import PrometheusProvider
from modelops.analysis.provider import AnalysisTarget, TrackTarget
from modelops.analysis.scrape import ScrapeProvider, histogram_quantile
from modelops.api.rollout_spec import Metric
from modelops.api.spec import ModelDeploymentSpec

ERRORS = Metric.model_validate({"name": "errors", "builtin": "errorRate", "max": 0.02})
P99 = Metric.model_validate({"name": "p99", "builtin": "latencyP99", "max": 0.25,
                             "vsStable": {"maxIncrease": 0.2}})
DRIFT = Metric.model_validate({"name": "drift", "builtin": "featureDrift", "max": 0.2})
CUSTOM = Metric.model_validate({"name": "custom", "prometheus": {
    "query": 'sum(rate(my_total{revision="$revision",track="$track",ns="$namespace"}[$interval]))'}, "max": 5})


def target(canary_eps: tuple[str, ...] = (), stable_eps: tuple[str, ...] = ()) -> AnalysisTarget:
    return AnalysisTarget(namespace="ml", name="iris", model="iris", canary=TrackTarget("c0ffee0001", canary_eps),
                          stable=TrackTarget("5ab1e00001", stable_eps), window=timedelta(seconds=30))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def serve(handler: Callable[[web.Request], Any]) -> TestServer:
    async def handle(request: web.Request) -> web.StreamResponse:
        answer = handler(request)
        return await answer if inspect.isawaitable(answer) else answer

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def vector(value: str | None) -> dict[str, Any]:
    result = [] if value is None else [{"metric": {}, "value": [1700000000, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


# ------------------------------------------------------------------ Prometheus


async def test_prometheus_builtins_query_each_track_over_the_same_window(session: aiohttp.ClientSession):
    seen: list[str] = []

    async def api(request: web.Request) -> web.Response:
        query = request.query["query"]
        seen.append(query)
        canary = 'revision="c0ffee0001"' in query
        if "increase(modelops_requests_total" in query:
            return web.json_response(vector("240"))
        if "histogram_quantile" in query:
            return web.json_response(vector("0.4" if canary else "0.1"))
        if "code=~" in query:
            return web.json_response(vector("0.01"))
        return web.json_response(vector("NaN"))

    server = await serve(api)
    try:
        provider = PrometheusProvider(str(server.make_url("")), session, timeout=5)
        readings = await provider.measure([ERRORS, P99], target())
    finally:
        await server.close()
    by_name = {r.name: r for r in readings}
    assert by_name["errors"].canary == 0.01 and by_name["errors"].samples == 240
    assert by_name["p99"].canary == 0.4 and by_name["p99"].stable == 0.1
    assert all("[30s]" in q for q in seen if "rate" in q or "increase" in q)
    run = judge_run([ERRORS, P99], readings, 20, "Inconclusive", "2025-01-01T00:00:00Z")
    assert run.verdict == "Failed"
    assert run.first_failure is not None and run.first_failure.name == "p99"


async def test_prometheus_custom_query_gets_its_variables(session: aiohttp.ClientSession):
    seen: list[str] = []

    async def api(request: web.Request) -> web.Response:
        seen.append(request.query["query"])
        return web.json_response({"status": "success", "data": {"resultType": "scalar",
                                                                "result": [1700000000, "3"]}})

    server = await serve(api)
    try:
        readings = await PrometheusProvider(str(server.make_url("")), session).measure([CUSTOM], target())
    finally:
        await server.close()
    assert readings[0].canary == 3.0 and readings[0].error is None
    assert 'sum(rate(my_total{revision="c0ffee0001",track="canary",ns="ml"}[30s]))' in seen
    assert 'sum(rate(my_total{revision="5ab1e00001",track="stable",ns="ml"}[30s]))' in seen


async def test_prometheus_unreachable_is_an_error_reading(session: aiohttp.ClientSession):
    server = await serve(lambda request: web.Response(status=503, text="down for maintenance"))
    url = str(server.make_url(""))
    try:
        provider = PrometheusProvider(url, session, timeout=5)
        readings = await provider.measure([ERRORS], target())
        assert not await provider.is_online()
    finally:
        await server.close()
    assert readings[0].error is not None and "HTTP 503" in readings[0].error
    # And once the server is gone altogether:
    readings = await PrometheusProvider(url, session, timeout=5).measure([ERRORS], target())
    assert readings[0].error is not None and "unreachable" in readings[0].error


async def test_prometheus_slow_answer_hits_the_hard_timeout(session: aiohttp.ClientSession):
    import asyncio

    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(vector("1"))

    server = await serve(stuck)
    try:
        readings = await PrometheusProvider(str(server.make_url("")), session, timeout=0.2).measure(
            [ERRORS, P99], target())
    finally:
        release.set()
        await server.close()
    assert all(r.error is not None for r in readings)
    assert {r.canary for r in readings} == {None}


async def test_prometheus_empty_result_is_no_data(session: aiohttp.ClientSession):
    server = await serve(lambda request: web.json_response(vector(None)))
    try:
        readings = await PrometheusProvider(str(server.make_url("")), session).measure([DRIFT], target())
    finally:
        await server.close()
    assert readings[0].canary is None and readings[0].error is None and readings[0].samples == 0


# ------------------------------------------------------------------ direct scrape


def page(requests_ok: int, requests_5xx: int, fast: int, slow: int, revision: str, drift: float) -> str:
    labels = f'model="iris",version="2",revision="{revision}"'
    total = fast + slow
    return f"""# HELP modelops_requests_total Requests served.
# TYPE modelops_requests_total counter
modelops_requests_total{{{labels},code="200"}} {requests_ok}
modelops_requests_total{{{labels},code="500"}} {requests_5xx}
modelops_requests_total{{{labels},code="400"}} 7
# HELP modelops_request_duration_seconds Request latency.
# TYPE modelops_request_duration_seconds histogram
modelops_request_duration_seconds_bucket{{{labels},le="0.05"}} {fast}
modelops_request_duration_seconds_bucket{{{labels},le="0.5"}} {total}
modelops_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total}
modelops_request_duration_seconds_count{{{labels}}} {total}
modelops_request_duration_seconds_sum{{{labels}}} 1.0
# HELP modelops_feature_drift_psi Feature drift.
# TYPE modelops_feature_drift_psi gauge
modelops_feature_drift_psi{{{labels},feature="petal_length"}} {drift}
modelops_feature_drift_psi{{{labels},feature="sepal_width"}} 0.01
"""


async def test_scrape_computes_builtins_from_deltas_between_two_scrapes(session: aiohttp.ClientSession):
    scrapes = {"canary": 0, "stable": 0}

    def pod(track: str, revision: str, second: tuple[int, int, int, int], drift: float):
        async def metrics(request: web.Request) -> web.Response:
            scrapes[track] += 1
            values = (1000, 10, 900, 100) if scrapes[track] == 1 else second
            return web.Response(text=page(*values, revision=revision, drift=drift))
        return metrics

    # Canary: +90 ok, +10 errors, all 100 new requests slow. Stable: +100 ok, 0 errors, all fast.
    canary = await serve(pod("canary", "c0ffee0001", (1090, 20, 900, 200), 0.3))
    stable = await serve(pod("stable", "5ab1e00001", (1100, 10, 1000, 100), 0.05))
    try:
        provider = ScrapeProvider(session, timeout=5, scrape_window=0.01)
        ep = lambda s: f"127.0.0.1:{s.port}"  # noqa: E731
        readings = await provider.measure([ERRORS, P99, DRIFT, CUSTOM], target((ep(canary),), (ep(stable),)))
    finally:
        await canary.close()
        await stable.close()
    by_name = {r.name: r for r in readings}
    assert by_name["errors"].canary == pytest.approx(10 / 100)  # 5xx only; 400s are not errors
    assert by_name["errors"].stable == 0.0
    assert by_name["errors"].samples == 100
    assert by_name["p99"].canary == pytest.approx(0.05 + 0.45 * 0.99)
    assert by_name["p99"].stable == pytest.approx(0.05 * 0.99)
    assert by_name["drift"].canary == 0.3
    assert by_name["custom"].error is not None and "prometheusUrl" in by_name["custom"].error


async def test_scrape_of_unreachable_pods_is_an_error_reading(session: aiohttp.ClientSession):
    server = await serve(lambda request: web.Response(text=""))
    dead = f"127.0.0.1:{server.port}"
    await server.close()
    readings = await ScrapeProvider(session, timeout=2, scrape_window=0.01).measure([ERRORS], target((dead,)))
    assert readings[0].error is not None and "could be scraped" in readings[0].error


def test_histogram_quantile_interpolates_like_prometheus():
    assert histogram_quantile(0.5, [(0.1, 50), (0.2, 100), (float("inf"), 100)]) == pytest.approx(0.1)
    assert histogram_quantile(0.99, [(0.1, 0), (0.2, 100), (float("inf"), 100)]) == pytest.approx(0.199)
    assert histogram_quantile(0.99, [(0.1, 10), (float("inf"), 100)]) == 0.1  # beyond the last bound
    assert histogram_quantile(0.99, [(0.1, 0), (float("inf"), 0)]) is None


def test_factory_picks_prometheus_only_when_an_address_is_given():
    base: dict[str, Any] = {"model": {"name": "iris", "version": "1", "uri": "file:///m", "format": "skops"}}
    with_prom = ModelDeploymentSpec.model_validate({**base, "monitoring": {"prometheusUrl": "http://prom:9090"}})
    session = object()
    allow = parse_allow_list(["prom:9090"])
    assert isinstance(provider_for(with_prom, session, prometheus_allow=allow),  # type: ignore[arg-type]
                      PrometheusProvider)
    assert isinstance(provider_for(ModelDeploymentSpec.model_validate(base), session), ScrapeProvider)  # type: ignore[arg-type]
