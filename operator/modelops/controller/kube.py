"""Kubernetes API access for the controller: read a ModelDeployment and its children, apply
children server-side, write status with optimistic concurrency, and post Events.

Only the controller imports this. Calls are synchronous (the official client); the reconciler
runs them in worker threads so one slow call never blocks another ModelDeployment.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from modelops.api.models import GROUP, PLURAL, VERSION
from modelops.resources.naming import LABEL_INSTANCE, LABEL_NAME, LABEL_REVISION, SERVER_NAME

FIELD_MANAGER = "modelops"
log = logging.getLogger(__name__)


class Conflict(Exception):
    """The object changed since it was read; the next reconcile will see the new version."""


@dataclass(frozen=True)
class PodView:
    name: str
    revision: str
    ip: str | None
    ready: bool
    phase: str
    problem: str | None = None  # why it is not starting, as a kubelet reports it


class Kube:
    """A thin, thread-safe wrapper over the official client."""

    def __init__(self) -> None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self.api = client.ApiClient()
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self._dynamic: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api)  # type: ignore[no-untyped-call]
            key = (api_version, kind)
            if key not in self._resources:
                self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
            return self._resources[key]

    # ------------------------------------------------------------ reads

    def get_mdep(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = cast(dict[str, Any],
                       self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj

    def list_mdeps(self) -> list[dict[str, Any]]:
        result = cast(dict[str, Any], self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    def list_deployments(self, namespace: str, mdep: str) -> list[dict[str, Any]]:
        selector = f"{LABEL_NAME}={SERVER_NAME},{LABEL_INSTANCE}={mdep}"
        result = self.apps.list_namespaced_deployment(namespace, label_selector=selector)
        return [cast(dict[str, Any], self.api.sanitize_for_serialization(d))  # type: ignore[no-untyped-call]
                for d in result.items]

    def list_pods(self, namespace: str, mdep: str) -> list[PodView]:
        selector = f"{LABEL_NAME}={SERVER_NAME},{LABEL_INSTANCE}={mdep}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        out = []
        for pod in pods:
            meta, st = pod.metadata, pod.status
            if meta is None or st is None or meta.deletion_timestamp is not None:
                continue
            ready = any(c.type == "Ready" and c.status == "True" for c in (st.conditions or []))
            out.append(PodView(name=str(meta.name), revision=(meta.labels or {}).get(LABEL_REVISION, ""),
                               ip=st.pod_ip, ready=ready, phase=st.phase or "", problem=_pod_problem(pod)))
        return out

    def get_object(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        out: dict[str, Any] = obj.to_dict()
        return out

    # ------------------------------------------------------------ writes

    def apply(self, body: dict[str, Any]) -> None:
        """Server-side apply: an unchanged object is a no-op on the server."""
        meta = body["metadata"]
        self._resource(body["apiVersion"], body["kind"]).server_side_apply(
            body=body, name=meta["name"], namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True,
        )

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})

    def delete_deployment(self, namespace: str, name: str) -> None:
        try:
            self.apps.delete_namespaced_deployment(name, namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write status with the resourceVersion we read: a concurrent change raises Conflict."""
        meta = obj["metadata"]
        body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta,
                "spec": obj["spec"], "status": status}
        try:
            result = cast(dict[str, Any], self.custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body))
        except ApiException as error:
            if error.status in (404, 409):
                raise Conflict(str(error.reason)) from error
            raise
        return result

    def patch_annotations(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}})

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the ModelDeployment, as `kubectl describe` shows them."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=obj["apiVersion"], kind=obj["kind"], name=meta["name"],
                namespace=meta["namespace"], uid=meta["uid"], resource_version=meta.get("resourceVersion")),
            reason=reason[:128], message=message[:1024], type=type_,
            first_timestamp=now, last_timestamp=now, count=1,
            source=client.V1EventSource(component="modelops"),
            reporting_component="modelops.dev/operator", reporting_instance="modelops",
        )
        try:
            self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as error:
            log.warning("could not post event %s on %s: %s", reason, meta["name"], error.reason)

    def patch_object(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._resource(api_version, kind).patch(body=patch, name=name, namespace=namespace,
                                                content_type="application/merge-patch+json")


# Waiting reasons that mean a container will not start by itself.
_STUCK = {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName",
          "CreateContainerError", "RunContainerError"}


def _pod_problem(pod: client.V1Pod) -> str | None:
    """The first failing container of a pod, in the kubelet's words, e.g. a model that failed its sha256."""
    st = pod.status
    if st is None:
        return None
    for kind, statuses in (("init container", st.init_container_statuses), ("container", st.container_statuses)):
        for cs in statuses or []:
            state = cs.state
            if state is None:
                continue
            term = state.terminated
            if term is not None and term.exit_code not in (0, None):
                detail = (term.message or term.reason or f"exit code {term.exit_code}").strip()
                return f"{kind} {cs.name} failed: {detail}"[:512]
            waiting = state.waiting
            if waiting is not None and waiting.reason in _STUCK:
                return f"{kind} {cs.name}: {waiting.reason}: {(waiting.message or '').strip()}"[:512]
    return None
