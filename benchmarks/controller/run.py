"""Controller benchmark: how fast the operator reacts, on the real local control plane.

`make bench-controller` (python -m benchmarks.controller.run) prints:
1. spec change -> canary Deployment created: p50 and p99 over N changes;
2. rollout wall time minus the configured pauses and intervals, per step (steps without pauses, so
   what is measured is the operator's own overhead plus the pods becoming ready);
3. failed analysis -> canary at 0%: seconds from the status recording the failed run to the
   Service's EndpointSlices no longer listing any canary pod (real serving pods, real metrics).
Anchors (documented behaviour, not measured here: neither peer runs on this machine): Flagger acts
once per analysis interval (default 1m) and moves one stepWeight per interval; Argo Rollouts is
event-driven (a spec change is reconciled on the watch event) and advances steps on its own
requeues.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.cluster import localcluster
from tests.conftest import CRD_FILE, OperatorProcess
from tests.e2e.scenario import apply, deployments, get, manifest, status, train, wait_status


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _kwok_manifest(name: str, version: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A ModelDeployment on kwok's nodes: pods are Ready at once, nothing is served."""
    return {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": {"model": {"name": "iris", "version": version, "uri": "file:///models/iris/model.skops",
                               "format": "skops"},
                     "serving": {"replicas": 4},
                     "rollout": {"steps": steps, "analysis": {"disabled": True}}}}


def bench_canary_creation(cluster: localcluster.Cluster, namespace: str, n: int) -> list[float]:
    apply(cluster, namespace, _kwok_manifest("react", "0", [{"setWeight": 10}, {"pause": {}}]))
    wait_status(cluster, namespace, "react", lambda s: s.get("phase") == "Healthy", "first deploy", 120)
    samples = []
    for i in range(1, n + 1):
        before = {d["metadata"]["name"] for d in deployments(cluster, namespace, "react")}
        started = time.monotonic()
        apply(cluster, namespace, _kwok_manifest("react", str(i), [{"setWeight": 10}, {"pause": {}}]))
        while True:
            names = {d["metadata"]["name"] for d in deployments(cluster, namespace, "react")}
            if names - before:
                samples.append(time.monotonic() - started)
                break
            if time.monotonic() - started > 60:
                raise RuntimeError("no canary Deployment within 60s")
            time.sleep(0.01)
    return samples


def bench_step_overhead(cluster: localcluster.Cluster, namespace: str) -> list[tuple[str, float]]:
    steps = [{"setWeight": 25}, {"setWeight": 50}, {"setWeight": 75}]
    apply(cluster, namespace, _kwok_manifest("steps", "1", steps))
    wait_status(cluster, namespace, "steps", lambda s: s.get("phase") == "Healthy", "first deploy", 120)
    started = time.monotonic()
    apply(cluster, namespace, _kwok_manifest("steps", "2", steps))
    marks: list[tuple[str, float]] = []
    seen_index = -1
    while True:
        st = status(cluster, namespace, "steps")
        canary = st.get("canary") or {}
        index = canary.get("stepIndex", -1) if canary.get("revision") else -1
        now = time.monotonic() - started
        if index > seen_index and canary.get("modelVersion") == "2":
            for k in range(seen_index + 1, index + 1):
                marks.append((f"step {k} reached" if k < len(steps) else "promotion started", now))
            seen_index = index
        if st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == "2":
            marks.append(("promoted (Healthy on v2)", now))
            return marks
        if now > 120:
            raise RuntimeError(f"rollout did not finish: {st.get('message')}")
        time.sleep(0.02)


def bench_abort(cluster: localcluster.Cluster, namespace: str, models_dir: Path) -> float:
    from tests.cluster.netkubelet import NetKubelet, real_cidr
    from tests.cluster.traffic import LoadGenerator

    good = train(models_dir, "v1", "1")
    failing = train(models_dir, "failing", "3", "--fail-above", "8.0", "--fail-feature", "0")
    kubelet = NetKubelet(str(cluster.kubeconfig), "modelops-real-0", real_cidr(0))
    kubelet.start()
    load = None
    try:
        apply(cluster, namespace, manifest("abort", good, steps=[{"setWeight": 50}, {"pause": {}}]))
        wait_status(cluster, namespace, "abort", lambda s: s.get("phase") == "Healthy", "v1 Healthy", 120)
        load = LoadGenerator(str(cluster.kubeconfig), namespace, "abort", "iris", rate_per_s=100, duration_s=120,
                             max_requests=20000, large_fraction=0.5)
        load.start()
        apply(cluster, namespace, manifest("abort", failing, steps=[{"setWeight": 50}, {"pause": {}}]))
        st = wait_status(cluster, namespace, "abort", lambda s: (s.get("analysis") or {}).get("failures", 0) >= 1,
                         "a failed analysis run", 120)
        failed_at = time.monotonic()
        canary_rev = st["canary"]["revision"]
        canary_ips = {p["status"].get("podIP") for p in get(cluster, namespace, "pods", "-l",
                      f"modelops.dev/revision={canary_rev}").get("items", [])}
        while True:
            slices = get(cluster, namespace, "endpointslices", "-l", "kubernetes.io/service-name=abort")
            listed = {a for s in slices.get("items", []) for e in s.get("endpoints") or []
                      if (e.get("conditions") or {}).get("ready") for a in e["addresses"]}
            if not listed & canary_ips:
                return time.monotonic() - failed_at
            if time.monotonic() - failed_at > 60:
                raise RuntimeError("canary endpoints still listed 60s after the failed run")
            time.sleep(0.02)
    finally:
        if load is not None:
            load.stop()
        kubelet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30, help="spec changes measured")
    parser.add_argument("--skip-abort", action="store_true", help="skip the real-pods abort measurement")
    args = parser.parse_args(argv)
    cluster = localcluster.up(quiet=True)
    cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    namespace = f"bench-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    while not cluster.kubectl("get", "sa", "default", "-n", namespace, "-o", "name", check=False).strip():
        time.sleep(0.2)
    with tempfile.TemporaryDirectory() as tmp:
        op = OperatorProcess(cluster, Path(tmp) / "operator.log")
        op.start()
        try:
            creation = bench_canary_creation(cluster, namespace, args.changes)
            steps = bench_step_overhead(cluster, namespace)
            abort = None if args.skip_abort else bench_abort(cluster, namespace, Path(tmp) / "models")
        finally:
            op.stop()
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    print("\nmodelops controller benchmark (real kube-apiserver, kwok nodes, operator as a process)")
    print(f"{'measure':<52}{'modelops':>12}   anchor")
    print(f"{'spec change -> canary Deployment created, p50':<52}{statistics.median(creation):>10.3f} s"
          "   Flagger: next interval tick (default 60 s); Argo Rollouts: on the watch event")
    print(f"{'spec change -> canary Deployment created, p99':<52}{_pct(creation, 0.99):>10.3f} s   (n={len(creation)})")
    previous = 0.0
    for label, at in steps:
        print(f"{'rollout: ' + label + ' (+delta)':<52}{at:>10.3f} s   "
              f"(+{at - previous:.3f} s; no pauses; Flagger: one interval per step)")
        previous = at
    if abort is not None:
        print(f"{'failed analysis -> canary at 0% (endpoints gone)':<52}{abort:>10.3f} s"
              "   Flagger: the failing check's interval tick (default 60 s)")
    print(json.dumps({"creation_p50_s": statistics.median(creation), "creation_p99_s": _pct(creation, 0.99),
                      "steps": steps, "abort_to_zero_s": abort}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
