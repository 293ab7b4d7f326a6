"""The Prometheus provider against real HTTP servers on 127.0.0.1: a prometheusUrl off the operator's
allow-list is never requested; nothing a server sends back (error bodies, redirects, odd answers)
reaches a reading's message; windows span at least four scrapes; and fewer canary requests than
`minRequests` is Inconclusive, never a pass."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from modelops.analysis.allowlist import ALLOW_FLAG, parse_allow_entry, parse_allow_list, prometheus_allowed
from modelops.analysis.factory import provider_for
from modelops.analysis.judging import judge_run
from modelops.analysis.prometheus import MAX_ANSWER_BYTES, PrometheusProvider
from modelops.analysis.provider import AnalysisTarget, TrackTarget, analysis_window
from modelops.analysis.queries import query_window
from modelops.api.rollout_spec import Metric
from modelops.api.spec import ModelDeploymentSpec

MARKER = "SECRET-MARKER-7f3a"
ERRORS = Metric.model_validate({"name": "errors", "builtin": "errorRate", "max": 0.02})
P99 = Metric.model_validate({"name": "p99", "builtin": "latencyP99", "vsStable": {"maxIncrease": 0.5}})


def target(window: timedelta = timedelta(seconds=30)) -> AnalysisTarget:
    return AnalysisTarget(namespace="ml", name="iris", model="iris", canary=TrackTarget("c0ffee0001"),
                          stable=TrackTarget("5ab1e00001"), window=window)


def vector(value: str | None) -> dict[str, Any]:
    result = [] if value is None else [{"metric": {}, "value": [1700000000, value]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def spec(**monitoring: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({
        "model": {"name": "iris", "version": "1", "uri": "file:///m", "format": "skops"},
        "monitoring": monitoring,
    })


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Server:
    """A real HTTP server on loopback that answers with `handler` and counts the requests it got."""

    def __init__(self, handler: Callable[[web.Request], web.StreamResponse]):
        self.handler = handler
        self.requests: list[str] = []
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return self.handler(request)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def __aenter__(self) -> Server:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()


# ------------------------------------------------------------------ the allow-list


@pytest.mark.parametrize(("entry", "url", "allowed"), [
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc:9090", True),
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc:9090/", True),
    ("http://prometheus.monitoring.svc:9090", "https://prometheus.monitoring.svc:9090", False),
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc:9091", False),
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc", False),
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc.evil.example:9090", False),
    ("http://prometheus.monitoring.svc:9090", "http://prometheus.monitoring.svc:9090@evil.example:9090", False),
    ("http://prometheus.monitoring.svc:9090", "http://user:pw@prometheus.monitoring.svc:9090", False),
    ("https://thanos.example/prom", "https://thanos.example/prom/tenant-a", True),
    ("https://thanos.example/prom", "https://thanos.example:443/prom", True),
    ("https://thanos.example/prom", "https://thanos.example/prometheus", False),
    ("https://thanos.example/prom", "https://thanos.example/", False),
    ("prometheus.monitoring.svc:9090", "https://prometheus.monitoring.svc:9090", True),
    ("prometheus.monitoring.svc", "http://prometheus.monitoring.svc:31000", True),
    ("PROMETHEUS.monitoring.svc", "http://prometheus.Monitoring.svc:9090", True),
    ("*.monitoring.svc:9090", "http://prometheus.monitoring.svc:9090", True),
    ("*.monitoring.svc:9090", "http://monitoring.svc:9090", False),
    ("*.monitoring.svc:9090", "http://prometheus.evilmonitoring.svc:9090", False),
    ("127.0.0.1:9090", "http://127.0.0.1:9090", True),
    ("[::1]:9090", "http://[::1]:9090", True),
    ("127.0.0.1:9090", "http://127.0.0.2:9090", False),
    ("127.0.0.1:9090", "ftp://127.0.0.1:9090", False),
    ("127.0.0.1:9090", "http://127.0.0.1:bad", False),
])
def test_allow_list_matches_scheme_host_port_and_path(entry: str, url: str, allowed: bool) -> None:
    assert prometheus_allowed(url, parse_allow_list([entry])) is allowed


@pytest.mark.parametrize("entry", ["ftp://prom:9090", "prom/path", "http://user@prom", "http://prom?x=1",
                                   "http://", "prom:notaport", "pr om:9090"])
def test_a_bad_allow_entry_is_an_error_naming_it_and_the_flag(entry: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_allow_entry(entry)
    assert ALLOW_FLAG in str(error.value) and entry in str(error.value)


async def test_a_url_not_allowed_is_an_error_reading_and_never_requested(session: aiohttp.ClientSession) -> None:
    async with Server(lambda request: web.json_response(vector("0.001"))) as prom:
        allow = parse_allow_list(["http://prometheus.monitoring.svc:9090"])
        provider = provider_for(spec(prometheusUrl=prom.url), session, prometheus_allow=allow)
        readings = await provider.measure([ERRORS, P99], target())
        assert not await provider.is_online()
        default = provider_for(spec(prometheusUrl=prom.url), session)  # no list at all: nothing is allowed
        assert (await default.measure([ERRORS], target()))[0].error == readings[0].error
        assert prom.requests == []
        url = prom.url
    assert all(r.error is not None and url in r.error and ALLOW_FLAG in r.error for r in readings)
    run = judge_run([ERRORS, P99], readings, 20, "Inconclusive", "2025-01-01T00:00:00Z")
    assert run.verdict == "Inconclusive" and {m.verdict for m in run.metrics} == {"Error"}


async def test_an_allowed_url_is_queried(session: aiohttp.ClientSession) -> None:
    async with Server(lambda request: web.json_response(vector("100"))) as prom:
        allow = parse_allow_list([prom.url])
        readings = await provider_for(spec(prometheusUrl=prom.url), session, prometheus_allow=allow).measure(
            [ERRORS], target())
        assert prom.requests
    assert readings[0].error is None and readings[0].canary == 100.0


# ------------------------------------------------------------------ no remote text in status


def _text(status: int) -> Callable[[web.Request], web.StreamResponse]:
    return lambda request: web.Response(status=status, text=f"<html>{MARKER} went wrong</html>")


def _json(status: int, body: dict[str, Any]) -> Callable[[web.Request], web.StreamResponse]:
    return lambda request: web.json_response(body, status=status)


ANSWERS: dict[str, tuple[Callable[[web.Request], web.StreamResponse], str]] = {
    "500-html": (_text(500), "HTTP 500 (internal server error)"),
    "502-html": (_text(502), "HTTP 502 (bad gateway)"),
    "403-html": (_text(403), "HTTP 403 (forbidden)"),
    "404-html": (_text(404), "HTTP 404 (not found"),
    "418-html": (_text(418), "HTTP 418 (refused)"),
    "400-prometheus-error": (_json(400, {"status": "error", "errorType": "bad_data",
                                         "error": f"parse error: {MARKER}"}), "not valid PromQL"),
    "422-prometheus-error": (_json(422, {"status": "error", "errorType": "execution",
                                         "error": MARKER}), "failed while executing"),
    "400-unknown-error-type": (_json(400, {"status": "error", "errorType": MARKER, "error": MARKER}),
                               "not a successful query result"),
    "200-not-json": (_text(200), "not JSON"),
    "200-error-status": (_json(200, {"status": MARKER, "error": MARKER}), "not a successful query result"),
    "200-value-not-a-number": (_json(200, vector(MARKER)), "expected a vector holding a number"),
    "200-result-type-unknown": (_json(200, {"status": "success", "data": {"resultType": MARKER, "result": []}}),
                                "result of an unknown type"),
    "200-too-large": (lambda request: web.Response(text=MARKER * (MAX_ANSWER_BYTES // len(MARKER) + 10)),
                      "larger than 1024 KiB"),
}


@pytest.mark.parametrize("case", list(ANSWERS), ids=list(ANSWERS))
async def test_errors_are_our_own_words_never_the_answer_body(session: aiohttp.ClientSession, case: str) -> None:
    handler, expected = ANSWERS[case]
    async with Server(handler) as prom:
        readings = await PrometheusProvider(prom.url, session, timeout=5).measure([ERRORS, P99], target())
        assert prom.requests
    run = judge_run([ERRORS, P99], readings, 20, "Inconclusive", "2025-01-01T00:00:00Z")
    for reading, result in zip(readings, run.metrics, strict=True):
        assert reading.error is not None and expected in reading.error, reading.error
        assert MARKER not in reading.error and MARKER not in result.message
        assert len(reading.error) < 200
        assert result.verdict == "Error"


async def test_a_redirect_is_not_followed(session: aiohttp.ClientSession) -> None:
    async with Server(lambda request: web.json_response(vector("0"))) as elsewhere:
        def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{elsewhere.url}/api/v1/query?{request.query_string}&{MARKER}")

        async with Server(redirect) as prom:
            readings = await PrometheusProvider(prom.url, session, timeout=5).measure([ERRORS], target())
            assert prom.requests
        assert elsewhere.requests == []
    assert readings[0].error is not None and "redirect, which is not followed" in readings[0].error
    assert MARKER not in readings[0].error


async def test_a_refused_connection_says_so_in_our_words(session: aiohttp.ClientSession) -> None:
    async with Server(lambda request: web.json_response(vector("0"))) as prom:
        url = prom.url
    readings = await PrometheusProvider(url, session, timeout=5).measure([ERRORS], target())
    assert readings[0].error is not None and readings[0].error.startswith("prometheus unreachable: cannot connect")


# ------------------------------------------------------------------ windows and minRequests


def test_the_window_spans_at_least_four_scrape_intervals() -> None:
    assert query_window(timedelta(seconds=30), timedelta(seconds=30)) == timedelta(seconds=120)
    assert query_window(timedelta(minutes=5), timedelta(seconds=30)) == timedelta(minutes=5)
    assert query_window(timedelta(seconds=2), timedelta(seconds=1)) == timedelta(seconds=4)
    assert analysis_window(spec()) == timedelta(seconds=120)  # defaults: interval 30s, scrapes every 30s
    assert analysis_window(spec(scrapeInterval="15s")) == timedelta(seconds=60)
    assert analysis_window(spec(scrapeInterval="1m")) == timedelta(minutes=4)


async def test_queries_use_the_window_and_few_requests_are_inconclusive(session: aiohttp.ClientSession) -> None:
    requests = {"count": "5"}

    def api(request: web.Request) -> web.StreamResponse:
        query = request.query["query"]
        if "increase(modelops_requests_total" in query:
            return web.json_response(vector(requests["count"]))
        if "histogram_quantile" in query:
            return web.json_response(vector("0.1"))
        return web.json_response(vector("0.0"))

    window = analysis_window(spec(scrapeInterval="30s"))
    async with Server(api) as prom:
        provider = PrometheusProvider(prom.url, session, timeout=5)
        few = await provider.measure([ERRORS, P99], target(window))
        requests["count"] = "250"
        enough = await provider.measure([ERRORS, P99], target(window))
        queries = [r for r in prom.requests if "rate" in r or "increase" in r]
    assert queries and all("%5B120s%5D" in q for q in queries), queries
    # Values well within limits, but only 5 requests behind them: no verdict, and never a pass.
    run = judge_run([ERRORS, P99], few, 20, "Inconclusive", "2025-01-01T00:00:00Z")
    assert run.verdict == "Inconclusive"
    assert {m.verdict for m in run.metrics} == {"Inconclusive"}
    assert "only 5 requests, 20 needed" in run.metrics[0].message
    assert judge_run([ERRORS, P99], few, 20, "Failed", "2025-01-01T00:00:00Z").verdict == "Failed"
    assert judge_run([ERRORS, P99], enough, 20, "Inconclusive", "2025-01-01T00:00:00Z").verdict == "Successful"
