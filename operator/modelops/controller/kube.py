"""Kubernetes API access for the controller: the list/watch calls the informers stream, and the
writes a reconcile makes (status with optimistic concurrency, a plain create of a missing child and
server-side apply to change one, scale, delete with a UID precondition, route updates with a
resourceVersion, Events, the Lease).

Only the controller imports this. The official client is synchronous; `Kube.call` runs a call on
a thread pool of its own, sized to the number of workers, so API calls never queue behind
anything else in the process. Every request is counted by verb and code.

A reconcile's calls run in its lane (`modelops.controller.lanes`): a person's edit goes ahead of
routine work at the API too, not only in the work queue.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from modelops.api.kind import GROUP, PLURAL, VERSION
from modelops.controller.informer import Source
from modelops.controller.lanes import URGENT_THREADS, Lanes
from modelops.resources.naming import LABEL_MANAGED_BY, MANAGED_BY

FIELD_MANAGER = "modelops"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
HAND_OVER_ATTEMPTS = 3
log = logging.getLogger(__name__)
T = TypeVar("T")


class Conflict(Exception):
    """The object changed since it was read; the next reconcile will see the new version."""


def _code(error: BaseException) -> str:
    return str(error.status) if isinstance(error, ApiException) else "error"


def managed_fields_patch(entries: list[dict[str, Any]], manager: str) -> list[dict[str, Any]] | None:
    """JSON patch operations that merge `manager`'s Update entries (its plain writes) into its Apply entry
    of an object's managedFields, so a server-side apply by `manager` owns what those writes set; None:
    nothing to change. Every entry touched is tested first, so a concurrent change of those entries fails
    the patch, and nothing else does (a controller's status write between our read and the patch)."""
    def ours(entry: dict[str, Any], operation: str) -> bool:
        return bool(entry.get("manager") == manager and entry.get("operation") == operation
                    and not entry.get("subresource"))

    updates = [i for i, e in enumerate(entries) if ours(e, "Update")]
    if not updates:
        return None
    ops: list[dict[str, Any]] = []

    def guard(i: int, operation: str) -> None:
        ops.append({"op": "test", "path": f"/metadata/managedFields/{i}/manager", "value": manager})
        ops.append({"op": "test", "path": f"/metadata/managedFields/{i}/operation", "value": operation})

    applied = next((i for i, e in enumerate(entries) if ours(e, "Apply")), None)
    if applied is None:
        applied, *updates = updates
        guard(applied, "Update")
        ops.append({"op": "replace", "path": f"/metadata/managedFields/{applied}/operation", "value": "Apply"})
    else:
        guard(applied, "Apply")
    fields = entries[applied].get("fieldsV1") or {}
    merged = fields
    for i in updates:
        guard(i, "Update")
        # Another apiVersion's field set cannot be merged into this one: dropped (the fields keep their
        # values; the next apply owns again what it sets).
        if entries[i].get("apiVersion") == entries[applied].get("apiVersion"):
            merged = _union(merged, entries[i].get("fieldsV1") or {})
    if merged != fields:
        ops.append({"op": "replace", "path": f"/metadata/managedFields/{applied}/fieldsV1", "value": merged})
    # From the last index down, so each removal leaves the indexes before it as they were.
    ops += [{"op": "remove", "path": f"/metadata/managedFields/{i}"} for i in sorted(updates, reverse=True)]
    return ops


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two fieldsV1 sets (trees of {"f:name": {...}, ".": {}}) as one."""
    out = dict(a)
    for key, value in b.items():
        out[key] = _union(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


class Kube:
    """A thin wrapper over the official client; methods are blocking, run them with `call`."""

    def __init__(self, threads: int = 16, urgent_threads: int = URGENT_THREADS,
                 on_request: Callable[[str, str], None] = lambda v, c: None) -> None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            # Read $KUBECONFIG now, not when the client module was imported.
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
        # One pooled connection per thread, plus one per informer stream.
        configuration.connection_pool_maxsize = threads + urgent_threads + 16
        self.api = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self.on_request = on_request
        self.lanes = Lanes(threads, urgent_threads)
        self.lane = self.lanes.lane
        self._dynamic: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Any] = {}

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.lanes.run(fn, *args, **kwargs)

    def _counted(self, verb: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            self.on_request(verb, _code(error))
            raise
        self.on_request(verb, "2xx")
        return result

    def _resource(self, api_version: str, kind: str) -> Any:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def _plain(self, obj: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self.api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------ what the informers stream

    def sources(self) -> dict[str, Source]:
        """List calls per kind; each takes the namespace (None: all) and the list/watch arguments."""

        def mdeps(ns: str | None, **kw: Any) -> Any:
            if ns is None:
                return self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kw)
            return self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **kw)

        def routes(ns: str | None, **kw: Any) -> Any:
            if ns is None:
                return self.custom.list_cluster_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, "httproutes", **kw)
            return self.custom.list_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, ns, "httproutes", **kw)

        def scoped(all_ns: Callable[..., Any], one_ns: Callable[..., Any]) -> Callable[..., Any]:
            def call(ns: str | None, **kw: Any) -> Any:
                return all_ns(**kw) if ns is None else one_ns(ns, **kw)
            return call

        return {
            "ModelDeployment": Source("ModelDeployment", f"{GROUP}/{VERSION}", mdeps),
            "Deployment": Source("Deployment", "apps/v1", scoped(
                self.apps.list_deployment_for_all_namespaces, self.apps.list_namespaced_deployment),
                MANAGED_SELECTOR),
            "Pod": Source("Pod", "v1", scoped(self.core.list_pod_for_all_namespaces, self.core.list_namespaced_pod),
                          MANAGED_SELECTOR),
            "Service": Source("Service", "v1", scoped(
                self.core.list_service_for_all_namespaces, self.core.list_namespaced_service), MANAGED_SELECTOR),
            "PodDisruptionBudget": Source("PodDisruptionBudget", "policy/v1", scoped(
                self.policy.list_pod_disruption_budget_for_all_namespaces,
                self.policy.list_namespaced_pod_disruption_budget), MANAGED_SELECTOR),
            "HorizontalPodAutoscaler": Source("HorizontalPodAutoscaler", "autoscaling/v2", scoped(
                self.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces,
                self.autoscaling.list_namespaced_horizontal_pod_autoscaler), MANAGED_SELECTOR),
            "Job": Source("Job", "batch/v1", scoped(
                self.batch.list_job_for_all_namespaces, self.batch.list_namespaced_job), MANAGED_SELECTOR),
            # Routes are the user's: no label of ours to select them by.
            "HTTPRoute": Source("HTTPRoute", f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", routes),
        }

    # ------------------------------------------------------------ reads the cache cannot answer

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._plain(self._counted("get", self.coordination.read_namespaced_lease, name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # ------------------------------------------------------------ writes

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write status with the resourceVersion we read: a concurrent change raises Conflict."""
        meta = obj["metadata"]
        body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta,
                "spec": obj.get("spec") or {}, "status": status}
        try:
            return cast(dict[str, Any], self._counted(
                "update", self.custom.replace_namespaced_custom_object_status,
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body))
        except ApiException as error:
            if error.status in (404, 409):
                raise Conflict(f"{meta['namespace']}/{meta['name']}: {error.reason}") from error
            raise

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object as the API server holds it (managedFields included), or None."""
        try:
            response = self._counted("get", self._resource(api_version, kind).get, name=name, namespace=namespace,
                                     serialize=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return self._answer(response, {"apiVersion": api_version, "kind": kind})

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create a child we own with a plain POST; None when an object of that name exists already.

        A create costs the API server about half of what a server-side apply of the same object does
        (7.5-10 against 13-19 ms of its CPU per Deployment: benchmarks/controller/writes.py), and a
        fleet's bulk apply is bound by that CPU. Later changes go through `apply`, which takes over what
        this create set."""
        meta = body["metadata"]
        try:
            response = self._counted("create", self._resource(body["apiVersion"], body["kind"]).create,
                                     body=body, namespace=meta.get("namespace"), field_manager=FIELD_MANAGER,
                                     serialize=False)
        except ApiException as error:
            if error.status == 409:
                return None
            raise
        return self._answer(response, body)

    def apply(self, body: dict[str, Any], live: dict[str, Any] | None = None) -> dict[str, Any]:
        """Server-side apply of an object we own (conflicts with other managers are not forced); returns
        the object as the API server now holds it. `live`: the object as just read, if the caller has it."""
        meta = body["metadata"]
        resource = self._resource(body["apiVersion"], body["kind"])
        self._own_created_fields(resource, body, live)
        # serialize=False: the dynamic client would otherwise build a ResourceInstance tree of the whole
        # answer; plain JSON is all the cache needs.
        response = self._counted("patch", resource.server_side_apply,
                                 body=body, name=meta["name"], namespace=meta.get("namespace"),
                                 field_manager=FIELD_MANAGER, force_conflicts=False, serialize=False)
        return self._answer(response, body)

    def _own_created_fields(self, resource: Any, body: dict[str, Any], live: dict[str, Any] | None) -> None:
        """Hand what our own plain create set (an Update entry of our manager) to our Apply entry, as
        client-go's csaupgrade does: otherwise a field the create set and a later apply leaves out would
        stay, owned by the Update entry, instead of being removed."""
        meta = body["metadata"]
        for attempt in range(HAND_OVER_ATTEMPTS):
            if live is None or attempt > 0:
                live = self.get(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
            if live is None:
                return
            ops = managed_fields_patch(live["metadata"].get("managedFields") or [], FIELD_MANAGER)
            if ops is None:
                return
            try:
                response = self._counted("patch", resource.patch, body=ops, name=meta["name"],
                                         namespace=meta.get("namespace"),
                                         content_type="application/json-patch+json", serialize=False)
            except ApiException as error:
                # A failed test: entries moved since we read them (a controller's first status write in
                # the same second sorts its entry before ours). Read again, at once, a few times.
                if error.status not in (409, 422):
                    raise
                if attempt == HAND_OVER_ATTEMPTS - 1:
                    raise Conflict(f"{body['kind']} {meta['name']}: changed while taking over its fields") from error
                continue
            self._answer(response, body)
            return

    def _answer(self, response: Any, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = cast(dict[str, Any], json.loads(response.data))
        finally:
            response.release_conn()
        answer.setdefault("apiVersion", body["apiVersion"])
        answer.setdefault("kind", body["kind"])
        return answer

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self._counted("patch", self.apps.patch_namespaced_deployment_scale, name, namespace,
                      {"spec": {"replicas": replicas}})

    def delete_deployment(self, namespace: str, name: str, uid: str) -> None:
        """Delete exactly the Deployment we saw (UID precondition), never a namesake."""
        try:
            self._counted("delete", self.apps.delete_namespaced_deployment, name, namespace,
                          body=client.V1DeleteOptions(propagation_policy="Background",
                                                      preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def delete_autoscaler(self, namespace: str, name: str, uid: str) -> None:
        """Delete exactly the HorizontalPodAutoscaler we saw (UID precondition)."""
        try:
            self._counted("delete", self.autoscaling.delete_namespaced_horizontal_pod_autoscaler, name, namespace,
                          body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def replace_route(self, route: dict[str, Any]) -> None:
        """Write an HTTPRoute back with the resourceVersion we read."""
        meta = route["metadata"]
        try:
            self._counted("update", self.custom.replace_namespaced_custom_object, GATEWAY_GROUP, GATEWAY_VERSION,
                          meta["namespace"], "httproutes", meta["name"], route)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"HTTPRoute {meta['namespace']}/{meta['name']}: {error.reason}") from error
            raise

    def create_job(self, body: dict[str, Any]) -> None:
        """Create a retraining Job; one that exists already under its deterministic name is adopted."""
        try:
            self._counted("create", self.batch.create_namespaced_job, body["metadata"]["namespace"], body)
        except ApiException as error:
            if error.status != 409:
                raise

    def delete_job(self, namespace: str, name: str, uid: str) -> None:
        try:
            self._counted("delete", self.batch.delete_namespaced_job, name, namespace,
                          body=client.V1DeleteOptions(propagation_policy="Background",
                                                      preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def create_lease(self, body: dict[str, Any]) -> bool:
        try:
            self._counted("create", self.coordination.create_namespaced_lease, body["metadata"]["namespace"], body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def replace_lease(self, lease: dict[str, Any]) -> bool:
        meta = lease["metadata"]
        try:
            self._counted("update", self.coordination.replace_namespaced_lease, meta["name"], meta["namespace"],
                          lease)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> str | None:
        """A core/v1 Event on the ModelDeployment, as `kubectl describe` shows them; returns its name."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=obj["apiVersion"], kind=obj["kind"], name=meta["name"],
                namespace=meta["namespace"], uid=meta["uid"], resource_version=meta.get("resourceVersion")),
            reason=reason[:128], message=message[:1024], type=type_, action=reason[:128],
            # eventTime has microseconds, so Events of one second keep the order they were made in.
            event_time=now, first_timestamp=now, last_timestamp=now, count=1,
            source=client.V1EventSource(component="modelops"),
            reporting_component="modelops.dev/operator", reporting_instance=socket.gethostname()[:128],
        )
        try:
            created = self._counted("create", self.core.create_namespaced_event, meta["namespace"], event)
        except ApiException as error:
            log.warning("could not post event %s on %s: %s", reason, meta["name"], error.reason)
            return None
        return str(created.metadata.name)

    def bump_event(self, namespace: str, name: str, count: int, message: str) -> bool:
        """Aggregate a repeated Event: raise its count instead of posting another."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self._counted("patch", self.core.patch_namespaced_event, name, namespace,
                          {"count": count, "lastTimestamp": now, "message": message[:1024]})
        except ApiException:
            return False
        return True
