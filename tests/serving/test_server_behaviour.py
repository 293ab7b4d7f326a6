"""The real server's behaviour under concurrency: metrics across workers, drift, micro-batching,
failing and slow models, refusing unsafe models, and graceful shutdown under load."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from modelops_testing import TRUSTED_TYPES as TEST_TYPES
from sklearn.datasets import load_iris

from .conftest import Server

IRIS = load_iris().data
LABELS = 'model="iris",revision="{rev}",version="1"'


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the exposition text (labels must all match)."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def post_v1(conn: http.client.HTTPConnection, rows: list[list[float]]) -> tuple[int, Any]:
    body = json.dumps({"instances": rows})
    conn.request("POST", "/v1/models/iris:predict", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def run_clients(
    server: Server, n_clients: int, per_client: int, rows_for: Callable[[int, int], list[list[float]]]
) -> list[tuple[int, Any]]:
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        try:
            for i in range(per_client):
                r = post_v1(conn, rows_for(c, i))
                with lock:
                    results.append(r)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_metrics_are_exact_across_workers(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(), "--workers", "2", "--revision", "r1")
    # Many connections so that both workers take some (the kernel hashes them over the sockets).
    results = run_clients(server, 16, 25, lambda c, i: [IRIS[(c * 25 + i) % 150].tolist()])
    bad = requests.post(server.url + "/v1/models/iris:predict", json={"instances": [[1, 2]]})
    assert bad.status_code == 400
    assert all(status == 200 for status, _ in results)
    predicted = [body["predictions"][0] for _, body in results]
    text = server.metrics()
    labels = {"model": "iris", "version": "1", "revision": "r1"}
    assert sample(text, "modelops_requests_total", code="200", **labels) == 400
    assert sample(text, "modelops_requests_total", code="400", **labels) == 1
    assert sample(text, "modelops_request_duration_seconds_count", **labels) == 401
    assert sample(text, "modelops_request_duration_seconds_bucket", le="+Inf", **labels) == 401
    assert sample(text, "modelops_request_duration_seconds_bucket", le="0.00025", **labels) is not None
    assert sample(text, "modelops_batch_size_sum", **labels) == 400
    for cls in (0, 1, 2):
        assert sample(text, "modelops_predictions_total", **{"class": str(cls)}, **labels) == predicted.count(cls)
    assert sample(text, "modelops_inflight_requests", **labels) == 0
    assert server.stop() == 0


def test_drift_psi_is_exported_and_tracks_the_input(models, start_server) -> None:  # type: ignore[no-untyped-def]
    # PSI is exported only once all 300 rows are in the window, so the values below are final.
    args = ("--workers", "2", "--drift-interval", "0.2", "--drift-min-rows", "300", "--revision", "d")
    same = start_server(models(), *args)
    shifted = start_server(models(), *args)
    # Same distribution as training vs every feature moved far to the right.
    run_clients(same, 4, 75, lambda c, i: [IRIS[(c * 75 + i) % 150].tolist()])
    run_clients(shifted, 4, 75, lambda c, i: [(IRIS[(c * 75 + i) % 150] + 3.0).tolist()])
    feature_names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]

    def psi_values(server: Server) -> dict[str, float]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = server.metrics()
            got = {f: sample(text, "modelops_feature_drift_psi", feature=f, revision="d") for f in feature_names}
            pred = sample(text, "modelops_prediction_drift_psi", revision="d")
            if all(v is not None for v in got.values()) and pred is not None:
                return {**{k: float(v) for k, v in got.items() if v is not None}, "prediction": pred}
            time.sleep(0.1)
        raise AssertionError("PSI gauges never appeared:\n" + server.metrics())

    calm, moved = psi_values(same), psi_values(shifted)
    assert all(v < 0.1 for v in calm.values()), calm
    assert all(moved[f] > 0.25 for f in feature_names), moved
    assert moved["prediction"] > 0.25  # shifted flowers all look like one class


def test_concurrent_requests_are_merged_into_one_batch(models, start_server) -> None:  # type: ignore[no-untyped-def]
    # One worker that waits (up to a long 5 s) until every open connection has a request pending.
    server = start_server(models(), "--workers", "1", "--max-latency-ms", "5000", "--max-batch-size", "64")
    conns = [http.client.HTTPConnection(server.host, server.port, timeout=30) for _ in range(8)]
    for conn in conns:  # open and accepted before any inference request
        conn.request("GET", "/v2/health/live")
        conn.getresponse().read()
    for i, conn in enumerate(conns):
        body = json.dumps({"instances": [IRIS[i * 18].tolist()]})
        conn.request("POST", "/v1/models/iris:predict", body, {"Content-Type": "application/json"})
    answers = [json.loads(c.getresponse().read())["predictions"][0] for c in conns]
    for conn in conns:
        conn.close()
    from modelops.loading.loader import load_model_dir

    expected = load_model_dir(models()).model.predict(IRIS[[i * 18 for i in range(8)]])
    assert answers == [int(v) for v in expected]
    text = server.metrics()
    assert sample(text, "modelops_batch_size_count") == 1
    assert sample(text, "modelops_batch_size_sum") == 8


def test_failing_rows_fail_alone_even_when_batched(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(fail_above=6.0), "--workers", "1")
    results = run_clients(server, 8, 20, lambda c, i: [IRIS[(c * 20 + i) % 150].tolist()])
    rows = [IRIS[(c * 20 + i) % 150] for c in range(8) for i in range(20)]
    n_bad = sum(1 for r in rows if r[0] > 6.0)
    statuses = [s for s, _ in results]
    assert statuses.count(500) == n_bad and statuses.count(200) == len(rows) - n_bad
    errors = [body["error"] for s, body in results if s == 500]
    assert all("injected failure" in e for e in errors)
    assert sample(server.metrics(), "modelops_requests_total", code="500") == n_bad


def test_slow_model_is_served_from_a_thread_and_batched(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(slow_ms=30), "--workers", "1")
    assert "threaded predict" in "".join(server.output)
    results = run_clients(server, 8, 5, lambda c, i: [IRIS[c * 10 + i].tolist()])
    assert [s for s, _ in results] == [200] * 40
    text = server.metrics()
    # While one batch sleeps in predict, the others queue up and go together.
    assert sample(text, "modelops_batch_size_sum") == 40
    count = sample(text, "modelops_batch_size_count")
    assert count is not None and count < 40


def test_refuses_tampered_joblib(models, start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = models()
    server = start_server(src, "--sha256", "f" * 64, wait=False)
    assert server.proc.wait(timeout=120) == 2
    out = "".join(server.output)
    assert f"expected {'f' * 64}, actual" in out


def test_skops_test_models_load_only_when_trusted_by_name(models, start_server) -> None:  # type: ignore[no-untyped-def]
    src = models(format="skops", fail_above=6.0)
    refused = start_server(src, "--workers", "1", wait=False)
    assert refused.proc.wait(timeout=120) == 2
    assert "not trusted: modelops_testing.wrappers.FailAboveEstimator" in "".join(refused.output)
    trust = [a for t in TEST_TYPES for a in ("--trust-type", t)]
    server = start_server(src, "--workers", "1", *trust)
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.0, 1.5, 0.2]}]}
    assert requests.post(server.url + "/v2/models/iris/infer", json=body, timeout=10).status_code == 200


def test_refuses_incompatible_sklearn_unless_allowed(models, start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    d = tmp_path / "old"
    shutil.copytree(models(), d)
    meta = json.loads((d / "metadata.json").read_text())
    meta["versions"]["scikit-learn"] = "1.0.2"
    (d / "metadata.json").write_text(json.dumps(meta))
    refused = start_server(d, wait=False)
    assert refused.proc.wait(timeout=120) == 2
    assert "trained with scikit-learn 1.0.2" in "".join(refused.output)
    allowed = start_server(d, "--allow-version-mismatch", "--workers", "1")
    assert requests.get(allowed.url + "/v2/models/iris/ready").status_code == 200


def test_graceful_shutdown_under_load_loses_nothing(models, start_server) -> None:  # type: ignore[no-untyped-def]
    """Two replicas; clients keep sending on keep-alive connections to the first, and SIGTERM
    reaches it mid-load. Every request sent on an open connection must be answered; when a NEW
    connection is refused, a client retries it on the other replica (as it would once the pod
    left the Service's endpoints). Zero failed requests, exit code 0."""
    victim = start_server(models(slow_ms=2), "--workers", "2")
    other = start_server(models(slow_ms=2), "--workers", "1")
    failures: list[str] = []
    answered = {"victim_after_signal": 0, "other": 0}
    signalled = threading.Event()
    stop = threading.Event()
    lock = threading.Lock()

    def client(c: int) -> None:
        target = victim
        conn: http.client.HTTPConnection | None = None
        i = 0
        while not stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(target.host, target.port, timeout=60)
                try:
                    conn.connect()
                except ConnectionRefusedError:
                    if target is other:
                        with lock:
                            failures.append(f"client {c}: the other replica refused")
                        return
                    target, conn = other, None  # retry a refused new connection elsewhere
                    continue
            try:
                status, body = post_v1(conn, [IRIS[(c + i) % 150].tolist()])
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                with lock:
                    failures.append(f"client {c} request {i} to {target.port}: {exc!r}")
                return
            with lock:
                if status != 200:
                    failures.append(f"client {c} request {i}: HTTP {status} {body}")
                if target is other:
                    answered["other"] += 1
                elif signalled.is_set():
                    answered["victim_after_signal"] += 1
            i += 1
            if conn.sock is None:  # the server said Connection: close; reconnect
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    for t in threads:
        t.start()
    # Wait until load is flowing (bounded), then stop the first replica.
    deadline = time.monotonic() + 60
    while (
        sample(victim.metrics(), "modelops_requests_total", code="200") in (None, 0.0) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(0.5)
    signalled.set()
    victim.proc.send_signal(signal.SIGTERM)
    code = victim.proc.wait(timeout=60)
    # Let the survivors run on the other replica for a moment, then stop the clients.
    deadline = time.monotonic() + 30
    while answered["other"] < 200 and time.monotonic() < deadline and not failures:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert code == 0
    assert failures == []
    assert answered["victim_after_signal"] > 0  # in-flight and queued work was finished, not dropped
    assert answered["other"] >= 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((victim.host, victim.port), timeout=5)
    assert other.stop() == 0


def test_metrics_survive_a_worker_crash(models, start_server) -> None:  # type: ignore[no-untyped-def]
    import os

    server = start_server(models(), "--workers", "1")
    run_clients(server, 1, 10, lambda c, i: [IRIS[i].tolist()])
    import subprocess

    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(server.url + "/v2/health/ready", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    run_clients(server, 1, 5, lambda c, i: [IRIS[i].tolist()])
    # Counts of the dead worker are kept; the restarted one adds to them.
    assert sample(server.metrics(), "modelops_requests_total", code="200") == 15
    assert server.stop() == 0


def test_workers_die_with_a_killed_supervisor(models, start_server) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess

    server = start_server(models(), "--workers", "2")
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True,
                                               text=True).stdout.split()]
    assert len(workers) == 2
    os.kill(server.proc.pid, signal.SIGKILL)  # no SIGTERM handler runs: nothing tells the workers
    server.proc.wait(timeout=10)

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ")[-1].split()[0] != "Z"  # a zombie waits only for its reaper
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/v2/health/ready", timeout=5)


def test_supervisor_gives_up_on_a_crash_looping_worker(models, start_server) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess

    server = start_server(models(), "--workers", "1")
    killed: set[int] = set()
    deadline = time.monotonic() + 60
    while server.proc.poll() is None and time.monotonic() < deadline:
        out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in {int(p) for p in out} - killed:
            killed.add(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # every new worker dies at once
        time.sleep(0.02)
    assert server.proc.wait(timeout=60) == 1
    assert 5 <= len(killed) <= 6
    assert "workers keep dying right after start" in "".join(server.output)
