"""The retraining loop end to end, timed: drift onset -> trigger -> Job done -> candidate promoted.

`make bench-retraining` (python -m benchmarks.retraining.loop, after the false-alarm count) runs on
the real local control plane with real serving pods: iris v1 serves unshifted traffic until its
drift window is full and quiet, then every request moves (sepal length +3 cm) at a moment called
onset. It times, from status and the Job as the operator's own watch sees them (polled every 0.2 s):
- onset -> trigger: the stable pods' PSI window fills with moved rows, the breach holds forDuration;
- trigger -> Job done: a real `modelops retrain-job` process trains and scores on the holdout;
- Job done -> promoted: the gate's result is recorded and the candidate goes through spec.rollout.
Each is printed beside the floor its settings impose (window, forDuration, pauses). The settings are
compressed, as in the e2e tests; production windows are minutes. Results: benchmarks/retraining/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from demo.scenario import (
    DATA_CLAIM,
    MODELS_CLAIM,
    SHIFT,
    apply,
    get,
    iris_rows,
    manifest,
    retraining_spec,
    share,
    shifted_rows,
    status,
    train,
    wait_status,
    write_shifted_csv,
)
from devcluster import claims, localcluster, realnode
from devcluster.chart import ChartOperator
from devcluster.operator import CRD_FILE
from devcluster.traffic import LoadGenerator

NAME = "iris"
WINDOW_S = 20.0
FOR_DURATION_S = 2.0
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "5s"}}]
PAUSES_S = 5.0


@dataclass
class Run:
    onset_to_trigger_s: float
    trigger_to_job_done_s: float
    job_done_to_promoted_s: float
    requests_failed: int
    requests_sent: int


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _job_done(cluster: localcluster.Cluster, namespace: str) -> float | None:
    """When the run's Job finished, as the API server recorded it (completionTime, seconds resolution)."""
    for job in get(cluster, namespace, "jobs").get("items", []):
        done = (job.get("status") or {}).get("completionTime")
        if done:
            return _parse(done)
    return None


def one_run(cluster: localcluster.Cluster, namespace: str, work: Path) -> Run:
    # The models and the data reach the pods on claims (models read-only for the servers; data the
    # Job reads the dataset from and writes the candidate to), as in `make demo`.
    share(work / "models", MODELS_CLAIM)
    v1 = train(work / "models", "v1", "1")
    data = work / "data" / namespace
    share(data, DATA_CLAIM)
    (data / "out").mkdir(parents=True, exist_ok=True)
    write_shifted_csv(data / "holdout.csv", SHIFT, seed=1)
    write_shifted_csv(data / "shifted.csv", SHIFT, seed=2, copies=3)
    claims.provision(cluster, namespace, MODELS_CLAIM, work / "models")
    claims.provision(cluster, namespace, DATA_CLAIM, data)
    obj = manifest(NAME, v1, steps=STEPS, min_requests=5)
    obj["spec"]["retraining"] = retraining_spec(data / "shifted.csv", data / "holdout.csv", data / "out",
                                                gate={"metric": "accuracy", "minValue": 0.8},
                                                for_duration=f"{FOR_DURATION_S:g}s")
    obj["spec"]["retraining"]["triggers"]["drift"]["window"] = f"{WINDOW_S:g}s"
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda s: s.get("phase") == "Healthy", "v1 Healthy", 120)
    kubeconfig = str(cluster.kubeconfig)
    # A full quiet window first: whatever triggers afterwards is the shift's doing.
    with LoadGenerator(kubeconfig, namespace, NAME, "iris", rate_per_s=30, duration_s=WINDOW_S + 5,
                       rows=iris_rows):
        time.sleep(WINDOW_S + 5)
    if (status(cluster, namespace, NAME).get("retraining") or {}).get("lastTriggered"):
        raise SystemExit("bench: a trigger fired before the shift; the quiet window was not quiet")
    print(f"  quiet window done; the world moves now (sepal length +{SHIFT:g} cm)", flush=True)
    load = LoadGenerator(kubeconfig, namespace, NAME, "iris", rate_per_s=30, duration_s=600, rows=shifted_rows)
    onset = time.time()
    load.start()
    trigger = promoted = None
    candidate = ""
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            st = status(cluster, namespace, NAME)
            rs = st.get("retraining") or {}
            if trigger is None and rs.get("lastTriggered"):
                trigger = time.time()
                print(f"  trigger after {trigger - onset:.1f}s: {rs['lastTriggered'].get('reason', '')}", flush=True)
            candidate = candidate or (rs.get("candidate") or {}).get("sha256", "")
            stable_sha = ((st.get("stable") or {}).get("model") or {}).get("sha256")
            if candidate and st.get("phase") == "Healthy" and stable_sha == candidate:
                promoted = time.time()
                break
            time.sleep(0.2)
    finally:
        results = load.stop()
    done = _job_done(cluster, namespace)
    if trigger is None or promoted is None or done is None:
        raise SystemExit(f"bench: the loop did not close in 600 s (trigger {trigger}, job done {done}, "
                         f"promoted {promoted}); status: {json.dumps(status(cluster, namespace, NAME))[:2000]}")
    # completionTime has one-second resolution: never earlier than the trigger we saw.
    done = max(done, trigger)
    return Run(trigger - onset, done - trigger, promoted - done, results.failed, results.sent)


def report(runs: list[Run]) -> str:
    lines = [
        "| interval | measured (s) | floor set by the settings |",
        "|---|---|---|",
    ]
    for run in runs:
        lines += [
            f"| drift onset -> trigger | {run.onset_to_trigger_s:.1f} | forDuration {FOR_DURATION_S:g} s "
            f"(+ rows enough to pass minSamples 100 and the derived threshold; window {WINDOW_S:g} s) |",
            f"| trigger -> Job done | {run.trigger_to_job_done_s:.1f} | Job pod start + train + holdout score |",
            f"| Job done -> candidate promoted | {run.job_done_to_promoted_s:.1f} | pauses {PAUSES_S:g} s + "
            "canary pods Ready + analysis |",
            f"| requests failed during the loop | {run.requests_failed} of {run.requests_sent} | 0 |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/retraining/RESULTS.md")
    args = parser.parse_args()
    cluster = localcluster.up()
    localcluster.apply_crd(cluster, CRD_FILE, "modeldeployments.modelops.dev")
    work = Path(tempfile.mkdtemp(prefix="modelops-bench-retraining-"))
    if not localcluster.image_archives():
        raise SystemExit("bench: no images in dist/ (make image)")
    operator = ChartOperator(cluster, work, prometheus_allow=(realnode.host_ip(),)).install()
    runs: list[Run] = []
    try:
        for i in range(args.runs):
            namespace = f"bench-retraining-{int(time.time()) % 100000}-{i}"
            cluster.kubectl("create", "namespace", namespace)
            cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
            while not cluster.kubectl("get", "sa", "default", "-n", namespace, "-o", "name", check=False).strip():
                time.sleep(0.2)
            print(f"run {i + 1}/{args.runs} in {namespace}", flush=True)
            try:
                runs.append(one_run(cluster, namespace, work))
            finally:
                cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
                claims.release(cluster, namespace)
    finally:
        operator.uninstall()
    table = report(runs)
    print(f"\nThe retraining loop, one real run per group of rows (operator logs: {work})\n")
    print(table)
    if args.write:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        with results.open("a") as out:
            out.write(f"\n## Loop timings, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
                      f"`python -m benchmarks.retraining.loop --runs {args.runs}`\n\n{table}\n")


if __name__ == "__main__":
    main()
