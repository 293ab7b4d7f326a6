"""Controller benchmark: how fast the operator reacts, on the real local control plane.

`make bench-controller` (python -m benchmarks.controller.run) prints:
1. spec change -> canary Deployment created: p50 and p99 over N changes;
2. rollout wall time minus the configured pauses and intervals, per step (steps without pauses, so
   what is measured is the operator's own overhead plus the pods becoming ready);
3. failed analysis -> canary at 0%: seconds from the status recording the failed run to the
   Service's EndpointSlices no longer listing any canary pod (real serving pods on the real node,
   the operator installed by its Helm chart, real metrics).
Anchors (documented behaviour, not measured here: neither peer runs on this machine): Flagger acts
once per analysis interval (default 1m) and moves one stepWeight per interval; Argo Rollouts is
event-driven (a spec change is reconciled on the watch event) and advances steps on its own
requeues.
4. the fleet benchmark (benchmarks/controller/fleet.py: 100 / 1,000 / 3,000 objects, `--sizes`).
Results go to benchmarks/controller/RESULTS.md (the latest run) and results/<time>.json (raw).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.controller import fleet
from demo.scenario import apply, deployments, get, manifest, status, train, wait_status
from devcluster import localcluster
from devcluster.operator import CRD_FILE, OperatorProcess

HERE = Path(__file__).resolve().parent


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


def bench_abort(cluster: localcluster.Cluster, namespace: str, work: Path) -> float:
    """Real serving pods on the real node, the operator installed by its chart (as `make demo` runs it)."""
    from demo.scenario import MODELS_CLAIM, TESTING_IMAGE, share
    from devcluster import claims, realnode
    from devcluster.chart import ChartOperator
    from devcluster.traffic import LoadGenerator

    models_dir = work / "models"
    share(models_dir, MODELS_CLAIM)
    good = train(models_dir, "v1", "1")
    failing = train(models_dir, "failing", "3", "--fail-above", "8.0", "--fail-feature", "0", image=TESTING_IMAGE)
    claims.prepare(models_dir)
    claims.provision(cluster, namespace, MODELS_CLAIM, models_dir)
    operator = ChartOperator(cluster, work, replicas=1, prometheus_allow=(realnode.host_ip(),)).install()
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
        operator.uninstall()
        claims.release(cluster, namespace)


def reaction(cluster: localcluster.Cluster, changes: int, skip_abort: bool) -> dict[str, Any]:
    """The single-object measurements (1-3 of the module docstring) in a namespace of their own."""
    namespace = f"bench-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    # The serving pods of the abort measurement run on the real node, under the standard the product meets.
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    while not cluster.kubectl("get", "sa", "default", "-n", namespace, "-o", "name", check=False).strip():
        time.sleep(0.2)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            # kwok's pods (Ready at once) and the operator as a process, as the fleet measurement runs it.
            op = OperatorProcess(cluster, Path(tmp) / "operator.log")
            op.start()
            try:
                creation = bench_canary_creation(cluster, namespace, changes)
                steps = bench_step_overhead(cluster, namespace)
            finally:
                op.stop()
            abort = None if skip_abort else bench_abort(cluster, namespace, Path(tmp))
        finally:
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return {"creation_s": creation, "creation_p50_s": statistics.median(creation),
            "creation_p99_s": _pct(creation, 0.99), "steps": steps, "abort_to_zero_s": abort}


def reaction_lines(r: dict[str, Any]) -> list[str]:
    creation = r["creation_s"]
    lines = [f"{'measure':<52}{'modelops':>12}   anchor",
             f"{'spec change -> canary Deployment created, p50':<52}{r['creation_p50_s']:>10.3f} s"
             "   Flagger: next interval tick (default 60 s); Argo Rollouts: on the watch event",
             f"{'spec change -> canary Deployment created, p99':<52}{r['creation_p99_s']:>10.3f} s"
             f"   (n={len(creation)})"]
    previous = 0.0
    for label, at in r["steps"]:
        lines.append(f"{'rollout: ' + label + ' (+delta)':<52}{at:>10.3f} s   "
                     f"(+{at - previous:.3f} s; no pauses; Flagger: one interval per step)")
        previous = at
    if r["abort_to_zero_s"] is not None:
        lines.append(f"{'failed analysis -> canary at 0% (endpoints gone)':<52}{r['abort_to_zero_s']:>10.3f} s"
                     "   Flagger: the failing check's interval tick (default 60 s)")
    return lines


def write_results(reaction_result: dict[str, Any] | None, fleet_results: list[fleet.SizeResult],
                  argv: list[str]) -> Path:
    """RESULTS.md (the latest run, side by side with the targets) and the raw JSON under results/."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    raw = {"at": stamp, "commit": commit, "argv": argv, "reaction": reaction_result,
           "fleet": [asdict(r) for r in fleet_results]}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{stamp}.json").write_text(json.dumps(raw, indent=2))
    md = ["# Controller benchmark results", "",
          f"`make bench-controller` ({' '.join(argv) or 'default arguments'}), commit {commit}, {stamp}; "
          f"{os.cpu_count()} cores shared with other work; real kube-apiserver, kwok nodes, the operator as one "
          "process. Raw figures: `benchmarks/controller/results/` (not committed).", ""]
    if fleet_results:
        md += ["## Fleet", "", fleet.table(fleet_results), "", "API requests at idle, by verb and resource:",
               fleet.breakdown(fleet_results), "", "What the bulk apply cost the control plane (apply -> all Ready):",
               fleet.bulk_costs(fleet_results), "", f"Anchors: {fleet.ANCHORS}.", ""]
    if reaction_result is not None:
        md += ["## One object", "", "```", *reaction_lines(reaction_result), "```", ""]
    (HERE / "RESULTS.md").write_text("\n".join(md))
    return HERE / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--changes", type=int, default=30, help="spec changes measured on the single object")
    parser.add_argument("--skip-abort", action="store_true", help="skip the real-pods abort measurement")
    parser.add_argument("--skip-reaction", action="store_true", help="skip the single-object measurements")
    parser.add_argument("--skip-fleet", action="store_true", help="skip the fleet measurements")
    fleet.add_arguments(parser)
    args = parser.parse_args(argv)
    cluster = localcluster.up(quiet=True)
    localcluster.apply_crd(cluster, CRD_FILE, "modeldeployments.modelops.dev")
    reaction_result = None if args.skip_reaction else reaction(cluster, args.changes, args.skip_abort)
    if reaction_result is not None:
        print("\nmodelops controller benchmark (real kube-apiserver, kwok nodes, operator as a process)")
        print("\n".join(reaction_lines(reaction_result)), flush=True)
    fleet_results: list[fleet.SizeResult] = []
    if not args.skip_fleet:
        with fleet.log_directory() as logs:
            fleet_results = fleet.run_sizes(cluster, args.sizes, fleet.options(args), logs,
                                            lambda so_far: write_results(reaction_result, so_far, argv))
        print("\nfleet (targets from issue 7)")
        print(fleet.table(fleet_results))
        print(fleet.breakdown(fleet_results))
        print(f"anchors: {fleet.ANCHORS}")
    print(f"written: {write_results(reaction_result, fleet_results, argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
