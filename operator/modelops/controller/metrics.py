"""The operator's own Prometheus metrics and the small HTTP server that exposes them with
`/healthz` (the process is alive) and `/readyz` (caches synced).

Created once by `modelops.controller.runner`; the reconciler, queue, informers and the Kubernetes
wrapper record into it. Metric names are documented in docs and used by the shipped alerts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def lane(urgent: bool) -> str:
    return "urgent" if urgent else "routine"


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter("modelops_reconcile", "Reconciles by result (ok, conflict, error, gone).",
                                  ["result"], registry=r)
        self.reconcile_seconds = Histogram(
            "modelops_reconcile_duration_seconds",
            "Time one reconcile took, measurement included, by lane (urgent: a person's edit or command).",
            ["lane"], registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.queue_depth = Gauge("modelops_workqueue_depth", "Keys waiting for a worker.", registry=r)
        self.queue_wait = Histogram(
            "modelops_workqueue_wait_seconds", "Time a key waited in the queue before a worker took it, by lane.",
            ["lane"], registry=r, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        for known in ("urgent", "routine"):  # exported from the start, before the first observation
            self.queue_wait.labels(lane=known)
            self.reconcile_seconds.labels(lane=known)
        self.api_requests = Counter("modelops_api_requests", "Requests to the Kubernetes API by verb and code.",
                                    ["verb", "code"], registry=r)
        self.rollouts = Counter("modelops_rollouts", "Finished rollouts by outcome.", ["outcome"], registry=r)
        self.verdicts = Counter("modelops_analysis_verdicts", "Analysis metric verdicts.", ["verdict"], registry=r)
        self.leader = Gauge("modelops_leader", "1 while this replica holds the leader Lease.", registry=r)
        self.objects_status = ObjectStatus()
        r.register(self.objects_status)
        self.retraining_runs = Counter(
            "modelops_retraining_runs", "Retraining runs by outcome (Dropped: a trigger a guardrail dropped).",
            ["outcome"], registry=r)
        self.objects = Gauge("modelops_cached_objects", "Objects held in the informer caches, by kind.", ["kind"],
                             registry=r)

    def waited(self, seconds: float, urgent: bool) -> None:
        self.queue_wait.labels(lane=lane(urgent)).observe(seconds)

    def api(self, verb: str, code: str) -> None:
        self.api_requests.labels(verb=verb, code=code).inc()

    def object_status(self, namespace: str, name: str, phase: str | None,
                      conditions: list[tuple[str, str]]) -> None:
        self.objects_status.set(namespace, name, phase, conditions)

    def forget_object(self, namespace: str, name: str) -> None:
        """A deleted ModelDeployment leaves no series behind."""
        self.objects_status.forget(namespace, name)


class ObjectStatus(Collector):
    """Each ModelDeployment's phase and conditions as series that are 1 for the current value.

    Only the current values are exported (one phase series, one per condition type): exporting every
    phase and status as 0 or 1 made 30 series per object, 90,000 at 3,000 objects, and rendering them
    held the event loop for 2 s on each scrape. The shipped alerts and the dashboard select `== 1`.
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], tuple[str | None, tuple[tuple[str, str], ...]]] = {}

    def set(self, namespace: str, name: str, phase: str | None, conditions: list[tuple[str, str]]) -> None:
        self._objects[(namespace, name)] = (phase, tuple(conditions))

    def forget(self, namespace: str, name: str) -> None:
        self._objects.pop((namespace, name), None)

    def collect(self) -> Iterator[Metric]:
        phases = GaugeMetricFamily("modelops_modeldeployment_phase",
                                   "1 for the current phase of each ModelDeployment.",
                                   labels=["namespace", "name", "phase"])
        conditions = GaugeMetricFamily("modelops_modeldeployment_condition",
                                       "Conditions of each ModelDeployment: 1 for each type's current status.",
                                       labels=["namespace", "name", "type", "status"])
        for (namespace, name), (phase, current) in list(self._objects.items()):  # a copy: set() runs meanwhile
            if phase is not None:
                phases.add_metric([namespace, name, phase], 1)
            for type_, status in current:
                conditions.add_metric([namespace, name, type_, status], 1)
        yield phases
        yield conditions


async def serve(metrics: OperatorMetrics, port: int, ready: Callable[[], bool]) -> web.AppRunner:
    """Serve /metrics, /healthz and /readyz on `port` (all interfaces: the kubelet and Prometheus scrape it)."""

    async def scrape(_: web.Request) -> web.Response:
        # Rendered on a thread: thousands of objects' series must not hold the event loop.
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if ready() else web.Response(status=503, text="caches not synced\n")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port).start()
    return runner
