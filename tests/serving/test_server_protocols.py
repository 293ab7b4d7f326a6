"""The real server over real HTTP: OIP v2 through tritonclient, KServe v1 as KServe documents it,
and every kind of bad input answered with a 4xx that says what was wrong."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelops.loading.loader import load_model_dir
from sklearn.datasets import load_iris

from .conftest import Server

IRIS = load_iris().data


def expected_predictions(model_dir: Path, X: np.ndarray) -> list[int]:
    return [int(v) for v in load_model_dir(model_dir).model.predict(X)]


def test_tritonclient_health_and_metadata(iris_server: Server) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("dtype", ["FP32", "FP64"])
def test_tritonclient_infer(iris_server: Server, binary: bool, dtype: str) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    X = IRIS[::10].astype(np.float32 if dtype == "FP32" else np.float64)
    inp = triton.InferInput("input-0", list(X.shape), dtype)
    inp.set_data_from_numpy(X, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = client.infer("iris", [inp], outputs=outputs, request_id="req-7")
    predict = result.as_numpy("predict")
    proba = result.as_numpy("predict_proba")
    assert result.get_response()["id"] == "req-7"
    assert predict.tolist() == [int(v) for v in np.argmax(proba, axis=1)]
    assert proba.shape == (X.shape[0], 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    # The labels are the model's own: compare with the original iris labels (the model is 97% right).
    assert np.mean(predict == load_iris().target[::10]) > 0.9


def test_tritonclient_versioned_infer_and_errors(iris_server: Server) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    inp = triton.InferInput("input-0", [1, 4], "FP64")
    inp.set_data_from_numpy(IRIS[:1], binary_data=False)
    assert client.infer("iris", [inp], model_version="1").as_numpy("predict").tolist() == [0]
    with pytest.raises(triton.InferenceServerException, match="model not found"):
        client.infer("iris", [inp], model_version="9")
    with pytest.raises(triton.InferenceServerException, match="model not found"):
        client.infer("other", [inp])
    bad = triton.InferInput("input-0", [1, 3], "FP64")
    bad.set_data_from_numpy(IRIS[:1, :3], binary_data=False)
    with pytest.raises(triton.InferenceServerException, match=r"does not match \[N, 4\]"):
        client.infer("iris", [bad])


def test_kserve_v1(iris_server: Server) -> None:
    base = iris_server.url
    assert requests.get(f"{base}/v1/models/iris").json() == {"name": "iris", "ready": True}
    assert requests.get(f"{base}/v1/models").json() == {"models": ["iris"]}
    rows = IRIS[[0, 60, 120]].tolist()
    resp = requests.post(f"{base}/v1/models/iris:predict", json={"instances": rows})
    assert resp.status_code == 200
    assert resp.json() == {"predictions": [0, 1, 2]}
    names = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    by_name = [dict(zip(names, r, strict=True)) for r in rows]
    assert requests.post(f"{base}/v1/models/iris:predict", json={"instances": by_name}).json()["predictions"] == [
        0,
        1,
        2,
    ]
    assert requests.post(f"{base}/v1/models/nope:predict", json={"instances": rows}).status_code == 404


V2 = "/v2/models/iris/infer"
V1 = "/v1/models/iris:predict"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (V2, b"{not json", 400, "not valid JSON"),
        (V2, b"", 400, "not valid JSON"),
        (V2, b'{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}', 400, "does not match"),
        (V2, b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3]}]}', 400, "got 3"),
        (V2, b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":["1","2","3","4"]}]}', 400, "strings"),
        (V2, b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,2,3,4]}]}', 400, "NaN"),
        (V2, b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1e999,2,3,4]}]}', 400, "infinity"),
        (
            V2,
            json.dumps(
                {"inputs": [{"name": "x", "shape": [101, 4], "datatype": "FP64", "data": [1.0] * 404}]}
            ).encode(),
            400,
            "too many rows",
        ),
        (V2, b"[" * 20000 + b"]" * 20000, 400, "not valid JSON"),
        (V1, b'{"instances": [[1,2,3,4,5]]}', 400, "takes 4 features"),
        (V1, b'{"instances": [[1,2,null,4]]}', 400, "nulls"),
        ("/v2/models/nope/infer", b"{}", 404, "model not found"),
        ("/v2/models/iris/versions/3/infer", b"{}", 404, "model not found"),
        ("/v3/whatever", b"{}", 404, "no such endpoint"),
    ],
)
def test_bad_requests_get_4xx_with_a_reason(
    iris_server: Server, path: str, body: bytes, status: int, message: str
) -> None:
    resp = requests.post(iris_server.url + path, data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"]


def test_wrong_method(iris_server: Server) -> None:
    resp = requests.delete(iris_server.url + V2)
    assert resp.status_code == 405
    assert "not allowed" in resp.json()["error"]


def raw(server: Server, data: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)


def test_body_over_limit_is_refused_before_it_is_sent(iris_server: Server) -> None:
    # Only the headers go out: the server must answer 413 without waiting for 10 MB.
    head = b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
    reply = raw(iris_server, head)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"exceeds the limit of 100000 bytes" in reply


def test_chunked_body_over_limit(iris_server: Server) -> None:
    chunk = b"x" * 60000
    head = b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
    reply = raw(iris_server, head + body)
    assert reply.startswith(b"HTTP/1.1 413")


def test_malformed_http_and_huge_headers(iris_server: Server) -> None:
    assert raw(iris_server, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    huge = b"GET /v2/health/live HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
    assert raw(iris_server, huge).startswith(b"HTTP/1.1 431")


def test_slow_client_times_out(iris_server: Server) -> None:
    # Half a request, then silence: the server (request timeout 1 s) answers 408 and closes.
    reply = raw(iris_server, b'POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"in')
    assert reply.startswith(b"HTTP/1.1 408")
    assert b"not received within 1 s" in reply


def test_pipelined_requests_answered_in_order(iris_server: Server) -> None:
    reqs = b""
    for row in (IRIS[0], IRIS[60], IRIS[120]):
        body = json.dumps({"instances": [row.tolist()]}).encode()
        reqs += b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    reqs += b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw(iris_server, reqs)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:40] for part in reply.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies[:3] == [b'{"predictions":[0]}', b'{"predictions":[1]}', b'{"predictions":[2]}']
    assert bodies[3].startswith(b'{"live":true}')


def test_server_survives_the_abuse(iris_server: Server) -> None:
    """Runs after the bad-input tests in this module: still alive, still right, no 500s counted."""
    resp = requests.post(iris_server.url + V1, json={"instances": [IRIS[0].tolist()]})
    assert resp.json() == {"predictions": [0]}
    assert iris_server.proc.poll() is None
    assert 'code="500"' not in iris_server.metrics()


def test_skops_and_regression_models(models, start_server) -> None:  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_diabetes

    model_dir = models(dataset="diabetes", format="skops")
    server = start_server(model_dir, "--workers", "1")
    X = load_diabetes().data[:5]
    client = triton.InferenceServerClient(server.address)
    inp = triton.InferInput("input-0", list(X.shape), "FP64")
    inp.set_data_from_numpy(X)
    got = client.infer("diabetes", [inp]).as_numpy("predict")
    assert got.dtype == np.float64
    assert np.allclose(got, load_model_dir(model_dir).model.predict(X))
    metrics = server.metrics()
    assert "modelops_prediction_value_count" in metrics


def test_expect_continue_and_head(iris_server: Server) -> None:
    body = json.dumps({"instances": [IRIS[0].tolist()] * 50}).encode()
    assert len(body) > 1024
    head = b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection((iris_server.host, iris_server.port), timeout=30) as sock:
        sock.sendall(head % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # asked to go on before sending the body
        sock.sendall(body)
        reply = b""
        while b'"predictions"' not in reply or not reply.endswith(b"]}"):
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    resp = requests.head(iris_server.url + "/v2/health/live")
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["Content-Length"] == "13"


def test_model_names_are_matched_exactly(iris_server: Server) -> None:
    for path in ("/v2/models/irisx", "/v2/models/irisx/ready", "/v2/models/iris/versions/2", "/v1/models/irisx"):
        resp = requests.get(iris_server.url + path)
        assert resp.status_code == 404, path
        assert "model not found" in resp.json()["error"], path
    assert requests.get(iris_server.url + "/v2/models/iris/versions/1").json()["name"] == "iris"
    resp = requests.post(iris_server.url + "/v2/models/irisx/infer", json={"inputs": []})
    assert resp.status_code == 404


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
            lambda c: (
                st.lists(c, max_size=6)
                | st.dictionaries(
                    st.sampled_from(
                        ["inputs", "instances", "data", "shape", "datatype", "name", "parameters", "outputs"]
                    ),
                    c,
                    max_size=5,
                )
            ),
            max_leaves=25,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    st.sampled_from([V1, V2]),
)
def test_fuzzed_bodies_never_get_a_500(iris_server: Server, body: bytes, path: str) -> None:
    resp = requests.post(iris_server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert resp.json()["error"]
