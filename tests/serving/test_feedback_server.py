"""The feedback endpoint and the request log of a real `modelops serve` process (two workers).

Given predictions answered by one worker and labels posted to any worker, the rolling accuracy
(or MAE) gauge is exactly what the labels say; unknown and expired ids are counted, malformed bodies
refused naming the field; the request log joined with the labels becomes a training set that
`modelops train` accepts.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from sklearn.datasets import load_diabetes, load_iris

from tests.serving.conftest import Server


def _infer(server: Server, rows: list[list[float]], request_id: str | None = None) -> dict:  # type: ignore[type-arg]
    body: dict = {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])],  # type: ignore[type-arg]
                              "datatype": "FP64", "data": rows}]}
    if request_id is not None:
        body["id"] = request_id
    resp = requests.post(f"{server.url}/v2/models/iris/infer", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _gauge(text: str, name: str) -> float | None:
    match = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def _wait_gauge(server: Server, name: str, value: float) -> str:
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        text = server.metrics()
        if _gauge(text, name) == value:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {value}:\n{text}")


def test_labels_join_predictions_across_workers_and_set_accuracy(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(), "--workers", "2")
    iris = load_iris()
    ids, truths, predicted = [], [], []
    for i in range(0, 150, 5):  # 30 requests on fresh connections: both workers answer some
        out = _infer(server, [iris.data[i].tolist()])
        assert out["id"], out  # the server gives every v2 answer an id to label it by
        ids.append(out["id"])
        truths.append(int(iris.target[i]))
        predicted.append(out["outputs"][0]["data"][0])
    # Ten labels deliberately wrong, the rest the truth.
    labels = [(t + 1) % 3 if k < 10 else t for k, t in enumerate(truths)]
    expected = sum(int(p == lab) for p, lab in zip(predicted, labels, strict=True)) / len(labels)
    half = len(ids) // 2
    first = requests.post(f"{server.url}/v2/models/iris/feedback",
                          json={"feedback": [{"id": i, "label": lab} for i, lab in zip(ids[:half], labels[:half],
                                                                                       strict=True)]}, timeout=10)
    assert first.status_code == 200, first.text
    assert first.json() == {"joined": half, "unknown": 0, "expired": 0}
    for i, lab in zip(ids[half:], labels[half:], strict=True):  # one at a time, versioned route
        resp = requests.post(f"{server.url}/v2/models/iris/versions/1/feedback", json={"id": i, "label": lab},
                             timeout=10)
        assert resp.json() == {"joined": 1, "unknown": 0, "expired": 0}
    text = _wait_gauge(server, "modelops_feedback_window_samples", float(len(ids)))
    assert _gauge(text, "modelops_feedback_accuracy") == expected

    # A repeated label, and an id never served: counted, not errors, and not in the accuracy.
    again = requests.post(f"{server.url}/v2/models/iris/feedback",
                          json={"feedback": [{"id": ids[0], "label": 0}, {"id": "never-served", "label": 1}]},
                          timeout=10)
    assert again.status_code == 200
    assert again.json() == {"joined": 0, "unknown": 2, "expired": 0}
    text = server.metrics()
    assert re.search(r'modelops_feedback_labels_total\{[^}]*outcome="unknown"[^}]*\} 2\.0', text), text
    assert re.search(rf'modelops_feedback_labels_total\{{[^}}]*outcome="joined"[^}}]*\}} {len(ids)}\.0', text)


def test_malformed_feedback_is_refused_naming_the_field(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(), "--workers", "1")
    url = f"{server.url}/v2/models/iris/feedback"
    cases = [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"label": 1}', "id is required"),
        (b'{"id": "a"}', "label is required"),
        (b'{"feedback": []}', "'feedback' must be a non-empty list"),
        (b'{"feedback": [{"id": "a", "label": 1}, {"id": "b", "label": {"x": 1}}]}', "feedback[1].label"),
        (b'{"id": "a", "label": [1, null]}', "label[1]"),
    ]
    for body, needle in cases:
        resp = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == 400, (body, resp.text)
        assert needle in resp.json()["error"], (body, resp.text)
    other = requests.post(f"{server.url}/v2/models/other/feedback", json={"id": "a", "label": 1}, timeout=10)
    assert other.status_code == 404


def test_labels_after_the_join_window_count_as_expired(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(), "--workers", "1", "--feedback-join-window", "0.2")
    out = _infer(server, [[5.1, 3.5, 1.4, 0.2]], request_id="req-1")
    assert out["id"] == "req-1"  # a client's own id is echoed and used
    time.sleep(0.5)  # outlive the join window (a precondition, not a timed assertion)
    resp = requests.post(f"{server.url}/v2/models/iris/feedback", json={"id": "req-1", "label": 0}, timeout=10)
    assert resp.json() == {"joined": 0, "unknown": 0, "expired": 1}
    text = server.metrics()
    assert _gauge(text, "modelops_feedback_accuracy") is None  # no sample is not 100 %


def test_regressor_mae_from_per_row_labels(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(dataset="diabetes"), "--workers", "2", "--name", "iris")
    X = load_diabetes().data[:8]
    out = _infer(server, X.tolist(), request_id="batch-7")
    predictions = np.asarray(out["outputs"][0]["data"])
    truth = predictions + np.arange(8) - 3.5  # errors 3.5, 2.5, ..., 3.5
    resp = requests.post(f"{server.url}/v2/models/iris/feedback", json={"id": "batch-7", "label": truth.tolist()},
                         timeout=10)
    assert resp.json() == {"joined": 8, "unknown": 0, "expired": 0}
    bad = requests.post(f"{server.url}/v2/models/iris/feedback", json={"id": "batch-7", "label": "high"}, timeout=10)
    assert bad.status_code == 400 and "must be a number" in bad.json()["error"]
    text = _wait_gauge(server, "modelops_feedback_window_samples", 8.0)
    mae = _gauge(text, "modelops_feedback_mae")
    assert mae is not None and abs(mae - float(np.mean(np.abs(np.arange(8) - 3.5)))) < 1e-9


def test_request_log_and_labels_become_a_training_set(models, start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log_dir = tmp_path / "served"
    server = start_server(models(), "--workers", "2", "--log-requests-to", f"file://{log_dir}",
                          "--log-max-seconds", "0.2")
    iris = load_iris()
    labelled = {}
    for i in range(0, 150, 3):
        out = _infer(server, [iris.data[i].tolist()])
        if i % 2 == 0:
            labelled[out["id"]] = int(iris.target[i])
    resp = requests.post(f"{server.url}/v2/models/iris/feedback",
                         json={"feedback": [{"id": k, "label": v} for k, v in labelled.items()]}, timeout=10)
    assert resp.json()["joined"] == len(labelled)
    assert server.stop() == 0  # SIGTERM writes what is still buffered
    assert list((log_dir / "requests").glob("*.parquet")) and list((log_dir / "labels").glob("*.parquet"))

    out_csv = tmp_path / "train.csv"
    cli = [sys.executable, "-m", "modelops.cli.main"]
    built = subprocess.run([*cli, "dataset", "build", "--from", f"file://{log_dir}", "--out", f"file://{out_csv}",
                            "--target", "species"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    import hashlib

    digest = hashlib.sha256(out_csv.read_bytes()).hexdigest()
    assert f"rows={len(labelled)} sha256={digest}" in built.stdout
    frame = pd.read_csv(out_csv)
    assert len(frame.columns) == 5 and frame.columns[-1] == "species"
    assert len(frame) == len(labelled)
    assert sorted(frame["species"].tolist()) == sorted(labelled.values())
    # The same log gives the same bytes (requireNewData compares this digest).
    again = subprocess.run([*cli, "dataset", "build", "--from", f"file://{log_dir}", "--out",
                            f"file://{tmp_path / 'again.csv'}", "--target", "species"],
                           capture_output=True, text=True, timeout=120)
    assert f"sha256={digest}" in again.stdout
    trained = subprocess.run([*cli, "train", "--dataset", str(out_csv), "--target", "species", "--output",
                              str(tmp_path / "model")], capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
