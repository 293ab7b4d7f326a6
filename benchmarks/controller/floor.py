"""The control plane's floor under the fleet's bulk apply: the same objects, no operator.

`python -m benchmarks.controller.floor --size 1000` creates `size` ModelDeployments and, for each, the
children the operator would make, from the operator's own builders (a Service, a
PodDisruptionBudget, one Deployment of one replica on kwok nodes, all owned by the
ModelDeployment), with plain creates from the same 16 client threads as the fleet run. It times
until every Deployment has its pod Ready. No operator runs, and no status or Event is written.

The fleet run's "bulk apply -> all Ready" (benchmarks/controller/fleet.py) minus this floor is the
operator's share. The floor itself is the apiserver, controller-manager, scheduler and kwok on this
machine's cores: no operator can make the fleet Ready faster than it.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelops.api.spec import ModelDeploymentSpec
from modelops.resources import builders
from modelops.resources.naming import desired_revision

from benchmarks.controller.fleet import (
    GROUP,
    HOLD_STEPS,
    PLURAL,
    VERSION,
    BulkCost,
    api_client,
    delete_namespace,
    describe_cost,
    mdep,
    say,
)
from devcluster import localcluster
from devcluster.operator import CRD_FILE
from devcluster.watching import Watcher


class ReadyDeployments:
    """Which Deployments have all their replicas Ready."""

    def __init__(self) -> None:
        self.ready: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, event: str, obj: dict[str, Any], _: float) -> None:
        st, spec = obj.get("status") or {}, obj.get("spec") or {}
        ok = event != "DELETED" and int(st.get("readyReplicas") or 0) >= int(spec.get("replicas") or 1)
        with self.lock:
            (self.ready.add if ok else self.ready.discard)(obj["metadata"]["name"])

    def count(self) -> int:
        with self.lock:
            return len(self.ready)


def create_one(api: Any, namespace: str, name: str) -> None:
    """What a user and the operator create for one object, as plain creates (409: already there)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    body = mdep(name, "1", HOLD_STEPS)
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    uid = created["metadata"]["uid"]
    spec = ModelDeploymentSpec.model_validate(body["spec"])
    revision = desired_revision(namespace, name, spec, (None, None))
    core, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
    for create, child in ((core.create_namespaced_service, builders.service(name, namespace, uid, spec)),
                          (policy.create_namespaced_pod_disruption_budget,
                           builders.disruption_budget(name, namespace, uid, spec)),
                          (apps.create_namespaced_deployment,
                           builders.deployment(name, namespace, uid, spec, revision, 1))):
        try:
            create(namespace, child)
        except ApiException as error:
            if error.status != 409:
                raise


def run(cluster: localcluster.Cluster, size: int, workers: int, timeout_s: float) -> float | None:
    localcluster.apply_crd(cluster, CRD_FILE, "modeldeployments.modelops.dev")
    extra = max(0, math.ceil((size + 50 - len(localcluster.NODES) * localcluster.PODS_PER_NODE)
                             / localcluster.PODS_PER_NODE))
    if extra:
        say(f"[floor {size}] making sure {extra} extra kwok nodes exist")
        localcluster.add_kwok_nodes(cluster, extra)
    namespace = f"floor-{size}-{int(time.time()) % 100000}"
    cluster.kubectl("create", "namespace", namespace)
    api = api_client(cluster)
    ready = ReadyDeployments()
    result: float | None = None
    try:
        with Watcher(api, namespace, "apps", "v1", "deployments", ready):
            say(f"[floor {size}] creating {size} ModelDeployments and their children in {namespace}, "
                f"no operator ({workers} client threads)")
            cost = BulkCost(cluster)
            started = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(create_one, api, namespace, f"m{i:05d}") for i in range(size)]
                last = 0.0
                while True:
                    now = time.monotonic() - started
                    if ready.count() >= size:
                        result = now
                        break
                    if now > timeout_s:
                        say(f"[floor {size}] only {ready.count()}/{size} Deployments Ready after {now:.0f}s")
                        break
                    if now - last >= 5:
                        done = sum(f.done() for f in futures)
                        say(f"[floor {size}] {now:5.0f}s: objects created {done}/{size}, "
                            f"Deployments Ready {ready.count()}/{size}")
                        last = now
                    time.sleep(0.1)
                for f in futures:
                    f.result()  # raise what failed
        if result is not None:
            say(f"[floor {size}] every Deployment Ready {result:.1f}s after the first create")
            for line in describe_cost(size, *cost.read()).splitlines():
                say(f"[floor {size}] cost: {line}")
    finally:
        from kubernetes import client

        delete_namespace(cluster, client.CustomObjectsApi(api), namespace, workers, f"[floor {size}]")
        localcluster.remove_kwok_nodes(cluster)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.controller.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1000, help="ModelDeployments (and children) to create")
    parser.add_argument("--workers", type=int, default=16, help="client threads, as the fleet run's bulk apply")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every Deployment Ready")
    args = parser.parse_args(argv)
    cluster = localcluster.up(localcluster.default())
    return 0 if run(cluster, args.size, args.workers, args.timeout) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
