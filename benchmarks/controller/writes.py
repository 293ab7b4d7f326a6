"""What one write of a child costs the API server: a plain create against a server-side apply.

`python -m benchmarks.controller.writes --count 500` creates `count` Deployments of zero replicas from
the operator's own builder, from 16 client threads, once as plain creates and once as server-side
applies (each in a namespace of its own, deleted afterwards), and prints the kube-apiserver's CPU
seconds per object for each. The operator creates a child that is missing and applies only to change
one (`modelops.controller.kube.Kube.create` / `apply`); this is the figure behind that choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelops.api.spec import ModelDeploymentSpec
from modelops.controller.kube import FIELD_MANAGER
from modelops.resources import builders

from benchmarks.controller.fleet import HOLD_STEPS, BulkCost, api_client, mdep, say
from devcluster import localcluster


def measure(cluster: localcluster.Cluster, api: Any, mode: str, count: int, workers: int) -> tuple[float, float]:
    """(wall seconds, kube-apiserver CPU seconds) for `count` writes of one `mode` ("create" or "apply")."""
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    namespace = f"writes-{mode}-{int(time.time()) % 100000}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    resource = DynamicClient(api).resources.get(api_version="apps/v1", kind="Deployment")
    spec = ModelDeploymentSpec.model_validate(mdep("m", "1", HOLD_STEPS)["spec"])

    def write(i: int) -> None:
        # The owner UID names nothing: the garbage collector removes these with the namespace anyway.
        body = builders.deployment(f"m{i:05d}", namespace, f"00000000-0000-0000-0000-{i:012d}", spec, "r1", 0)
        if mode == "create":
            response = resource.create(body=body, namespace=namespace, field_manager=FIELD_MANAGER, serialize=False)
        else:
            response = resource.server_side_apply(body=body, name=body["metadata"]["name"], namespace=namespace,
                                                  field_manager=FIELD_MANAGER, force_conflicts=False, serialize=False)
        try:
            json.loads(response.data)
        finally:
            response.release_conn()

    try:
        cost = BulkCost(cluster)
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(write, range(count)))
        wall = time.monotonic() - started
        _, cpu = cost.read()
    finally:
        core.delete_namespace(namespace)
    return wall, cpu.get("kube-apiserver", float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.controller.writes",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=500, help="Deployments written per mode")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (create, apply)")
    parser.add_argument("--workers", type=int, default=16, help="client threads")
    args = parser.parse_args(argv)
    cluster = localcluster.up(localcluster.default(), quiet=True)
    api = api_client(cluster)
    for round_ in range(1, args.rounds + 1):
        for mode in ("create", "apply"):
            wall, cpu = measure(cluster, api, mode, args.count, args.workers)
            what = "creates" if mode == "create" else "server-side applies"
            say(f"round {round_}: {args.count} {what} in {wall:.1f}s, kube-apiserver CPU {cpu:.1f}s "
                f"= {1000 * cpu / args.count:.1f} ms per object")
    return 0


if __name__ == "__main__":
    sys.exit(main())
