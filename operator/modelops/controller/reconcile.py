"""One reconcile of one ModelDeployment: read the world, ask the pure core what to do, do it.

Called by the kopf handlers (on every watch event of a ModelDeployment or of a Deployment it
owns) and by the periodic resync. Reconciles of one object are serialised and coalesced; those of
different objects run concurrently, each measurement under its own timeout. Nothing here is
remembered between reconciles except when to look again: every decision is made from the object's
status and the children in the cluster, so a restarted operator carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import ValidationError

from modelops.analysis.provider import (
    DEFAULT_TIMEOUT_SECONDS,
    AnalysisTarget,
    TrackTarget,
    analysis_window,
    failed_readings,
    provider_for,
)
from modelops.api.models import ModelDeploymentSpec, ModelDeploymentStatus
from modelops.controller.kube import Conflict, Kube, PodView
from modelops.resources import builders
from modelops.resources.naming import LABEL_REVISION, deployment_name, revision_of
from modelops.rollout import conditions as cond
from modelops.rollout.actions import Decision, DeleteDeployment, EmitEvent, EnsureDeployment, SetRouting
from modelops.rollout.machine import analysis_due, next_state
from modelops.rollout.observed import (
    DeploymentObservation,
    DesiredRevision,
    Measurement,
    Observed,
    parse_commands,
)
from modelops.rollout.timefmt import format_time
from modelops.traffic import gateway_api
from modelops.traffic.router import GATEWAY_API, TrafficView, router_for

log = logging.getLogger(__name__)
Key = tuple[str, str]
RESYNC_SECONDS = 30.0
GATEWAY_GROUP_VERSION = "gateway.networking.k8s.io/v1"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each offending field, e.g. `spec.model.sha256: String should match ...`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in ("spec", *item["loc"]))
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class Reconciler:
    """Serialises reconciles per object and schedules the next look."""

    def __init__(self, kube: Kube, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.kube = kube
        self.clock = clock
        self._locks: dict[Key, asyncio.Lock] = {}
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=True),
                timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS),
            )
        return self._session

    def trigger(self, namespace: str, name: str) -> None:
        """Ask for a reconcile soon; many triggers while one runs collapse into one more."""
        key = (namespace, name)
        lock = self._locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            self._dirty.add(key)
            return
        asyncio.get_running_loop().create_task(self.run(namespace, name))

    def _schedule(self, key: Key, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(delay, 0.05), self.trigger, *key)

    async def run(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        lock = self._locks.setdefault(key, asyncio.Lock())
        if lock.locked():
            self._dirty.add(key)
            return
        async with lock:
            delay: float | None = None
            while True:
                self._dirty.discard(key)
                try:
                    delay = await self.reconcile_once(namespace, name)
                except Conflict:
                    delay = 0.2
                except Exception:
                    log.exception("reconcile of %s/%s failed; retrying in 5s", namespace, name)
                    delay = 5.0
                if key not in self._dirty:
                    break
        if delay is None:
            # The object is gone: forget it, so a long-lived operator's memory stays bounded.
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            if not lock.locked():
                self._locks.pop(key, None)
        else:
            self._schedule(key, delay)

    async def reconcile_once(self, namespace: str, name: str) -> float | None:
        """Returns seconds until the next look, or None when the object is gone."""
        obj = await asyncio.to_thread(self.kube.get_mdep, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        meta = obj["metadata"]
        generation = int(meta.get("generation", 0))
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
        try:
            spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            await self._stall_on_invalid_spec(obj, status, generation, describe_validation_error(error), now)
            return RESYNC_SECONDS

        deployments, pods = await asyncio.gather(
            asyncio.to_thread(self.kube.list_deployments, namespace, name),
            asyncio.to_thread(self.kube.list_pods, namespace, name),
        )
        observations = tuple(_observe_deployment(d, pods) for d in deployments if _revision(d))
        route = None
        if spec.rollout.traffic.router == GATEWAY_API and spec.rollout.traffic.http_route is not None:
            route = await asyncio.to_thread(
                self.kube.get_object, GATEWAY_GROUP_VERSION, "HTTPRoute", namespace,
                spec.rollout.traffic.http_route.name)
        observed = Observed(
            generation=generation,
            desired=DesiredRevision(revision=revision_of(namespace, name, spec), model=spec.model),
            deployments=observations,
            observed_weight=_observed_weight(spec, status, observations, route, name),
            measurement=await self._measure(spec, status, namespace, name, pods, now),
            commands=parse_commands(meta.get("annotations") or {}),
        )
        decision = next_state(spec, status, observed, now)
        await self._carry_out(obj, spec, decision, deployments, route)
        written = await self._write_status(obj, decision.status)
        log.info("reconciled %s/%s: %s%s", namespace, name, decision.status.message or "",
                 "" if written else " (no change)")
        return decision.requeue_after if decision.requeue_after is not None else RESYNC_SECONDS

    # ------------------------------------------------------------ observing

    async def _measure(self, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, namespace: str,
                       name: str, pods: list[PodView], now: dt.datetime) -> Measurement | None:
        if status.canary is None or status.canary.revision is None or not analysis_due(spec, status, now):
            return None
        port = spec.serving.port

        def endpoints(revision: str | None) -> tuple[str, ...]:
            return tuple(f"{p.ip}:{port}" for p in pods if p.revision == revision and p.ready and p.ip)

        stable_rev = status.stable.revision if status.stable else None
        target = AnalysisTarget(
            namespace=namespace, name=name, model=spec.model.name,
            canary=TrackTarget(status.canary.revision, endpoints(status.canary.revision)),
            stable=TrackTarget(stable_rev, endpoints(stable_rev)) if stable_rev else None,
            window=analysis_window(spec),
        )
        metrics = spec.rollout.analysis.metrics
        try:
            readings = await asyncio.wait_for(
                provider_for(spec, self.session()).measure(metrics, target), DEFAULT_TIMEOUT_SECONDS + 5)
        except TimeoutError:
            readings = failed_readings(metrics, f"measurement took over {DEFAULT_TIMEOUT_SECONDS + 5:.0f}s")
        return Measurement(canary_revision=status.canary.revision, taken_at=self.clock(), readings=readings)

    # ------------------------------------------------------------ acting

    async def _carry_out(self, obj: dict[str, Any], spec: ModelDeploymentSpec, decision: Decision,
                         deployments: list[dict[str, Any]], route: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        await asyncio.to_thread(self.kube.apply, builders.service(name, namespace, uid, spec))
        existing = {_revision(d): d for d in deployments}
        for action in decision.actions:
            if isinstance(action, EnsureDeployment):
                current = existing.get(action.revision)
                if current is None:
                    model = action.model or spec.model
                    body = builders.deployment(name, namespace, uid, spec.model_copy(update={"model": model}),
                                               action.revision, action.replicas)
                    await asyncio.to_thread(self.kube.apply, body)
                elif int(current.get("spec", {}).get("replicas") or 0) != action.replicas:
                    # Only the scale: rewriting the template of a running revision would restart its pods.
                    await asyncio.to_thread(self.kube.scale_deployment, namespace, current["metadata"]["name"],
                                            action.replicas)
            elif isinstance(action, DeleteDeployment):
                if action.revision in existing:
                    await asyncio.to_thread(self.kube.delete_deployment, namespace,
                                            deployment_name(name, action.revision))
            elif isinstance(action, SetRouting):
                await self._route(obj, spec, action, route)
            elif isinstance(action, EmitEvent):
                await asyncio.to_thread(self.kube.post_event, obj, action.type, action.reason, action.message)

    async def _route(self, obj: dict[str, Any], spec: ModelDeploymentSpec, routing: SetRouting,
                     route: dict[str, Any] | None) -> None:
        if spec.rollout.traffic.router != GATEWAY_API or spec.rollout.traffic.http_route is None:
            return  # ReplicaRatio: the one Service over both tracks already carries the weight
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        await asyncio.to_thread(self.kube.apply, builders.track_service(
            name, namespace, uid, spec, "stable", routing.stable_revision))
        await asyncio.to_thread(self.kube.apply, builders.track_service(
            name, namespace, uid, spec, "canary", routing.canary_revision or routing.stable_revision))
        if route is None:
            raise RuntimeError(f"HTTPRoute {spec.rollout.traffic.http_route.name} not found in {namespace}")
        patch = gateway_api.route_patch(route, name, routing.canary_weight, 80)
        if patch["spec"]["rules"] != (route.get("spec") or {}).get("rules"):
            await asyncio.to_thread(self.kube.patch_object, GATEWAY_GROUP_VERSION, "HTTPRoute", namespace,
                                    route["metadata"]["name"], patch)

    async def _stall_on_invalid_spec(self, obj: dict[str, Any], status: ModelDeploymentStatus, generation: int,
                                     message: str, now: dt.datetime) -> None:
        conditions = list(status.conditions)
        stamp = format_time(now)
        for type_, value in ((cond.READY, "False"), (cond.RECONCILING, "False"), (cond.STALLED, "True")):
            conditions = cond.set_condition(conditions, type_, value, "InvalidSpec",  # type: ignore[arg-type]
                                            message, stamp, generation)
        await self._write_status(obj, status.model_copy(update={
            "observed_generation": generation, "phase": "Failed", "message": message, "conditions": conditions}))

    async def _write_status(self, obj: dict[str, Any], status: ModelDeploymentStatus) -> bool:
        wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if wire == (obj.get("status") or {}):
            return False
        await asyncio.to_thread(self.kube.replace_status, obj, wire)
        return True


def _revision(deployment: dict[str, Any]) -> str:
    return str((deployment.get("metadata", {}).get("labels") or {}).get(LABEL_REVISION, ""))


def _observe_deployment(deployment: dict[str, Any], pods: list[PodView]) -> DeploymentObservation:
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    revision = _revision(deployment)
    problem = next((f"pod {p.name}: {p.problem}" for p in pods if p.revision == revision and p.problem), None)
    return DeploymentObservation(revision=revision, replicas=int(spec.get("replicas") or 0),
                                 ready_replicas=int(st.get("readyReplicas") or 0), problem=problem)


def _observed_weight(spec: ModelDeploymentSpec, status: ModelDeploymentStatus,
                     observations: tuple[DeploymentObservation, ...], route: dict[str, Any] | None,
                     name: str) -> int:
    ready = {o.revision: o.ready_replicas for o in observations}
    stable = status.stable.revision if status.stable else None
    canary = status.canary.revision if status.canary else None
    view = TrafficView(ready_stable=ready.get(stable or "", 0), ready_canary=ready.get(canary or "", 0), route=route)
    return router_for(spec.rollout.traffic).observed_weight(name, view)
