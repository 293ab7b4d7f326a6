"""`modelops run`: the operator process.

Starts the informers (one watch per kind and namespace, server-side label selectors), waits for
their caches, takes the leader Lease (standbys keep warm caches and wait), and then runs a fixed
number of workers over the work queue. Watch events queue the key of the ModelDeployment they
concern; a periodic resync re-queues every cached key without any API call. Metrics, /healthz and
/readyz are served on `--metrics-port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from modelops.analysis.allowlist import parse_allow_list
from modelops.controller.cache import (
    Cache,
    keep_all,
    slim_deployment,
    slim_job,
    slim_mdep,
    slim_pod,
    slim_service,
    slim_spec,
)
from modelops.controller.informer import Informer, Obj
from modelops.controller.kube import Conflict, Kube
from modelops.controller.leader import LeaderElector, LeaseConfig
from modelops.controller.metrics import OperatorMetrics, lane, serve
from modelops.controller.reconcile import Key, Reconciler
from modelops.controller.status import ReconcileProblem
from modelops.controller.workqueue import Backoff, WorkQueue
from modelops.resources.builders import OWNER_KIND
from modelops.resources.naming import LABEL_INSTANCE

log = logging.getLogger(__name__)

# The longest wait between looks at an object stuck on a ReconcileProblem (ServiceNotOwned,
# RouteNotFound, ...): the exponential backoff alone reaches 300 s after a few pod events.
PROBLEM_RECHECK_SECONDS = 30.0


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # empty: the whole cluster
    workers: int = 16
    urgent_workers: int = 2  # more workers that take only people's edits and commands
    metrics_port: int | None = 8080
    leader_elect: bool = True
    lease_namespace: str | None = None
    lease_name: str = "modelops-operator"
    lease_duration: float = 15.0
    resync_seconds: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 300.0
    prometheus_allow: tuple[str, ...] = ()  # --prometheus-allow: the Prometheus URLs analysis may query


class Operator:
    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.metrics = OperatorMetrics()
        self.cache = Cache()
        # Every worker may be on an urgent key at once (a GitOps sync of many edits): none waits for a thread.
        self.kube = Kube(threads=config.workers, urgent_threads=config.workers + config.urgent_workers,
                         on_request=self.metrics.api)
        self.reconciler = Reconciler(self.kube, self.cache, self.metrics,
                                     prometheus_allow=parse_allow_list(config.prometheus_allow))
        self.queue: WorkQueue[Key] = WorkQueue(Backoff(config.backoff_base, config.backoff_cap),
                                               on_wait=self.metrics.waited)
        self.informers: list[Informer] = []
        self.leading = asyncio.Event()
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self._tasks: list[asyncio.Task[Any]] = []

    # ------------------------------------------------------------ events -> keys

    def _enqueue(self, key: Key, urgent: bool = False) -> None:
        self.queue.add(key, urgent)
        self.metrics.queue_depth.set(self.queue.depth)

    def _on_mdep(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if kind == "DELETED":
            self.queue.cancel(key)
            self.reconciler.forget(key)
            return
        asks = self.reconciler.triage(kind, obj)
        if asks is not None:
            # Someone's edit or command (or a spec not yet acted on) goes ahead of pod events and timers.
            self._enqueue(key, urgent=asks == "urgent")

    def _on_child(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == OWNER_KIND and ref.get("controller"):
                self._enqueue((str(meta.get("namespace")), str(ref.get("name"))))

    def _on_pod(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        instance = (meta.get("labels") or {}).get(LABEL_INSTANCE)
        if instance:
            self._enqueue((str(meta.get("namespace")), str(instance)))

    def _on_route(self, kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        namespace, route = str(meta.get("namespace")), meta.get("name")
        for mdep in self.cache.mdeps.values():
            traffic = ((mdep.get("spec") or {}).get("rollout") or {}).get("traffic") or {}
            if (mdep["metadata"].get("namespace") == namespace
                    and (traffic.get("httpRoute") or {}).get("name") == route):
                self._enqueue((namespace, str(mdep["metadata"]["name"])))

    # ------------------------------------------------------------ running

    def _start_informers(self, loop: asyncio.AbstractEventLoop) -> None:
        sources = self.kube.sources()
        plan = [("ModelDeployment", self.cache.mdeps, slim_mdep, self._on_mdep),
                ("Deployment", self.cache.deployments, slim_deployment, self._on_child),
                ("Pod", self.cache.pods, slim_pod, self._on_pod),
                ("Service", self.cache.services, slim_service, self._on_child),
                ("Job", self.cache.jobs, slim_job, self._on_child),
                ("PodDisruptionBudget", self.cache.budgets, slim_spec, self._on_child),
                ("HorizontalPodAutoscaler", self.cache.autoscalers, slim_spec, self._on_child),
                ("HTTPRoute", self.cache.routes, keep_all, self._on_route)]
        scopes: list[str | None] = list(self.config.namespaces) or [None]
        for kind, store, slim, listener in plan:
            for namespace in scopes:
                informer = Informer(sources[kind], namespace, store, loop, slim, listener,
                                    on_request=self.metrics.api)
                self.informers.append(informer)
                informer.start()

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def _worker(self, urgent_only: bool = False) -> None:
        while True:
            key, urgent = await self.queue.next(urgent_only)
            self.metrics.queue_depth.set(self.queue.depth)
            started = time.monotonic()
            result = "ok"
            try:
                with self.kube.lane(urgent):
                    delay = await self.reconciler.reconcile(key)
                self.queue.forget(key)
                if delay is not None:
                    self.queue.add_after(key, max(delay, 0.0))
            except Conflict as conflict:
                result = "conflict"
                log.debug("conflict on %s/%s: %s", *key, conflict)
                self.queue.add_rate_limited(key)
            except asyncio.CancelledError:
                raise
            except ReconcileProblem as problem:
                # Someone else's object in the way, or a route missing: a person fixes it, often
                # without an event we watch (their Service is not in our cache). Look again at least
                # every PROBLEM_RECHECK_SECONDS, however often it failed before.
                result = "error"
                delay = self.queue.add_rate_limited(key, cap=PROBLEM_RECHECK_SECONDS)
                log.warning("reconcile of %s/%s: %s (%s); looking again in %.1fs", *key, problem.reason,
                            problem.message, delay)
            except Exception as error:  # one object's failure must not stop the worker
                result = "error"
                delay = self.queue.add_rate_limited(key)
                log.warning("reconcile of %s/%s failed (%s); retrying in %.1fs", *key, error, delay)
            finally:
                self.queue.done(key)
                self.metrics.reconciles.labels(result=result).inc()
                self.metrics.reconcile_seconds.labels(lane=lane(urgent)).observe(time.monotonic() - started)

    async def _resync(self) -> None:
        """Re-queue every cached object now and then, whatever the watches said: no API call."""
        while True:
            await asyncio.sleep(self.config.resync_seconds)
            for kind, store in self.cache.stores().items():
                self.metrics.objects.labels(kind=kind).set(len(store))
            for key in self.cache.mdeps.all_keys():
                self._enqueue(key)

    async def _lead(self) -> None:
        """Called once this replica leads: queue everything, start the workers."""
        self.metrics.leader.set(1)
        self.leading.set()
        for key in self.cache.mdeps.all_keys():
            self._enqueue(key)
        for _ in range(self.config.workers):
            self._tasks.append(asyncio.create_task(self._worker()))
        for _ in range(self.config.urgent_workers):
            self._tasks.append(asyncio.create_task(self._worker(urgent_only=True)))
        self._tasks.append(asyncio.create_task(self._resync()))

    def _lost(self) -> None:
        # Another replica may act from now on: stop at once rather than act twice.
        self.exit_code = 1
        self.stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        metrics_server = None
        if self.config.metrics_port is not None:
            metrics_server = await serve(self.metrics, self.config.metrics_port, self.synced)
        self._start_informers(loop)
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers)), timeout=None)
        log.info("caches synced: %s", ", ".join(f"{k} {len(s)}" for k, s in self.cache.stores().items()))
        elector: LeaderElector | None = None
        if self.config.leader_elect:
            identity = f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            lease = LeaseConfig(namespace=self._lease_namespace(), name=self.config.lease_name, identity=identity,
                                lease_duration=self.config.lease_duration,
                                renew_deadline=self.config.lease_duration * 2 / 3,
                                retry_period=max(self.config.lease_duration / 7.5, 0.5))
            elector = LeaderElector(self.kube, lease, self._lead, self._lost,
                                    on_change=lambda leading: self.metrics.leader.set(1 if leading else 0))
            log.info("waiting for the leader Lease %s/%s as %s", lease.namespace, lease.name, identity)
            self._tasks.append(asyncio.create_task(elector.run()))
        else:
            await self._lead()
        await self.stopping.wait()
        log.info("stopping")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if elector is not None and self.exit_code == 0:
            await elector.release()
        for informer in self.informers:
            informer.stop()
        await self.reconciler.close()
        if metrics_server is not None:
            await metrics_server.cleanup()
        return self.exit_code

    def _lease_namespace(self) -> str:
        if self.config.lease_namespace:
            return self.config.lease_namespace
        pod_namespace = os.environ.get("POD_NAMESPACE")
        if pod_namespace:
            return pod_namespace
        if self.config.namespaces:
            return self.config.namespaces[0]
        return "default"


def run_operator(config: OperatorConfig, verbose: bool = False) -> int:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kubernetes", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def main() -> int:
        return await Operator(config).run()

    return asyncio.run(main())
