"""What the operator holds in memory: one `Store` per kind, filled by the informers, with the
indexes a reconcile needs (children by their controller owner's UID, pods by ModelDeployment), and
the slimming that keeps only the fields the controller reads, so 3,000 objects fit in little memory.

Read by `modelops.controller.reconcile`; filled by `modelops.controller.informer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelops.controller.informer import Obj, Store, compact, key_of
from modelops.resources.builders import TEMPLATE_HASH
from modelops.resources.jobs import LABEL_RUN
from modelops.resources.naming import LABEL_INSTANCE, LABEL_REVISION

OWNER_INDEX = "owner"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INSTANCE_INDEX = "instance"


def controller_uid(obj: Obj) -> str | None:
    """The UID of the object's controller owner (ownerReferences with controller: true)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owned_by(obj: Obj, uid: str) -> bool:
    return controller_uid(obj) == uid


def _owner_index(obj: Obj) -> list[str]:
    uid = controller_uid(obj)
    return [uid] if uid else []


def _instance_index(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    instance = (meta.get("labels") or {}).get(LABEL_INSTANCE)
    return [f"{meta.get('namespace')}/{instance}"] if instance else []


_META_KEYS = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "ownerReferences",
              "deletionTimestamp", "creationTimestamp")


def _slim_meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {k: meta[k] for k in _META_KEYS if k in meta}


def slim_deployment(obj: Obj) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _slim_meta(obj)
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if TEMPLATE_HASH in annotations:
        meta["annotations"] = {TEMPLATE_HASH: annotations[TEMPLATE_HASH]}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": meta,
            "spec": {"replicas": spec.get("replicas")},
            "status": {k: status[k] for k in ("readyReplicas", "replicas", "updatedReplicas", "availableReplicas",
                                              "observedGeneration") if k in status}}


def slim_service(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": _slim_meta(obj),
            "spec": {k: spec[k] for k in ("selector", "ports", "type") if k in spec}}


def slim_pod(obj: Obj) -> Obj:
    st = obj.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    status: dict[str, Any] = {"podIP": st.get("podIP"), "phase": st.get("phase"), "ready": ready,
                              "problem": pod_problem(st)}
    if LABEL_RUN in ((obj.get("metadata") or {}).get("labels") or {}):
        # A retraining run reports its result through its termination message: keep that.
        status["containerStatuses"] = [
            {"name": cs.get("name"), "state": {"terminated": (cs.get("state") or {}).get("terminated")}}
            for cs in st.get("containerStatuses") or [] if (cs.get("state") or {}).get("terminated")]
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": _slim_meta(obj),
            "status": status}


def slim_spec(obj: Obj) -> Obj:
    """Metadata and spec only (PodDisruptionBudgets, HorizontalPodAutoscalers: their status is not read)."""
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": _slim_meta(obj),
            "spec": obj.get("spec") or {}}


def slim_job(obj: Obj) -> Obj:
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": _slim_meta(obj),
            "spec": {"template": ((obj.get("spec") or {}).get("template") or {}).get("metadata", {})},
            "status": obj.get("status") or {}}


def keep_all(obj: Obj) -> Obj:
    return obj


def slim_mdep(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


# The children the operator creates or applies, and how the informers slim each of them.
_WRITE_THROUGH = {"Deployment": slim_deployment, "Service": slim_service, "PodDisruptionBudget": slim_spec,
                  "HorizontalPodAutoscaler": slim_spec}


@dataclass(frozen=True)
class PodView:
    name: str
    revision: str
    ip: str | None
    ready: bool
    phase: str
    problem: str | None = None  # why it is not starting, as a kubelet reports it


class Cache:
    def __init__(self) -> None:
        self.mdeps = Store()
        self.deployments = Store({OWNER_INDEX: _owner_index})
        self.pods = Store({INSTANCE_INDEX: _instance_index})
        self.services = Store({OWNER_INDEX: _owner_index})
        self.jobs = Store({OWNER_INDEX: _owner_index})
        self.budgets = Store({OWNER_INDEX: _owner_index})
        self.autoscalers = Store({OWNER_INDEX: _owner_index})
        self.routes = Store()

    def remember_written(self, obj: Obj, replaces: Obj | None = None) -> None:
        """Write-through of a child we just created or applied, as the API server answered: until its watch
        event arrives, the next reconcile (a pod event, say) would otherwise act on the old version and
        write it again. Filled only where the cache still holds what we decided from (`replaces`, or
        nothing): whatever the watch delivered since is as new or newer."""
        slim = _WRITE_THROUGH.get(str(obj.get("kind")))
        store = self.stores().get(str(obj.get("kind")))
        if slim is None or store is None:
            return
        key = key_of(obj)
        cached = store.get(*key)
        seen = None if replaces is None else (replaces.get("metadata") or {}).get("resourceVersion")
        if (cached is None and seen is None) or (
                cached is not None and seen is not None and cached["metadata"].get("resourceVersion") == seen):
            store.put(key, compact(slim(obj)))

    def stores(self) -> dict[str, Store]:
        return {"ModelDeployment": self.mdeps, "Deployment": self.deployments, "Pod": self.pods,
                "Service": self.services, "Job": self.jobs, "PodDisruptionBudget": self.budgets,
                "HorizontalPodAutoscaler": self.autoscalers, "HTTPRoute": self.routes}

    def owned_deployments(self, uid: str) -> list[Obj]:
        return [d for d in self.deployments.by_index(OWNER_INDEX, uid)
                if not (d.get("metadata") or {}).get("deletionTimestamp")]

    def job_pods(self, namespace: str, job: str) -> list[Obj]:
        """The pods of one of our Jobs (as slim dicts, termination messages kept)."""
        out = []
        for pod in self._pods_in(namespace):
            labels = pod["metadata"].get("labels") or {}
            if labels.get(JOB_NAME_LABEL) == job or labels.get("job-name") == job:
                out.append(pod)
        return out

    def _pods_in(self, namespace: str) -> list[Obj]:
        return [p for (ns, _), p in self.pods.objects.items() if ns == namespace]

    def pods_of(self, namespace: str, name: str, revisions: set[str]) -> list[PodView]:
        """The live pods of our own Deployments' revisions (a namesake's pods carry other revisions)."""
        out = []
        for pod in self.pods.by_index(INSTANCE_INDEX, f"{namespace}/{name}"):
            meta, st = pod["metadata"], pod["status"]
            revision = (meta.get("labels") or {}).get(LABEL_REVISION, "")
            if meta.get("deletionTimestamp") or revision not in revisions:
                continue
            out.append(PodView(name=str(meta.get("name")), revision=revision, ip=st.get("podIP"),
                               ready=bool(st.get("ready")), phase=str(st.get("phase") or ""),
                               problem=st.get("problem")))
        return out


# Waiting reasons that mean a container will not start by itself.
_STUCK = {"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName",
          "CreateContainerError", "RunContainerError"}


def pod_problem(st: dict[str, Any]) -> str | None:
    """The first failing container of a pod, in the kubelet's words, e.g. a model that failed its sha256."""
    for kind, key in (("init container", "initContainerStatuses"), ("container", "containerStatuses")):
        for cs in st.get(key) or []:
            state = cs.get("state") or {}
            term = state.get("terminated")
            if term is not None and term.get("exitCode") not in (0, None):
                detail = (term.get("message") or term.get("reason") or f"exit code {term.get('exitCode')}").strip()
                return f"{kind} {cs.get('name')} failed: {detail}"[:512]
            waiting = state.get("waiting")
            if waiting is not None and waiting.get("reason") in _STUCK:
                return f"{kind} {cs.get('name')}: {waiting.get('reason')}: {(waiting.get('message') or '').strip()}"[
                    :512]
    return None
