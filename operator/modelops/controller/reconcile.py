"""One reconcile of one ModelDeployment: read the cache, ask the pure core, write status, then act.

Called by the workers in `modelops.controller.runner` with a key from the work queue. The order is
the one controllers platform teams trust: everything is read from the informers' caches (no API call
at idle); the decision's status is written first with the resourceVersion we read, so a concurrent
change (a `kubectl modelops` command, another writer) fails the write with a conflict and nothing is
done; only after the write succeeds are the decision's actions carried out. Every action follows
from the status just written, so a crash or error in between is completed by the next reconcile
(ensure/scale/delete/route are idempotent and compared with the cache first), and Events, emitted
only on the tick that makes a transition, are never posted twice.

Children are found by their controller owner's UID; a Service, HTTPRoute backend or Deployment name
that belongs to someone else is left alone and reported as a condition and a Warning Event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import ValidationError

from modelops.analysis.allowlist import AllowedPrometheus
from modelops.analysis.factory import provider_for
from modelops.analysis.provider import (
    DEFAULT_TIMEOUT_SECONDS,
    AnalysisTarget,
    TrackTarget,
    analysis_window,
    failed_readings,
)
from modelops.api.events import EmitEvent
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from modelops.controller.cache import Cache, PodView, owned_by
from modelops.controller.errors import error_reason, namespace_terminating
from modelops.controller.kube import Conflict, Kube
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.retraining import RetrainingShell, signal_period
from modelops.controller.status import (
    REASON_AUTOSCALER_NOT_OWNED,
    REASON_NAME_TAKEN,
    REASON_ROUTE_NOT_FOUND,
    REASON_ROUTE_NOT_REFERENCING,
    REASON_SERVICE_NOT_OWNED,
    ReconcileProblem,
    invalid_spec,
    with_error,
)
from modelops.resources import builders
from modelops.resources.naming import LABEL_REVISION, deployment_name, desired_revision
from modelops.retraining.actions import RetrainDecision
from modelops.retraining.machine import desired_model, next_retraining
from modelops.rollout import events as rollout_events
from modelops.rollout.actions import Decision, DeleteDeployment, EnsureDeployment, SetRouting
from modelops.rollout.analysis_runs import analysis_due
from modelops.rollout.commands import parse_commands
from modelops.rollout.machine import next_state
from modelops.rollout.observed import DeploymentObservation, DesiredRevision, Measurement, Observed
from modelops.traffic.factory import router_for
from modelops.traffic.router import RouteFault, Router, TrafficView

log = logging.getLogger(__name__)
Key = tuple[str, str]
# What a router's route check found, as the condition reason a person sees.
ROUTE_REASONS = {RouteFault.MISSING: REASON_ROUTE_NOT_FOUND, RouteFault.NOT_OURS: REASON_ROUTE_NOT_REFERENCING}
WRITES_REMEMBERED = 4
OUTCOME_EVENTS = {rollout_events.EVENT_PROMOTED: "Promoted", rollout_events.EVENT_ROLLED_BACK: "RolledBack",
                  rollout_events.EVENT_ABORTED: "Aborted"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each offending field, e.g. `spec.model.sha256: String should match ...`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in ("spec", *item["loc"]))
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


@dataclass
class _Warning:
    reason: str
    event: str | None
    count: int


class Reconciler:
    """Turns one queued key into status and actions; remembers only what is safe to forget."""

    def __init__(self, kube: Kube, cache: Cache, metrics: OperatorMetrics,
                 clock: Callable[[], dt.datetime] = utcnow,
                 prometheus_allow: Sequence[AllowedPrometheus] = ()) -> None:
        self.kube = kube
        self.prometheus_allow = tuple(prometheus_allow)
        self.cache = cache
        self.metrics = metrics
        self.clock = clock
        # The last reconcile error per object, shown in status until a reconcile succeeds (so the
        # conditions do not flap between retries); lost on restart, when the next attempt finds it again.
        self.errors: dict[Key, ReconcileProblem] = {}
        self._warnings: dict[Key, _Warning] = {}  # aggregated Warning Event of the current error
        # resourceVersions of our own last few status writes: two writes in quick succession (a step,
        # then its pods Ready) see the first echo arrive after the second write, and it is ours too.
        self._written: dict[Key, tuple[str, ...]] = {}
        self._annotations: dict[Key, int] = {}  # a hash of each object's annotations (commands live there)
        self._session: aiohttp.ClientSession | None = None
        self.retraining = RetrainingShell(kube, cache)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=True),
                timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def triage(self, kind: str, obj: dict[str, Any]) -> str | None:
        """What a ModelDeployment's watch event asks for: None when it only echoes our own status write,
        "urgent" for a person's edit (a spec not yet observed) or command (its annotations changed),
        and "routine" for the rest (a relist; an echo that came before our write's answer did)."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if kind == "MODIFIED" and meta.get("resourceVersion") in self._written.get(key, ()):
            return None
        annotations = hash(tuple(sorted((meta.get("annotations") or {}).items())))
        commanded = kind == "MODIFIED" and self._annotations.get(key, annotations) != annotations
        self._annotations[key] = annotations
        observed = (obj.get("status") or {}).get("observedGeneration")
        return "urgent" if commanded or observed != meta.get("generation") else "routine"

    def forget(self, key: Key) -> None:
        self.errors.pop(key, None)
        self._warnings.pop(key, None)
        self._written.pop(key, None)
        self._annotations.pop(key, None)
        self.retraining.forget(key)
        self.metrics.forget_object(*key)

    # ------------------------------------------------------------ the reconcile

    async def reconcile(self, key: Key) -> float | None:
        """Seconds until the next look (None: only when something changes). Raises on failure."""
        namespace, name = key
        obj = self.cache.mdeps.get(namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            self.forget(key)
            return None
        now = self.clock()
        meta = obj["metadata"]
        generation = int(meta.get("generation", 0))
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
        try:
            spec = ModelDeploymentSpec.model_validate(obj.get("spec") or {})
        except ValidationError as error:
            await self._write_status(obj, invalid_spec(status, describe_validation_error(error), now, generation))
            return None

        uid = str(meta["uid"])
        deployments = self.cache.owned_deployments(uid)
        revisions = {_revision(d) for d in deployments}
        pods = self.cache.pods_of(namespace, name, revisions)
        observations = tuple(_observe_deployment(d, pods) for d in deployments if _revision(d))
        router = router_for(spec.rollout.traffic)
        route = self._route(router, namespace)
        # A retrained candidate goes out through spec.rollout like any new version, without writing spec.
        model, _source = desired_model(spec, status)
        running = (status.stable.revision if status.stable else None,
                   status.canary.revision if status.canary else None)
        spec_revision = desired_revision(namespace, name, spec, running)
        wanted = spec_revision if model == spec.model else desired_revision(
            namespace, name, spec.model_copy(update={"model": model}), running)
        with self.kube.lanes.aside():  # a slow Prometheus must not hold routine API calls
            measurement = await self._measure(spec, status, namespace, name, pods, now)
        observed = Observed(
            generation=generation,
            desired=DesiredRevision(revision=wanted, model=model),
            deployments=observations,
            observed_weight=_observed_weight(router, status, observations, route, name),
            measurement=measurement,
            commands=parse_commands(meta.get("annotations") or {}),
        )
        decision = next_state(spec, status, observed, now)
        new_status = decision.status
        retrain: RetrainDecision | None = None
        if spec.retraining is not None or status.retraining is not None:
            with self.kube.lanes.aside():  # queries Prometheus and the model servers, not the API
                seen = await self.retraining.observe(obj, spec, new_status, pods, self.session(), spec_revision,
                                                     self.prometheus_allow)
            retrain = next_retraining(spec, new_status, seen, now, name)
            new_status = retrain.status
        problem = self.errors.get(key)
        if problem is not None:
            new_status = with_error(new_status, problem.reason, problem.message, now, generation)
        # Status first: a conflict here (someone changed the object) stops us before any action.
        obj = await self._write_status(obj, new_status)
        self._record(decision, new_status, key)
        self._record_retraining(status, new_status)
        try:
            await self._carry_out(obj, spec, decision, deployments, router, route)
            if retrain is not None:
                await self.retraining.carry_out(obj, spec, retrain)
                for event in retrain.events:
                    await self._post(obj, event)
        except Conflict:
            raise  # a child or route changed under us: the runner retries with backoff; nothing to report
        except Exception as error:
            if namespace_terminating(error):
                # The namespace is going, and this object with it: nothing to report or retry.
                log.info("%s/%s: namespace %s is being deleted; leaving the object alone", namespace, name,
                         namespace)
                return None
            await self._report(key, obj, new_status, error, now, generation)
            raise
        if problem is not None:
            # Fixed: write the status without the error at once.
            self.errors.pop(key, None)
            self._warnings.pop(key, None)
            return 0.0
        log.info("reconciled %s/%s: %s", namespace, name, new_status.message or "")
        waits = [w for w in (decision.requeue_after, retrain.requeue_after if retrain else None,
                             signal_period(spec)) if w is not None]
        return min(waits) if waits else None

    def _record_retraining(self, old: ModelDeploymentStatus, new: ModelDeploymentStatus) -> None:
        before = old.retraining.last_result if old.retraining is not None else None
        after = new.retraining.last_result if new.retraining is not None else None
        if after is not None and after != before:
            self.metrics.retraining_runs.labels(outcome=after.outcome).inc()
        dropped_before = old.retraining.last_dropped if old.retraining is not None else None
        dropped = new.retraining.last_dropped if new.retraining is not None else None
        if dropped is not None and dropped != dropped_before:
            self.metrics.retraining_runs.labels(outcome="Dropped").inc()

    def _route(self, router: Router, namespace: str) -> dict[str, Any] | None:
        """The router's route as cached (None: the router has none, or it is not found)."""
        ref = router.route_ref()
        if ref is None:
            return None
        store = self.cache.stores().get(ref.kind)
        return store.get(namespace, ref.name) if store is not None else None

    def _record(self, decision: Decision, status: ModelDeploymentStatus, key: Key) -> None:
        for event in decision.events:
            outcome = OUTCOME_EVENTS.get(event.reason)
            if outcome is not None:
                self.metrics.rollouts.labels(outcome=outcome).inc()
        if decision.status.analysis is not None and any(
                e.reason in (rollout_events.EVENT_ANALYSIS_SUCCESSFUL, rollout_events.EVENT_ANALYSIS_FAILED,
                             rollout_events.EVENT_ANALYSIS_INCONCLUSIVE) for e in decision.events):
            for result in decision.status.analysis.metrics:
                self.metrics.verdicts.labels(verdict=str(result.verdict)).inc()
        self.metrics.object_status(key[0], key[1], status.phase,
                                   [(c.type, c.status) for c in status.conditions])

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
        metrics = spec.rollout.analysis.effective_metrics()
        provider = provider_for(spec, self.session(), prometheus_allow=self.prometheus_allow)
        try:
            readings = await asyncio.wait_for(provider.measure(metrics, target), DEFAULT_TIMEOUT_SECONDS + 5)
        except TimeoutError:
            readings = failed_readings(metrics, f"measurement took over {DEFAULT_TIMEOUT_SECONDS + 5:.0f}s")
        return Measurement(canary_revision=status.canary.revision, taken_at=self.clock(), readings=readings)

    # ------------------------------------------------------------ acting (after the status write)

    async def _carry_out(self, obj: dict[str, Any], spec: ModelDeploymentSpec, decision: Decision,
                         deployments: list[dict[str, Any]], router: Router,
                         route: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        problems: list[ReconcileProblem] = []
        try:
            await self._ensure_service(builders.service(name, namespace, uid, spec), uid)
        except ReconcileProblem as problem:
            problems.append(problem)  # the rollout itself can go on; say so
        await self._ensure_budget(builders.disruption_budget(name, namespace, uid, spec), uid)
        stable = decision.status.stable.revision if decision.status.stable is not None else None
        try:
            await self._ensure_autoscaler(name, namespace, uid, spec, stable)
        except ReconcileProblem as problem:
            problems.append(problem)
        existing = {_revision(d): d for d in deployments}
        rolling = decision.status.canary is not None
        for action in decision.actions:
            if isinstance(action, EnsureDeployment):
                await self._ensure_deployment(obj, spec, action, existing.get(action.revision), rolling)
            elif isinstance(action, DeleteDeployment):
                found = existing.get(action.revision)
                if found is not None:
                    await self.kube.call(self.kube.delete_deployment, namespace, found["metadata"]["name"],
                                         found["metadata"]["uid"])
            elif isinstance(action, SetRouting):
                await self._set_routing(obj, spec, action, router, route)
        # Events last, one at a time, in the order the machine made the transitions.
        for event in decision.events:
            await self._post(obj, event)
        if problems:
            raise problems[0]

    async def _post(self, obj: dict[str, Any], event: EmitEvent) -> None:
        await self.kube.call(self.kube.post_event, obj, event.type, event.reason, event.message)

    async def _ensure_deployment(self, obj: dict[str, Any], spec: ModelDeploymentSpec, action: EnsureDeployment,
                                 current: dict[str, Any] | None, rolling: bool) -> None:
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        model = action.model or spec.model
        if current is None:
            dep_name = deployment_name(name, action.revision)
            namesake = self.cache.deployments.get(namespace, dep_name)
            if namesake is not None and not owned_by(namesake, uid):
                raise ReconcileProblem(REASON_NAME_TAKEN, (
                    f"Deployment {dep_name} belongs to another owner (an earlier object of this name?); "
                    "waiting for it to be removed"))
            body = builders.deployment(name, namespace, uid, spec.model_copy(update={"model": model}),
                                       action.revision, action.replicas)
            await self._create(body, uid, lambda: ReconcileProblem(REASON_NAME_TAKEN, (
                f"Deployment {dep_name} belongs to another owner; waiting for it to be removed")))
            return
        autoscaled = spec.serving.autoscaling is not None and action.track == "stable"
        if action.track == "stable" and not rolling:
            # A new operator version builds a different pod template for a running revision: roll it
            # out on purpose, as a Deployment rolling update (maxUnavailable 0), and say so.
            body = builders.deployment(name, namespace, uid, spec.model_copy(update={"model": model}),
                                       action.revision, None if autoscaled else action.replicas)
            running = ((current.get("metadata") or {}).get("annotations") or {}).get(builders.TEMPLATE_HASH)
            wanted = body["metadata"]["annotations"][builders.TEMPLATE_HASH]
            if running != wanted:
                await self._apply(body, current)
                # After the apply: a failed one (a conflict, say) is retried, and must not say it twice.
                await self._post(obj, EmitEvent("Normal", "PodTemplateUpdated", (
                    f"the pod template of revision {action.revision} changed (operator upgrade: "
                    f"{running or 'none'} -> {wanted}); rolling update with no pod unavailable")))
                return
        if autoscaled:
            return  # HPA mode: the autoscaler sizes the stable track; the operator reads, never writes it
        if int((current.get("spec") or {}).get("replicas") or 0) != action.replicas:
            # Only the scale: rewriting the template of a running revision would restart its pods.
            await self.kube.call(self.kube.scale_deployment, namespace, current["metadata"]["name"],
                                 action.replicas)

    async def _apply(self, body: dict[str, Any], current: dict[str, Any] | None = None,
                     live: dict[str, Any] | None = None) -> None:
        """Server-side apply of a child; `current` is the cached version the change was decided from,
        `live` the object as just read from the API server (spares the apply a read)."""
        self.cache.remember_written(await self.kube.call(self.kube.apply, body, live), current)

    async def _create(self, body: dict[str, Any], uid: str, not_ours: Callable[[], ReconcileProblem | None]) -> None:
        """A child missing from our cache: created (cheaper for the API server than an apply); when its name
        is taken, applied to if it is ours after all (the cache lagged), else `not_ours()` is raised."""
        created = await self.kube.call(self.kube.create, body)
        if created is not None:
            self.cache.remember_written(created)
            return
        meta = body["metadata"]
        found = await self.kube.call(self.kube.get, body["apiVersion"], body["kind"], meta["namespace"], meta["name"])
        if found is not None and not owned_by(found, uid):
            problem = not_ours()
            if problem is not None:
                raise problem
            return
        await self._apply(body, live=found)

    async def _ensure_service(self, desired: dict[str, Any], uid: str) -> None:
        """Create or apply our Service when it is missing or differs; never take over someone else's."""
        meta = desired["metadata"]
        cached = self.cache.services.get(meta["namespace"], meta["name"])
        if cached is None:
            # Not in our cache (which holds only Services labelled by us): a user's may be in the way.
            await self._create(desired, uid, lambda: ReconcileProblem(REASON_SERVICE_NOT_OWNED, (
                f"Service {meta['name']} exists and is not owned by this ModelDeployment; "
                "it is left alone (rename or delete it to let modelops manage it)")))
            return
        if not owned_by(cached, uid):
            raise ReconcileProblem(REASON_SERVICE_NOT_OWNED, (
                f"Service {meta['name']} belongs to another owner; it is left alone"))
        elif _service_matches(cached, desired):
            return
        await self._apply(desired, cached)

    async def _ensure_budget(self, desired: dict[str, Any], uid: str) -> None:
        meta = desired["metadata"]
        cached = self.cache.budgets.get(meta["namespace"], meta["name"])
        if cached is None:
            await self._create(desired, uid, lambda: None)  # someone else's: left alone
            return
        if not owned_by(cached, uid) or cached.get("spec") == desired["spec"]:
            return  # ours and as wanted, or someone else's (left alone)
        await self._apply(desired, cached)

    async def _ensure_autoscaler(self, name: str, namespace: str, uid: str, spec: ModelDeploymentSpec,
                                 stable: str | None) -> None:
        """HPA mode: our HorizontalPodAutoscaler targets the stable Deployment; without it, none of ours is left."""
        cached = self.cache.autoscalers.get(namespace, name)
        if spec.serving.autoscaling is None:
            if cached is not None and owned_by(cached, uid):
                # Back to spec.serving.replicas: an autoscaler left behind would fight over the count.
                await self.kube.call(self.kube.delete_autoscaler, namespace, name, cached["metadata"]["uid"])
            return
        if stable is None:
            return  # nothing serves yet: the first Deployment starts at minReplicas
        found = cached if cached is not None else await self.kube.call(
            self.kube.get, "autoscaling/v2", "HorizontalPodAutoscaler", namespace, name)
        if found is not None and not owned_by(found, uid):
            raise ReconcileProblem(REASON_AUTOSCALER_NOT_OWNED, (
                f"HorizontalPodAutoscaler {name} exists and is not owned by this ModelDeployment; it is left "
                "alone, and the stable track keeps the size it has (rename or delete it)"))
        desired = builders.autoscaler(name, namespace, uid, spec, stable)
        if cached is not None and _autoscaler_matches(cached, desired):
            return
        await self._apply(desired, cached)

    async def _set_routing(self, obj: dict[str, Any], spec: ModelDeploymentSpec, routing: SetRouting,
                           router: Router, route: dict[str, Any] | None) -> None:
        """The router's track Services, then its route with the weight (a router without one: nothing)."""
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        for track in router.track_services(routing.stable_revision, routing.canary_revision):
            await self._ensure_service(builders.track_service(
                name, namespace, uid, spec, track.track, track.revision), uid)
        problem = router.check_route(name, namespace, route)
        if problem is not None:
            raise ReconcileProblem(ROUTE_REASONS[problem.fault], problem.message)
        if route is None:
            return  # a router without a route (ReplicaRatio): its one Service already carries the weight
        updated = router.desired_route(name, route, routing.canary_weight)
        if updated is not None:
            await self.kube.call(self.kube.replace_route, updated)

    # ------------------------------------------------------------ status and errors

    async def _write_status(self, obj: dict[str, Any], status: ModelDeploymentStatus) -> dict[str, Any]:
        """Write status if it changed; returns the object as it now is (the cache is updated too)."""
        wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        if wire == (obj.get("status") or {}):
            return obj
        written = await self.kube.call(self.kube.replace_status, obj, wire)
        meta = written.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        self._written[key] = (*self._written.get(key, ())[-(WRITES_REMEMBERED - 1):], str(meta.get("resourceVersion")))
        # Write-through: the next reconcile reads what we wrote even before the watch echoes it.
        current = self.cache.mdeps.get(*key)
        if current is None or current["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
            written.setdefault("apiVersion", obj["apiVersion"])
            written.setdefault("kind", obj["kind"])
            written["metadata"].pop("managedFields", None)
            self.cache.mdeps.put(key, written)
        return written

    async def _report(self, key: Key, obj: dict[str, Any], status: ModelDeploymentStatus, error: Exception,
                      now: dt.datetime, generation: int) -> None:
        """Show a failed action in status (a condition with a reason) and as one aggregated Warning Event."""
        problem = error if isinstance(error, ReconcileProblem) else ReconcileProblem(*error_reason(error))
        self.errors[key] = problem
        try:
            await self._write_status(obj, with_error(status, problem.reason, problem.message, now, generation))
        except Exception as write_error:  # the original error is what gets raised
            log.warning("could not record %s in status of %s/%s: %s", problem.reason, *key, write_error)
        warning = self._warnings.get(key)
        if warning is not None and warning.reason == problem.reason and warning.event is not None:
            warning.count += 1
            if await self.kube.call(self.kube.bump_event, key[0], warning.event, warning.count, problem.message):
                return
        event = await self.kube.call(self.kube.post_event, obj, "Warning", problem.reason, problem.message)
        self._warnings[key] = _Warning(problem.reason, event, 1)


def _service_matches(cached: dict[str, Any], desired: dict[str, Any]) -> bool:
    labels = (cached["metadata"].get("labels") or {})
    if any(labels.get(k) != v for k, v in desired["metadata"]["labels"].items()):
        return False
    spec, want = cached.get("spec") or {}, desired["spec"]
    return bool(spec.get("selector") == want["selector"] and _ports(spec) == _ports(want))


def _autoscaler_matches(cached: dict[str, Any], desired: dict[str, Any]) -> bool:
    """The fields we set are as wanted (the API server may default others)."""
    spec, want = cached.get("spec") or {}, desired["spec"]
    return all(spec.get(k) == v for k, v in want.items())


def _ports(spec: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(p.get("name"), p.get("port"), p.get("targetPort"), p.get("protocol", "TCP"), p.get("appProtocol"))
            for p in spec.get("ports") or []]


def _revision(deployment: dict[str, Any]) -> str:
    return str((deployment.get("metadata", {}).get("labels") or {}).get(LABEL_REVISION, ""))


def _observe_deployment(deployment: dict[str, Any], pods: list[PodView]) -> DeploymentObservation:
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    revision = _revision(deployment)
    problem = next((f"pod {p.name}: {p.problem}" for p in pods if p.revision == revision and p.problem), None)
    return DeploymentObservation(revision=revision, replicas=int(spec.get("replicas") or 0),
                                 ready_replicas=int(st.get("readyReplicas") or 0), problem=problem)


def _observed_weight(router: Router, status: ModelDeploymentStatus,
                     observations: tuple[DeploymentObservation, ...], route: dict[str, Any] | None,
                     name: str) -> int:
    ready = {o.revision: o.ready_replicas for o in observations}
    stable = status.stable.revision if status.stable else None
    canary = status.canary.revision if status.canary else None
    view = TrafficView(ready_stable=ready.get(stable or "", 0), ready_canary=ready.get(canary or "", 0), route=route)
    return router.observed_weight(name, view)
