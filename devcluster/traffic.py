"""A bounded load generator that sends inference traffic to a Service's endpoints, as a client-side
balancer (a mesh sidecar, gRPC's round robin) does.

It dials pods, not the ClusterIP, because it keeps per-pod accounts (and labels a prediction at the pod
that made it): for every request it picks a random *ready* endpoint from the Service's EndpointSlices
(re-read every ~0.5s, so readiness changes
and rollouts show up as they would behind a real Service), and POSTs an Open Inference Protocol v2
request to the pod IP, keeping one keep-alive connection per endpoint and worker. It records, per pod
IP and per revision (the pod's `modelops.dev/revision` label when the request was sent), the ok and
failed counts and latencies, and a log of the failures (status, body, revision).

It only dials endpoints on this checkout's real nodes (the root namespace routes the IP onto the
checkout's node bridge, devcluster/realnode.py); any other endpoint (a kwok pod, whose address nothing
answers at) counts as a failed request without a packet being sent.

Used by the harness tests and the e2e rollout tests:
`LoadGenerator(kubeconfig, namespace, service, model, rate_per_s, duration_s, max_requests).start()`,
then `.results()` at any time, `.wait()` or `.stop()`.
"""

from __future__ import annotations

import http.client
import json
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster import realnode
from devcluster.kubeapi import ApiError, KubeAPI

REVISION_LABEL = "modelops.dev/revision"
# Rows resembling iris (sepal length/width, petal length/width), one per class, jittered per request.
IRIS_ROWS = ([5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.1])

RowFn = Callable[[random.Random], list[float]]
# A row and its ground truth: the generator then labels every answered prediction through the
# server's feedback endpoint, as a client that learns the outcome later would.
LabelledRowFn = Callable[[random.Random], tuple[list[float], Any]]


@dataclass
class Tally:
    """Counts and latencies of one pod IP or one revision."""

    ok: int = 0
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def quantile(self, q: float) -> float | None:
        """Latency quantile of the successful requests (None without any)."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Failure:
    at_s: float  # seconds since the generator started
    ip: str
    revision: str
    status: int  # HTTP status; 0 when no response came back
    body: str  # response body, or the connection error


@dataclass
class Results:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    no_endpoint: int = 0  # requests with no ready endpoint to go to (also counted as failed)
    elapsed_s: float = 0.0
    by_ip: dict[str, Tally] = field(default_factory=dict)
    by_revision: dict[str, Tally] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    labelled: int = 0  # feedback labels the servers joined to a prediction

    def failed_for(self, revision: str) -> int:
        tally = self.by_revision.get(revision)
        return tally.failed if tally else 0

    def ok_for(self, revision: str) -> int:
        tally = self.by_revision.get(revision)
        return tally.ok if tally else 0


def iris_rows(large_fraction: float = 0.0, large_value: float = 9.0) -> RowFn:
    """Iris-like rows; `large_fraction` of them get `large_value` as the first feature.

    A model trained with `python -m modelops_testing train --fail-above 8` (tests/models) raises on exactly those rows.
    """

    def row(rng: random.Random) -> list[float]:
        base = rng.choice(IRIS_ROWS)
        values = [round(max(0.1, v + rng.gauss(0, 0.15)), 2) for v in base]
        if large_fraction and rng.random() < large_fraction:
            values[0] = large_value
        return values

    return row


def _routed_to_node(ip: str) -> bool:
    """Whether the root namespace routes this address onto this checkout's node bridge (a real node's pod)."""
    proc = subprocess.run(["ip", "-o", "route", "get", ip], capture_output=True, text=True, timeout=10)
    words = proc.stdout.split()
    return proc.returncode == 0 and "dev" in words and words[words.index("dev") + 1] == realnode.bridge_name()


class LoadGenerator:
    """Sends `rate_per_s` requests a second until `duration_s` has passed or `max_requests` were sent."""

    def __init__(self, kubeconfig: str | Path, namespace: str, service: str, model: str,
                 rate_per_s: float = 20.0, duration_s: float = 30.0, max_requests: int | None = None, *,
                 concurrency: int = 4, rows: RowFn | None = None, large_fraction: float = 0.0,
                 large_value: float = 9.0, timeout_s: float = 5.0, refresh_s: float = 0.5,
                 seed: int = 0, max_failures_logged: int = 2000, labelled_rows: LabelledRowFn | None = None) -> None:
        if rate_per_s <= 0 or duration_s <= 0:
            raise ValueError("rate_per_s and duration_s must be positive")
        self.api = KubeAPI(kubeconfig)
        self.namespace = namespace
        self.service = service
        self.model = model
        self.rate = rate_per_s
        self.duration = duration_s
        self.max_requests = max_requests if max_requests is not None else int(rate_per_s * duration_s) + 1
        self.concurrency = concurrency
        if rows is not None and labelled_rows is not None:
            raise ValueError("give rows or labelled_rows, not both")
        self.rows = rows or iris_rows(large_fraction, large_value)
        self.labelled_rows = labelled_rows
        self.timeout = timeout_s
        self.refresh_s = refresh_s
        self.rng = random.Random(seed)
        self.max_failures_logged = max_failures_logged
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.endpoints: list[tuple[str, int]] = []  # ready (ip, port)
        self.revisions: dict[str, str] = {}  # pod IP -> revision label
        self.routed: dict[str, tuple[bool, float]] = {}  # ip -> (routed onto the node bridge, checked at)
        self.next_index = 0
        self.started = 0.0
        self._results = Results()
        self.threads: list[threading.Thread] = []
        self.refresh_error = ""

    # ------------------------------------------------------------ control

    def start(self) -> LoadGenerator:
        self._refresh()  # the first request should already see the endpoints
        self.started = time.monotonic()
        refresher = threading.Thread(target=self._refresh_loop, name="traffic-endpoints", daemon=True)
        refresher.start()
        self.threads = [refresher]
        for i in range(self.concurrency):
            worker = threading.Thread(target=self._worker, name=f"traffic-{i}", daemon=True)
            worker.start()
            self.threads.append(worker)
        return self

    def stop(self) -> Results:
        self.stopped.set()
        for thread in self.threads:
            thread.join(self.timeout + 5)
        return self.results()

    def wait(self, timeout: float | None = None) -> Results:
        """Wait until the generator stops by itself (duration or request count), then return results."""
        workers = self.threads[1:]
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in workers:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if all(not t.is_alive() for t in workers):
            self.stopped.set()
        return self.results()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads[1:])

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def results(self) -> Results:
        """A consistent copy of the results so far (safe while running)."""
        with self.lock:
            r = self._results
            return Results(
                sent=r.sent, ok=r.ok, failed=r.failed, no_endpoint=r.no_endpoint,
                elapsed_s=(time.monotonic() - self.started) if self.started else 0.0,
                by_ip={k: Tally(v.ok, v.failed, list(v.latencies_s)) for k, v in r.by_ip.items()},
                by_revision={k: Tally(v.ok, v.failed, list(v.latencies_s)) for k, v in r.by_revision.items()},
                failures=list(r.failures), labelled=r.labelled,
            )

    # ------------------------------------------------------------ endpoints

    def _refresh_loop(self) -> None:
        while not self.stopped.wait(self.refresh_s):
            if not self.running and self.started:
                return
            try:
                self._refresh()
            except Exception as error:  # keep the last known endpoints, as kube-proxy does
                self.refresh_error = str(error)

    def _refresh(self) -> None:
        ns = self.namespace
        try:
            svc = self.api.get(f"/api/v1/namespaces/{ns}/services/{self.service}")
        except ApiError as error:
            if error.status != 404:
                raise
            svc = {"spec": {"ports": []}}
        ports = svc["spec"].get("ports") or []
        port_name = ports[0].get("name", "") if ports else ""
        slices = self.api.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                              labelSelector=f"kubernetes.io/service-name={self.service}")["items"]
        endpoints: list[tuple[str, int]] = []
        for s in slices:
            if s.get("addressType") != "IPv4":
                continue
            slice_ports = s.get("ports") or []
            port = next((p["port"] for p in slice_ports if p.get("name", "") == port_name), None)
            if port is None and len(slice_ports) == 1:
                port = slice_ports[0]["port"]
            if port is None:
                continue
            for ep in s.get("endpoints") or []:
                # A nil `ready` means ready (discovery.k8s.io/v1); terminating endpoints are not.
                if (ep.get("conditions") or {}).get("ready", True) is False:
                    continue
                endpoints.extend((addr, int(port)) for addr in ep.get("addresses") or [])
        pods = self.api.get(f"/api/v1/namespaces/{ns}/pods")["items"]
        revisions = {p["status"]["podIP"]: (p["metadata"].get("labels") or {}).get(REVISION_LABEL, "")
                     for p in pods if p.get("status", {}).get("podIP")}
        now = time.monotonic()
        for ip, _ in endpoints:
            known = self.routed.get(ip)
            if known is None or now - known[1] > 2.0:
                self.routed[ip] = (_routed_to_node(ip), now)
        with self.lock:
            self.endpoints = sorted(set(endpoints))
            self.revisions.update(revisions)

    # ------------------------------------------------------------ requests

    def _worker(self) -> None:
        conns: dict[tuple[str, int], http.client.HTTPConnection] = {}
        rng = random.Random(self.rng.random())
        try:
            while not self.stopped.is_set():
                with self.lock:
                    index = self.next_index
                    if index >= self.max_requests:
                        return
                    self.next_index += 1
                due = self.started + index / self.rate
                if due - self.started >= self.duration:
                    return
                delay = due - time.monotonic()
                if delay > 0 and self.stopped.wait(delay):
                    return
                self._one(rng, conns)
        finally:
            for conn in conns.values():
                conn.close()

    def _one(self, rng: random.Random, conns: dict[tuple[str, int], http.client.HTTPConnection]) -> None:
        with self.lock:
            endpoint = rng.choice(self.endpoints) if self.endpoints else None
            revision = self.revisions.get(endpoint[0], "") if endpoint else ""
            routed = self.routed.get(endpoint[0], (False, 0.0))[0] if endpoint else False
        if endpoint is None:
            self._record("", "", False, 0.0, 0, "no ready endpoint", no_endpoint=True)
            return
        ip = endpoint[0]
        if not routed:
            self._record(ip, revision, False, 0.0, 0, "endpoint not on a real node of this checkout: not dialled")
            return
        label: Any = None
        if self.labelled_rows is not None:
            row, label = self.labelled_rows(rng)
        else:
            row = self.rows(rng)
        body = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row}]})
        path = f"/v2/models/{self.model}/infer"
        started = time.monotonic()
        status, text = self._post(endpoint, path, body, conns)
        latency = time.monotonic() - started
        ok = status == 200 and '"outputs"' in text
        self._record(ip, revision, ok, latency, status, "" if ok else text[:1000])
        if ok and self.labelled_rows is not None:
            self._feedback(endpoint, json.loads(text).get("id"), label, conns)

    def _feedback(self, endpoint: tuple[str, int], request_id: Any, label: Any,
                  conns: dict[tuple[str, int], http.client.HTTPConnection]) -> None:
        """Label the prediction at the pod that made it (its journal is the one that remembers the id)."""
        if not request_id:
            return
        status, text = self._post(endpoint, f"/v2/models/{self.model}/feedback",
                                  json.dumps({"id": request_id, "label": label}), conns)
        if status == 200:
            joined = int(json.loads(text).get("joined", 0))
            with self.lock:
                self._results.labelled += joined

    def _post(self, endpoint: tuple[str, int], path: str, body: str,
              conns: dict[tuple[str, int], http.client.HTTPConnection]) -> tuple[int, str]:
        """POST on the worker's keep-alive connection to the endpoint: (status, body); status 0 when no
        response came back."""
        ip, port = endpoint
        status, text = 0, ""
        for attempt in (1, 2):
            conn = conns.get(endpoint)
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection(ip, port, timeout=self.timeout)
                conns[endpoint] = conn
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                status, text = resp.status, resp.read().decode(errors="replace")
                if resp.will_close:
                    conn.close()
                    conns.pop(endpoint, None)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                conn.close()
                conns.pop(endpoint, None)
                status, text = 0, f"{type(error).__name__}: {error}"
                # The server closed an idle keep-alive connection before reading this request; like
                # any HTTP client, send it again once on a fresh connection.
                if not (reused and attempt == 1):
                    break
            except OSError as error:
                conn.close()
                conns.pop(endpoint, None)
                status, text = 0, f"{type(error).__name__}: {error}"
                break
        return status, text

    def _record(self, ip: str, revision: str, ok: bool, latency: float, status: int, text: str,
                no_endpoint: bool = False) -> None:
        with self.lock:
            r = self._results
            r.sent += 1
            r.no_endpoint += int(no_endpoint)
            for tally in (r.by_ip.setdefault(ip, Tally()), r.by_revision.setdefault(revision, Tally())):
                if ok:
                    tally.ok += 1
                    tally.latencies_s.append(latency)
                else:
                    tally.failed += 1
            if ok:
                r.ok += 1
            else:
                r.failed += 1
                if len(r.failures) < self.max_failures_logged:
                    r.failures.append(Failure(time.monotonic() - self.started, ip, revision, status, text))

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for test failure messages."""
        r = self.results()
        return {"sent": r.sent, "ok": r.ok, "failed": r.failed, "no_endpoint": r.no_endpoint,
                "by_revision": {k: {"ok": v.ok, "failed": v.failed, "p50": v.quantile(0.5), "p99": v.quantile(0.99)}
                                for k, v in r.by_revision.items()},
                "endpoints": self.endpoints, "refresh_error": self.refresh_error,
                "first_failures": [f.__dict__ for f in r.failures[:5]]}
