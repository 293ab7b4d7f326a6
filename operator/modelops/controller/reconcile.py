"""One reconcile of one ModelDeployment: read the world, ask the pure core what to do, do it.

Called by the kopf handlers (on every watch event of a ModelDeployment or of a Deployment it
owns) and by the periodic resync. Reconciles of one object are serialised and coalesced; those of
different objects run concurrently. Nothing here is remembered between reconciles except when to
look again: every decision is made from the object's status and the children in the cluster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from modelops.api.models import Condition, ModelDeploymentSpec, ModelDeploymentStatus, TrackStatus
from modelops.controller.conditions import set_condition
from modelops.controller.kube import Conflict, Kube
from modelops.resources import builders
from modelops.resources.naming import LABEL_REVISION, deployment_name, revision_of

log = logging.getLogger(__name__)
Key = tuple[str, str]
RESYNC_SECONDS = 30.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        async with lock:
            while True:
                self._dirty.discard(key)
                try:
                    delay = await self.reconcile_once(namespace, name)
                except Conflict:
                    delay = 0.2
                except Exception:
                    log.exception("reconcile of %s/%s failed; retrying", namespace, name)
                    delay = 5.0
                if key not in self._dirty:
                    break
            if delay is None:
                self._timers.pop(key, None)
                self._locks.pop(key, None)
            else:
                self._schedule(key, delay)

    async def reconcile_once(self, namespace: str, name: str) -> float | None:
        """Returns seconds until the next look, or None when the object is gone."""
        obj = await asyncio.to_thread(self.kube.get_mdep, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
        generation = int(obj["metadata"].get("generation", 0))
        try:
            spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            message = describe_validation_error(error)
            stalled = _with_conditions(status, now, generation, ready=("False", "InvalidSpec", message),
                                       reconciling=("False", "InvalidSpec", message),
                                       stalled=("True", "InvalidSpec", message))
            await self._write_status(obj, stalled.model_copy(update={
                "observed_generation": generation, "phase": "Failed", "message": message}))
            return RESYNC_SECONDS
        uid = obj["metadata"]["uid"]
        revision = revision_of(spec)
        replicas = spec.serving.replicas
        await asyncio.to_thread(self.kube.apply, builders.service(name, namespace, uid, spec))
        await asyncio.to_thread(
            self.kube.apply, builders.deployment(name, namespace, uid, spec, revision, replicas))
        children = await asyncio.to_thread(self.kube.list_deployments, namespace, name)
        current = None
        for child in children:
            rev = child["metadata"].get("labels", {}).get(LABEL_REVISION)
            if child["metadata"]["name"] == deployment_name(name, revision):
                current = child
            elif rev and rev != revision:
                await asyncio.to_thread(self.kube.delete_deployment, namespace, child["metadata"]["name"])
        ready_replicas = int((current or {}).get("status", {}).get("readyReplicas") or 0)
        updated = int((current or {}).get("status", {}).get("updatedReplicas") or 0)
        dep_generation_seen = (current or {}).get("status", {}).get("observedGeneration", -1) == (
            current or {}).get("metadata", {}).get("generation")
        ready = dep_generation_seen and ready_replicas >= replicas and updated >= replicas
        stalled_reason = _deployment_stalled(current)
        message = (f"{spec.model.name} {spec.model.version} serving on {ready_replicas}/{replicas} pods"
                   if ready else f"waiting for {spec.model.name} {spec.model.version}: "
                   f"{ready_replicas}/{replicas} pods ready")
        new = _with_conditions(
            status, now, generation,
            ready=("True", "Available", message) if ready else ("False", "PodsNotReady", message),
            reconciling=("False", "Reconciled", message) if ready else ("True", "RolloutInProgress", message),
            stalled=("True", "ProgressDeadlineExceeded", stalled_reason) if stalled_reason
            else ("False", "Progressing" if not ready else "Available", message),
        )
        new = new.model_copy(update={
            "observed_generation": generation,
            "phase": "Healthy" if ready else ("Degraded" if stalled_reason else "Deploying"),
            "message": stalled_reason or message,
            "stable": TrackStatus(revision=revision, model_version=spec.model.version,
                                  replicas=replicas, ready_replicas=ready_replicas),
        })
        await self._write_status(obj, new)
        return RESYNC_SECONDS if ready else 2.0

    async def _write_status(self, obj: dict[str, Any], status: ModelDeploymentStatus) -> None:
        wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if wire == (obj.get("status") or {}):
            return
        await asyncio.to_thread(self.kube.replace_status, obj, wire)


def _deployment_stalled(deployment: dict[str, Any] | None) -> str | None:
    for cond in (deployment or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return f"Deployment {deployment['metadata']['name']}: {cond.get('message', '')}"  # type: ignore[index]
    return None


def _with_conditions(status: ModelDeploymentStatus, now: dt.datetime, generation: int,
                     ready: tuple[str, str, str], reconciling: tuple[str, str, str],
                     stalled: tuple[str, str, str]) -> ModelDeploymentStatus:
    conditions = list(status.conditions)
    for type_, (value, reason, message) in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled)):
        conditions = set_condition(conditions, Condition(
            type=type_, status=value, reason=reason, message=message[:2048],
            last_transition_time=_ts(now), observed_generation=generation))
    return status.model_copy(update={"conditions": conditions})
