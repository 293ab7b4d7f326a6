"""Fleet benchmark: the operator next to 100 / 1,000 / 3,000 ModelDeployments on kwok nodes.

Run by `make bench-controller` (benchmarks/controller/run.py) or alone:
`python -m benchmarks.controller.fleet --sizes 100,1000`. For each size, with a fresh operator:
1. bulk apply (the Python client, a thread pool of creates) -> every object Ready (a watch counts);
2. operator RSS and CPU, read from /proc of the operator process (peak, and at idle);
3. API requests/s with the fleet idle: the API server's own `apiserver_request_total`, scraped
   from its /metrics with the admin client certificate, over a window with the operator running
   minus the same window after it stopped (the baseline: kube-controller-manager, scheduler, kwok);
4. spec change -> canary Deployment exists (a watch sees it), p50/p99, one change at a time,
   with the fleet idle and again while up to 100 other objects roll (their steps pause for a few
   seconds each, so they keep the operator busy throughout).
Everything is bounded (timeouts print what was reached) and the namespace and extra nodes are
removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devcluster import localcluster
from devcluster.operator import CRD_FILE, OperatorProcess, parse_metrics
from devcluster.watching import Watcher

GROUP, VERSION, PLURAL = "modelops.dev", "v1alpha1", "modeldeployments"
MANAGED = "app.kubernetes.io/managed-by=modelops"
INSTANCE_LABEL = "app.kubernetes.io/instance"
HOLD_STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]  # a canary that waits for promote

TARGETS = {
    "ready_s": (1000, 60.0, "1,000 Ready in <= 60 s"),
    "api_rps": (1000, 2.0, "idle <= 2 API requests/s at 1,000"),
    "rolling_p99_s": (1000, 1.0, "p99 <= 1 s at 1,000 with 100 rolling"),
    "rss_peak_mib": (3000, 300.0, "RSS <= 300 MiB at 3,000"),
}
ANCHORS = ("KServe: stalls near 300 InferenceServices; Flagger: slows near 50 canaries; "
           "Argo Rollouts: ~10k rollouts in 11-14 GB (documented figures, not measured here)")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def mdep(name: str, version: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-replica ModelDeployment on kwok's nodes: pods are Ready at once, nothing is served."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": {"model": {"name": "iris", "version": version, "uri": "file:///models/iris/model.skops",
                               "format": "skops"},
                     "serving": {"replicas": 1},
                     "rollout": {"steps": steps, "analysis": {"disabled": True}}}}


def rolling_steps(pauses: int, pause_s: int) -> list[dict[str, Any]]:
    """Steps that keep a canary busy: a weight, then a timed pause, `pauses` times."""
    steps: list[dict[str, Any]] = []
    for i in range(pauses):
        steps += [{"setWeight": 1 + i * (90 // pauses)}, {"pause": {"duration": f"{pause_s}s"}}]
    return steps


def api_client(cluster: localcluster.Cluster, pool: int = 32) -> Any:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


# ------------------------------------------------------------------ watching


class ReadyCounter:
    """Which ModelDeployments are Ready for their current generation."""

    def __init__(self) -> None:
        self.ready: set[str] = set()
        self.status: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def __call__(self, event: str, obj: dict[str, Any], _: float) -> None:
        name = obj["metadata"]["name"]
        st = obj.get("status") or {}
        ok = (event != "DELETED" and st.get("observedGeneration") == obj["metadata"].get("generation")
              and any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []))
        with self.lock:
            self.status[name] = st
            (self.ready.add if ok else self.ready.discard)(name)

    def count(self) -> int:
        with self.lock:
            return len(self.ready)


class DeploymentTimes:
    """When each Deployment of an instance was first seen (monotonic seconds)."""

    def __init__(self) -> None:
        self.first_seen: dict[str, tuple[str, float]] = {}  # deployment name -> (instance, seen_at)
        self.lock = threading.Lock()

    def __call__(self, event: str, obj: dict[str, Any], seen_at: float) -> None:
        if event == "DELETED":
            return
        meta = obj["metadata"]
        with self.lock:
            self.first_seen.setdefault(meta["name"], ((meta.get("labels") or {}).get(INSTANCE_LABEL, ""), seen_at))

    def names_of(self, instance: str) -> set[str]:
        with self.lock:
            return {n for n, (i, _) in self.first_seen.items() if i == instance}

    def new_since(self, instance: str, known: set[str]) -> float | None:
        with self.lock:
            seen = [t for n, (i, t) in self.first_seen.items() if i == instance and n not in known]
        return min(seen) if seen else None


# ------------------------------------------------------------------ the operator process and the API server


@dataclass
class ProcSample:
    rss_mib: float
    cpu_s: float


def proc_sample(pid: int) -> ProcSample:
    """RSS and user+system CPU seconds of one process, from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ProcSample(rss_kb / 1024, ticks / _CLK_TCK)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcMonitor:
    """Samples the operator's RSS every half second; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mib = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcMonitor:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(5)

    def _run(self) -> None:
        while not self.stopped.wait(0.5):
            with contextlib.suppress(OSError):
                self.peak_mib = max(self.peak_mib, proc_sample(self.pid).rss_mib)


_SAMPLE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts(cluster: localcluster.Cluster) -> dict[tuple[str, str], float]:
    """apiserver_request_total summed by (verb, resource[/subresource]) from the API server's /metrics."""
    counts: dict[tuple[str, str], float] = {}
    for line in localcluster.apiserver_metrics(cluster).splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        key = (labels.get("verb", ""), resource or "(non-resource)")
        counts[key] = counts.get(key, 0.0) + float(m["value"])
    return counts


def request_rate(cluster: localcluster.Cluster, window_s: float) -> tuple[float, dict[tuple[str, str], float]]:
    """API requests/s over the next `window_s` seconds: the total and by (verb, resource)."""
    before = request_counts(cluster)
    time.sleep(window_s)
    after = request_counts(cluster)
    by_key = {k: (v - before.get(k, 0.0)) / window_s for k, v in after.items() if v - before.get(k, 0.0) > 0}
    return sum(by_key.values()), by_key


class BulkCost:
    """What a stretch of work cost the control plane: API requests by (verb, resource), from the API
    server's own counter, and CPU seconds by process (the control plane's, plus any named pid)."""

    def __init__(self, cluster: localcluster.Cluster, extra: dict[str, int] | None = None) -> None:
        self.cluster = cluster
        self.pids = {**localcluster.processes(cluster), **(extra or {})}
        self.requests0 = request_counts(cluster)
        self.cpu0 = self._cpu()

    def _cpu(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                out[name] = proc_sample(pid).cpu_s
        return out

    def read(self) -> tuple[dict[str, float], dict[str, float]]:
        """Requests (by "VERB resource") and CPU seconds (by process) since this meter was made."""
        after = request_counts(self.cluster)
        requests = {f"{v} {r}": n - self.requests0.get((v, r), 0.0) for (v, r), n in after.items()
                    if n - self.requests0.get((v, r), 0.0) > 0}
        cpu = {k: v - self.cpu0[k] for k, v in self._cpu().items() if k in self.cpu0}
        return requests, cpu


READ_VERBS = {"GET", "LIST", "WATCH"}


def describe_cost(size: int, requests: dict[str, float], cpu: dict[str, float]) -> str:
    """Writes per object by "VERB resource", reads per object, and CPU seconds by process, a line each."""
    def is_read(key: str) -> bool:
        return key.split(" ", 1)[0] in READ_VERBS

    writes = sorted(((k, n) for k, n in requests.items() if not is_read(k)), key=lambda t: -t[1])
    reads = sum(n for k, n in requests.items() if is_read(k))
    total_writes = sum(n for _, n in writes)
    by_kind = ", ".join(f"{k} {n / size:.2f}" for k, n in writes if n / size >= 0.01)
    lines = [f"writes per object {total_writes / size:.2f} ({by_kind}); reads per object {reads / size:.2f}",
             "CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda t: -t[1]))]
    return "\n".join(lines)


# ------------------------------------------------------------------ one fleet size


@dataclass
class SizeResult:
    size: int
    extra_nodes: int = 0
    create_s: float = float("nan")  # all creates sent
    ready_s: float | None = None  # None: not all Ready within the timeout
    ready_count: int = 0
    rss_peak_mib: float = 0.0
    rss_idle_mib: float = 0.0
    cpu_to_ready_s: float = 0.0
    cpu_idle_pct: float = 0.0
    api_rps_with_operator: float = 0.0
    api_rps_baseline: float = 0.0
    api_rps: float = 0.0  # operator minus baseline
    api_by_resource: list[tuple[str, str, float]] = field(default_factory=list)
    operator_api_rps: float | None = None  # what the operator's own modelops_api_requests_total says
    idle_latency_s: list[float] = field(default_factory=list)
    rolling_latency_s: list[float] = field(default_factory=list)
    rolling: int = 0
    still_rolling_at_end: int = 0
    # The operator's own histograms over the latency run with others rolling: where a change's time goes.
    rolling_operator: dict[str, float] = field(default_factory=dict)
    # What the bulk apply cost the control plane, apply -> all Ready: requests and CPU seconds by process.
    bulk_requests: dict[str, float] = field(default_factory=dict)
    bulk_cpu_s: dict[str, float] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float | None]:
        def p(values: list[float], q: float) -> float | None:
            return pct(values, q) if values else None

        return {"ready_s": self.ready_s, "rss_peak_mib": self.rss_peak_mib, "rss_idle_mib": self.rss_idle_mib,
                "cpu_to_ready_s": self.cpu_to_ready_s, "cpu_idle_pct": self.cpu_idle_pct, "api_rps": self.api_rps,
                "idle_p50_s": p(self.idle_latency_s, 0.5), "idle_p99_s": p(self.idle_latency_s, 0.99),
                "rolling_p50_s": p(self.rolling_latency_s, 0.5), "rolling_p99_s": p(self.rolling_latency_s, 0.99)}


@dataclass
class Options:
    idle_window_s: float = 60.0
    changes: int = 20
    rolling: int = 100
    ready_timeout_s: float = 900.0
    workers: int = 16
    pause_s: int = 4
    pauses: int = 15


class Fleet:
    """One namespace of `size` ModelDeployments, measured with a fresh operator."""

    def __init__(self, cluster: localcluster.Cluster, api: Any, size: int, opts: Options, log_dir: Path,
                 operator_args: list[str]) -> None:
        from kubernetes import client

        self.cluster, self.api, self.size, self.opts = cluster, api, size, opts
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = f"fleet-{size}-{int(time.time()) % 100000}"
        self.names = [f"m{i:05d}" for i in range(size)]
        self.result = SizeResult(size)
        self.operator = OperatorProcess(cluster, log_dir / f"operator-{size}.log", operator_args)

    # -------------------------------------------------------------- steps

    def run(self) -> SizeResult:
        self._nodes()
        self.cluster.kubectl("create", "namespace", self.namespace)
        try:
            self.operator.start()
            with ProcMonitor(self.operator.pid) as monitor:
                ready = ReadyCounter()
                times = DeploymentTimes()
                with Watcher(self.api, self.namespace, GROUP, VERSION, PLURAL, ready), \
                        Watcher(self.api, self.namespace, "apps", "v1", "deployments", times, MANAGED):
                    self._bulk_apply(ready)
                    self._idle_window(monitor)
                    self._latencies(times, ready, self.result.idle_latency_s, self.names[: self.opts.changes],
                                    "2", "fleet idle")
                    self._rolling(times, ready)
                self.result.rss_peak_mib = monitor.peak_mib
            self.operator.stop()
            say(f"[{self.size}] operator stopped; baseline window {self.opts.idle_window_s:.0f}s")
            self.result.api_rps_baseline, base = request_rate(self.cluster, self.opts.idle_window_s)
            self.result.api_rps = self.result.api_rps_with_operator - self.result.api_rps_baseline
            with_op = dict(((v, r), x) for v, r, x in self.result.api_by_resource)
            diff = {k: with_op.get(k, 0.0) - base.get(k, 0.0) for k in set(with_op) | set(base)}
            self.result.api_by_resource = sorted(((v, r, round(x, 3)) for (v, r), x in diff.items()
                                                  if abs(x) >= 0.01), key=lambda t: -t[2])[:12]
            say(f"[{self.size}] idle API requests/s: {self.result.api_rps_with_operator:.2f} with the operator, "
                f"{self.result.api_rps_baseline:.2f} without: {self.result.api_rps:.2f} from the operator")
        finally:
            self.operator.stop()
            self._delete_namespace()
        return self.result

    def _nodes(self) -> None:
        pods = self.size + self.opts.rolling + 2 * self.opts.changes + 50
        have = len(localcluster.NODES) * localcluster.PODS_PER_NODE
        extra = max(0, math.ceil((pods - have) / localcluster.PODS_PER_NODE))
        if extra > localcluster.EXTRA_NODE_MAX:
            raise RuntimeError(f"{self.size} objects need {extra} extra kwok nodes, over {localcluster.EXTRA_NODE_MAX}")
        if extra:
            say(f"[{self.size}] making sure {extra} extra kwok nodes exist ({localcluster.PODS_PER_NODE} pods each)")
            localcluster.add_kwok_nodes(self.cluster, extra)
        self.result.extra_nodes = extra

    def _bulk_apply(self, ready: ReadyCounter) -> None:
        say(f"[{self.size}] creating {self.size} ModelDeployments in {self.namespace} "
            f"({self.opts.workers} client threads)")
        created = 0
        lock = threading.Lock()

        def create(name: str) -> None:
            nonlocal created
            for attempt in range(5):
                try:
                    self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                                mdep(name, "1", HOLD_STEPS))
                    break
                except Exception as error:
                    if getattr(error, "status", None) == 409:
                        break
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))
            with lock:
                created += 1

        cost = BulkCost(self.cluster, {"operator": self.operator.pid})
        started = time.monotonic()
        pool = ThreadPoolExecutor(self.opts.workers)
        futures = [pool.submit(create, n) for n in self.names]
        last_print = last_pipeline = 0.0
        while True:
            now = time.monotonic() - started
            if all(f.done() for f in futures) and self.result.create_s != self.result.create_s:
                self.result.create_s = now
                for f in futures:
                    f.result()  # raise what failed
            count = ready.count()
            if count >= self.size:
                self.result.ready_s = now
                break
            if now > self.opts.ready_timeout_s:
                self.result.misses.append(f"only {count}/{self.size} Ready after {now:.0f}s")
                break
            if now - last_print >= 5:
                # Listing every pod costs the apiserver (the bottleneck here) too: every 30 s only.
                pipeline = ""
                if now - last_pipeline >= 30:
                    pipeline, last_pipeline = f"{self._pipeline()}, ", now
                say(f"[{self.size}] {now:5.0f}s: created {created}/{self.size}, Ready {count}/{self.size}, "
                    f"{pipeline}operator RSS {proc_sample(self.operator.pid).rss_mib:.0f} MiB")
                last_print = now
            time.sleep(0.1)
        pool.shutdown()
        self.result.ready_count = ready.count()
        self.result.bulk_requests, self.result.bulk_cpu_s = cost.read()
        self.result.cpu_to_ready_s = self.result.bulk_cpu_s.get("operator", float("nan"))
        for line in describe_cost(self.size, self.result.bulk_requests, self.result.bulk_cpu_s).splitlines():
            say(f"[{self.size}] bulk apply cost: {line}")
        say(f"[{self.size}] {self.result.ready_count}/{self.size} Ready after "
            f"{self.result.ready_s if self.result.ready_s is not None else float('nan'):.1f}s "
            f"(creates sent in {self.result.create_s:.1f}s; operator CPU {self.result.cpu_to_ready_s:.1f}s)")

    def _pipeline(self) -> str:
        """Where the fleet's pods are: which stage holds a slow bulk apply (operator, scheduler or kwok)."""
        from kubernetes import client

        try:
            items = client.AppsV1Api(self.api).list_namespaced_deployment(self.namespace, label_selector=MANAGED).items
            pods = client.CoreV1Api(self.api).list_namespaced_pod(self.namespace, label_selector=MANAGED).items
        except Exception as error:  # progress only: never fail the run for it
            return f"pipeline unknown ({type(error).__name__})"
        scheduled = sum(1 for p in pods if p.spec.node_name)
        ready = sum(1 for p in pods if any(c.type == "Ready" and c.status == "True"
                                           for c in (p.status.conditions or [])))
        return f"Deployments {len(items)}, pods {len(pods)} (scheduled {scheduled}, Ready {ready})"

    def _idle_window(self, monitor: ProcMonitor) -> None:
        time.sleep(10)  # let the last status writes and Events land
        say(f"[{self.size}] fleet idle; measuring API requests over {self.opts.idle_window_s:.0f}s")
        before = proc_sample(self.operator.pid)
        op_before = self._operator_requests()
        started = time.monotonic()
        total, by_key = request_rate(self.cluster, self.opts.idle_window_s)
        elapsed = time.monotonic() - started
        after = proc_sample(self.operator.pid)
        op_after = self._operator_requests()
        self.result.api_rps_with_operator = total
        self.result.api_by_resource = [(v, r, x) for (v, r), x in by_key.items()]
        self.result.rss_idle_mib = after.rss_mib
        self.result.cpu_idle_pct = 100 * (after.cpu_s - before.cpu_s) / elapsed
        if op_before is not None and op_after is not None:
            self.result.operator_api_rps = (op_after - op_before) / elapsed
        say(f"[{self.size}] idle: RSS {after.rss_mib:.0f} MiB, CPU {self.result.cpu_idle_pct:.1f}% of a core")

    def _operator_requests(self) -> float | None:
        try:
            return self.operator.metric("modelops_api_requests_total")
        except OSError:
            return None

    def _change(self, name: str, version: str, steps: list[dict[str, Any]] | None = None) -> None:
        spec: dict[str, Any] = {"model": {"version": version}}
        if steps is not None:
            spec["rollout"] = {"steps": steps}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def _latencies(self, times: DeploymentTimes, ready: ReadyCounter, out: list[float], names: list[str],
                   version: str, label: str) -> None:
        say(f"[{self.size}] spec change -> canary Deployment, {len(names)} changes one at a time ({label})")
        for name in names:
            known = times.names_of(name)
            sent = time.monotonic()
            self._change(name, version)
            while True:
                seen = times.new_since(name, known)
                if seen is not None:
                    out.append(max(0.0, seen - sent))
                    break
                if time.monotonic() - sent > 60:
                    self.result.misses.append(f"{label}: no canary Deployment for {name} within 60s")
                    break
                time.sleep(0.005)
            time.sleep(0.2)  # one at a time, as a person or a GitOps sync would
        if out:
            say(f"[{self.size}] {label}: p50 {pct(out, 0.5):.3f}s, p99 {pct(out, 0.99):.3f}s (n={len(out)})")

    def _rolling(self, times: DeploymentTimes, ready: ReadyCounter) -> None:
        first = self.opts.changes
        measured = self.names[first: first + self.opts.changes]
        rolling = self.names[first + self.opts.changes: first + self.opts.changes + self.opts.rolling]
        self.result.rolling = len(rolling)
        if not measured:
            return
        steps = rolling_steps(self.opts.pauses, self.opts.pause_s)
        say(f"[{self.size}] starting {len(rolling)} rollouts ({self.opts.pauses} timed pauses of "
            f"{self.opts.pause_s}s each)")
        with ThreadPoolExecutor(self.opts.workers) as pool:
            list(pool.map(lambda n: self._change(n, "3", steps), rolling))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for n in rolling if len(times.names_of(n)) >= 2) < len(rolling):
            time.sleep(0.2)
        started = sum(1 for n in rolling if len(times.names_of(n)) >= 2)
        say(f"[{self.size}] {started}/{len(rolling)} rolling objects have their canary")
        before = self._histograms()
        self._latencies(times, ready, self.result.rolling_latency_s, measured, "2",
                        f"while {len(rolling)} others roll")
        self._split(before, self._histograms())
        with ready.lock:
            self.result.still_rolling_at_end = sum(
                1 for n in rolling if ((ready.status.get(n) or {}).get("canary") or {}).get("revision")
                and ((ready.status.get(n) or {}).get("stable") or {}).get("modelVersion") != "3")
        say(f"[{self.size}] {self.result.still_rolling_at_end}/{len(rolling)} still rolling when the last "
            "change was measured")
        if rolling and self.result.still_rolling_at_end < len(rolling) // 2:
            self.result.misses.append(f"only {self.result.still_rolling_at_end}/{len(rolling)} were still rolling "
                                      "at the end; raise --pauses")

    def _histograms(self) -> dict[str, dict[str, float]]:
        """The operator's queue-wait and reconcile-duration histograms, all lanes and the urgent lane
        alone (a person's edits): {name or name:urgent: {le or sum/count: value}}."""
        try:
            samples = parse_metrics(self.operator.metrics())
        except OSError:
            return {}
        def total(name: str, series: str, wanted: str | None, le: str | None = None) -> float:
            return sum(v for labels, v in samples.get(f"{name}_{series}", [])
                       if (wanted is None or labels.get("lane") == wanted) and (le is None or labels.get("le") == le))

        out: dict[str, dict[str, float]] = {}
        for name in ("modelops_workqueue_wait_seconds", "modelops_reconcile_duration_seconds"):
            les = {labels["le"] for labels, _ in samples.get(f"{name}_bucket", [])}
            for suffix, wanted in (("", None), (":urgent", "urgent")):
                h = {le: total(name, "bucket", wanted, le) for le in les}
                h["sum"] = total(name, "sum", wanted)
                h["count"] = total(name, "count", wanted)
                out[name + suffix] = h
        return out

    def _split(self, before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> None:
        """Every reconcile in the window (the rolling objects' too), and the measured edits' own (the
        urgent lane): mean queue wait, mean reconcile time, and the share over 1 s: whether a slow
        change waited for a worker or for the API."""
        if not before or not after:
            return
        figures: dict[str, float] = {}
        for name, short in (("modelops_workqueue_wait_seconds", "wait"),
                            ("modelops_reconcile_duration_seconds", "reconcile")):
            for suffix, prefix in (("", ""), (":urgent", "urgent_")):
                b, a = before.get(name + suffix), after.get(name + suffix)
                if b is None or a is None:
                    continue
                count = a["count"] - b["count"]
                if count <= 0:
                    continue
                figures[f"{prefix}{short}_count"] = count
                figures[f"{prefix}{short}_mean_s"] = (a["sum"] - b["sum"]) / count
                over_1 = count - (a.get("1.0", 0.0) - b.get("1.0", 0.0))
                figures[f"{prefix}{short}_over_1s_share"] = over_1 / count
        self.result.rolling_operator = figures
        if figures:
            say(f"[{self.size}] the operator in that window: " + ", ".join(
                f"{k} {v:.3f}" for k, v in figures.items()))

    def _delete_namespace(self) -> None:
        delete_namespace(self.cluster, self.custom, self.namespace, self.opts.workers, f"[{self.size}]")


def delete_namespace(cluster: localcluster.Cluster, custom: Any, namespace: str, workers: int, tag: str) -> None:
    """Delete a benchmark's namespace and wait (at most 600 s) until it is gone: a run that starts while
    the last one's objects are still being removed would share the operator and the apiserver with them."""
    say(f"{tag} deleting namespace {namespace}")
    # Objects left with finalizers by an operator that is no longer running would keep the
    # namespace forever: clear them first.
    with contextlib.suppress(Exception):
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        stuck = [i["metadata"]["name"] for i in listed.get("items", []) if i["metadata"].get("finalizers")]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda n: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, n, {"metadata": {"finalizers": None}}), stuck))
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    started = time.monotonic()
    while time.monotonic() - started < 600:
        if not cluster.kubectl("get", "namespace", namespace, "-o", "name", check=False).strip():
            say(f"{tag} namespace gone after {time.monotonic() - started:.0f}s")
            return
        if int(time.monotonic() - started) % 15 == 0:
            pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name", check=False)
            say(f"{tag} waiting for the namespace to go: {len(pods.split())} pods left")
        time.sleep(1)
    say(f"{tag} namespace {namespace} still terminating after 600s; going on")


# ------------------------------------------------------------------ report


def _fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.3f} {unit}" if unit == "s" and value < 10 else f"{value:.1f} {unit}".strip()


ROWS: list[tuple[str, str, str]] = [
    ("ready_s", "bulk apply -> all Ready", "s"),
    ("rss_peak_mib", "operator RSS, peak", "MiB"),
    ("rss_idle_mib", "operator RSS, idle", "MiB"),
    ("cpu_to_ready_s", "operator CPU, apply -> all Ready", "s"),
    ("cpu_idle_pct", "operator CPU, idle (% of a core)", "%"),
    ("api_rps", "API requests/s at idle (operator - baseline)", "/s"),
    ("idle_p50_s", "spec change -> canary Deployment, idle, p50", "s"),
    ("idle_p99_s", "spec change -> canary Deployment, idle, p99", "s"),
    ("rolling_p50_s", "... while others roll (row below), p50", "s"),
    ("rolling_p99_s", "... while others roll (row below), p99", "s"),
]


def verdict(key: str, results: list[SizeResult]) -> str:
    if key not in TARGETS:
        return ""
    size, limit, text = TARGETS[key]
    at = next((r for r in results if r.size == size), None)
    if at is None:
        return f"{text} (not run)"
    value = at.figures()[key]
    if value is None:
        return f"{text}: MISSED (not reached)" if key == "ready_s" else f"{text} (not measured)"
    return f"{text}: {'met' if value <= limit else 'MISSED'}"


def table(results: list[SizeResult]) -> str:
    head = "| figure | " + " | ".join(f"{r.size:,} objects" for r in results) + " | target |"
    lines = [head, "|---|" + "---|" * len(results) + "---|"]
    for key, label, unit in ROWS:
        cells = [_fmt(r.figures()[key], unit) for r in results]
        if key == "ready_s":
            cells = [c if r.ready_s is not None else f"only {r.ready_count:,} Ready at the timeout"
                     for c, r in zip(cells, results, strict=True)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {verdict(key, results)} |")
    lines.append("| objects rolling during the second latency run (still rolling at the end) | "
                 + " | ".join(f"{r.rolling} ({r.still_rolling_at_end})" for r in results) + " | |")
    lines.append("| extra kwok nodes (110 pods each) | " + " | ".join(str(r.extra_nodes) for r in results) + " | |")
    return "\n".join(lines)


def breakdown(results: list[SizeResult]) -> str:
    out = []
    for r in results:
        parts = ", ".join(f"{verb} {res} {rate:+.2f}" for verb, res, rate in r.api_by_resource[:8])
        own = f"; the operator's own count: {r.operator_api_rps:.2f}/s" if r.operator_api_rps is not None else ""
        out.append(f"- {r.size:,}: {r.api_rps_with_operator:.2f}/s with the operator, {r.api_rps_baseline:.2f}/s "
                   f"without{own}. Largest differences (requests/s): {parts or 'none'}")
        out += [f"  - not reached: {m}" for m in r.misses]
    return "\n".join(out)


def bulk_costs(results: list[SizeResult]) -> str:
    out = []
    for r in results:
        lines = describe_cost(r.size, r.bulk_requests, r.bulk_cpu_s).splitlines()
        out.append(f"- {r.size:,}: " + "; ".join(lines))
    return "\n".join(out)


def run_sizes(cluster: localcluster.Cluster, sizes: list[int], opts: Options, log_dir: Path,
              on_size: Callable[[list[SizeResult]], None] | None = None) -> list[SizeResult]:
    """Measure each size with a fresh operator and namespace; extra kwok nodes are removed at the end.
    `on_size` gets the results so far after each size (so a long run cut short still leaves them)."""
    localcluster.apply_crd(cluster, CRD_FILE, "modeldeployments.modelops.dev")
    args = ["--workers", str(opts.workers)]
    api = api_client(cluster)
    results = []
    try:
        for size in sizes:
            results.append(Fleet(cluster, api, size, opts, log_dir, args).run())
            if on_size is not None:
                on_size(results)
    finally:
        localcluster.remove_kwok_nodes(cluster)
    return results


@contextlib.contextmanager
def log_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        yield Path(tmp)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes numbers separated by commas, not {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--sizes: each size must be at least 1 (got {text!r})")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=parse_sizes, default=[100, 1000, 3000],
                        help="fleet sizes, comma-separated (default 100,1000,3000)")
    parser.add_argument("--idle-window", type=float, default=60.0, help="seconds of each idle API window")
    parser.add_argument("--fleet-changes", type=int, default=20, help="spec changes measured per latency run")
    parser.add_argument("--rolling", type=int, default=100, help="objects rolling during the second latency run")
    parser.add_argument("--ready-timeout", type=float, default=900.0, help="seconds to wait for all Ready")
    parser.add_argument("--pauses", type=int, default=15, help="timed pauses in each rolling object's steps")


def options(args: argparse.Namespace) -> Options:
    return Options(idle_window_s=args.idle_window, changes=args.fleet_changes, rolling=args.rolling,
                   ready_timeout_s=args.ready_timeout, pauses=args.pauses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    cluster = localcluster.up(quiet=True)
    with log_directory() as logs:
        results = run_sizes(cluster, args.sizes, options(args), logs)
    print(table(results))
    print(breakdown(results))
    print(ANCHORS)
    print([asdict(r) for r in results])
    return 0


if __name__ == "__main__":
    sys.exit(main())
