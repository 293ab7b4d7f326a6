"""OIP v2 over gRPC against the real server process, with the real tritonclient gRPC client:
raw and typed contents, metadata and health, errors as gRPC status codes, metrics labelled by
protocol, the shared batcher and drift, and graceful drain on SIGTERM.

Typed contents are sent with tritonclient's own generated stub (package ``inference``, the same
wire names), since tritonclient's high-level client always sends raw contents. The server's
generated stubs are never imported here (see modelops.serving.grpc_v2).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as tg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sklearn.datasets import load_iris
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from .conftest import Server, launch
from .test_server_behaviour import sample

IRIS = load_iris().data
IRIS_TARGET = load_iris().target


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from modelops.training.trainer import TrainOptions, train

    out = tmp_path_factory.mktemp("iris-grpc")
    train(TrainOptions(dataset="iris", output=out))
    server = launch(out, "--workers", "2", "--grpc-port", "0", "--max-rows", "100", "--revision", "g1")
    yield server
    server.stop()


@pytest.fixture()
def client(grpc_server: Server) -> Iterator[tg.InferenceServerClient]:
    c = tg.InferenceServerClient(grpc_server.grpc_address)
    yield c
    c.close()


@pytest.fixture()
def stub(grpc_server: Server) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(grpc_server.grpc_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def fp64_input(rows: np.ndarray, name: str = "input-0") -> tg.InferInput:
    inp = tg.InferInput(name, list(rows.shape), "FP64")
    inp.set_data_from_numpy(rows.astype(np.float64))
    return inp


def expect_error(call, code: grpc.StatusCode, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InferenceServerException) as info:
        call()
    assert info.value.status() == str(code), info.value
    assert fragment in info.value.message(), info.value.message()


def test_health_and_metadata(client: tg.InferenceServerClient, grpc_server: Server) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    server_meta = client.get_server_metadata()
    assert server_meta.name == "modelops"
    meta = client.get_model_metadata("iris")
    assert meta.name == "iris" and list(meta.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("input-0", "FP64", [-1, 4])]
    assert [t.name for t in meta.outputs] == ["predict", "predict_proba"]
    with grpc.insecure_channel(grpc_server.grpc_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_raw_contents_match_rest(client: tg.InferenceServerClient, grpc_server: Server) -> None:
    rows = IRIS[::10]
    result = client.infer(
        "iris",
        [fp64_input(rows)],
        outputs=[tg.InferRequestedOutput("predict"), tg.InferRequestedOutput("predict_proba")],
        request_id="req-42",
    )
    rest = requests.post(
        grpc_server.url + "/v2/models/iris/infer",
        json={
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(rows.shape), "data": rows.tolist()}],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
        timeout=10,
    ).json()
    by_name = {o["name"]: o["data"] for o in rest["outputs"]}
    assert result.as_numpy("predict").tolist() == by_name["predict"]
    np.testing.assert_allclose(result.as_numpy("predict_proba").reshape(-1), by_name["predict_proba"])
    assert result.get_response().id == "req-42"
    assert result.get_response().model_name == "iris" and result.get_response().model_version == "1"
    # A well-trained iris model gets most of the rows right: the answer is a real prediction.
    assert (result.as_numpy("predict") == IRIS_TARGET[::10]).mean() > 0.8


def test_raw_fp32_and_per_feature_inputs(client: tg.InferenceServerClient, grpc_server: Server) -> None:
    rows = IRIS[:5]
    inp = tg.InferInput("input-0", [5, 4], "FP32")
    inp.set_data_from_numpy(rows.astype(np.float32))
    fp32 = client.infer("iris", [inp]).as_numpy("predict")
    names = requests.get(grpc_server.url + "/v2/models/iris", timeout=10).json()["parameters"]["features"]
    columns = [fp64_input(rows[:, [k]], name) for k, name in enumerate(names)]
    per_feature = client.infer("iris", columns).as_numpy("predict")
    assert fp32.tolist() == per_feature.tolist() == [0, 0, 0, 0, 0]


def test_typed_contents(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    rows = IRIS[[0, 60, 120]]
    request = service_pb2.ModelInferRequest(model_name="iris", id="typed")
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[3, 4])
    tensor.contents.fp64_contents.extend(rows.reshape(-1).tolist())
    request.outputs.add(name="predict")
    request.outputs.add(name="predict_proba")
    reply = stub.ModelInfer(request, timeout=10)
    assert reply.id == "typed"
    assert not reply.raw_output_contents  # answered in the form it was asked
    predict, proba = reply.outputs
    assert (predict.name, predict.datatype, list(predict.shape)) == ("predict", "INT64", [3])
    assert list(predict.contents.int64_contents) == [0, 1, 2]
    assert list(proba.shape) == [3, 3] and len(proba.contents.fp64_contents) == 9
    # Integer typed contents are accepted too.
    int_request = service_pb2.ModelInferRequest(model_name="iris")
    int_tensor = int_request.inputs.add(name="input-0", datatype="INT64", shape=[1, 4])
    int_tensor.contents.int64_contents.extend([6, 3, 5, 2])
    assert list(stub.ModelInfer(int_request, timeout=10).outputs[0].contents.int64_contents) == [2]


def test_errors_are_status_codes_with_messages(
    client: tg.InferenceServerClient, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    good = fp64_input(IRIS[:1])
    expect_error(lambda: client.infer("nope", [good]), grpc.StatusCode.NOT_FOUND, "this server serves 'iris'")
    expect_error(lambda: client.infer("iris", [good], model_version="7"), grpc.StatusCode.NOT_FOUND, "'7'")
    expect_error(lambda: client.get_model_metadata("nope"), grpc.StatusCode.NOT_FOUND, "model not found")
    expect_error(lambda: client.is_model_ready("nope"), grpc.StatusCode.NOT_FOUND, "model not found")
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    expect_error(lambda: client.infer("iris", [fp64_input(np.zeros((1, 3)))]), invalid, "does not match [N, 4]")
    expect_error(lambda: client.infer("iris", [fp64_input(np.full((1, 4), np.nan))]), invalid, "NaN")
    expect_error(lambda: client.infer("iris", [fp64_input(np.zeros((101, 4)))]), invalid, "too many rows")
    expect_error(
        lambda: client.infer("iris", [good], outputs=[tg.InferRequestedOutput("logits")]), invalid, "unknown output"
    )
    text = tg.InferInput("input-0", [1, 4], "BYTES")
    text.set_data_from_numpy(np.array([["a", "b", "c", "d"]], dtype=object))
    expect_error(lambda: client.infer("iris", [text]), invalid, "not numeric")

    def status_of(request: service_pb2.ModelInferRequest) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=10)
        return info.value.code(), info.value.details()

    short = service_pb2.ModelInferRequest(model_name="iris", raw_input_contents=[b"\0" * 8])
    short.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
    assert status_of(short) == (invalid, "input 0: raw_input_contents holds 8 bytes; shape [1, 4] of FP64 needs 32")
    few = service_pb2.ModelInferRequest(model_name="iris")
    few.inputs.add(name="input-0", datatype="FP64", shape=[1, 4]).contents.fp64_contents.extend([1.0, 2.0])
    code, message = status_of(few)
    assert code == invalid and "expected 1x4=4 values in contents.fp64_contents, got 2" in message
    code, message = status_of(service_pb2.ModelInferRequest(model_name="iris"))
    assert code == invalid and "'inputs'" in message
    negative = service_pb2.ModelInferRequest(model_name="iris")
    negative.inputs.add(name="input-0", datatype="FP64", shape=[-1, 4])
    assert status_of(negative)[0] == invalid


def test_metrics_batching_and_drift_count_grpc(grpc_server: Server) -> None:
    before = grpc_server.metrics()
    labels = {"model": "iris", "version": "1", "revision": "g1"}
    ok_before = sample(before, "modelops_requests_total", protocol="grpc", code="200", **labels) or 0.0
    bad_before = sample(before, "modelops_requests_total", protocol="grpc", code="400", **labels) or 0.0
    batches_before = sample(before, "modelops_batch_size_count", **labels) or 0.0
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def run(c: int) -> None:
        client = tg.InferenceServerClient(grpc_server.grpc_address)
        try:
            for i in range(20):
                r = client.infer("iris", [fp64_input(IRIS[[(c * 20 + i) % 150]])])
                with lock:
                    results.append(r.as_numpy("predict"))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client = tg.InferenceServerClient(grpc_server.grpc_address)
    with pytest.raises(InferenceServerException):
        client.infer("iris", [fp64_input(np.zeros((1, 2)))])
    client.close()
    assert len(results) == 160
    after = grpc_server.metrics()
    assert sample(after, "modelops_requests_total", protocol="grpc", code="200", **labels) == ok_before + 160
    assert sample(after, "modelops_requests_total", protocol="grpc", code="400", **labels) == bad_before + 1
    assert (sample(after, "modelops_request_duration_seconds_count", protocol="grpc", **labels) or 0) >= 161
    # The gRPC rows went through the shared batcher (batches counted) and into the drift window.
    batches = (sample(after, "modelops_batch_size_count", **labels) or 0.0) - batches_before
    assert 0 < batches <= 160
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = sample(grpc_server.metrics(), "modelops_drift_window_rows", **labels)
        if rows is not None and rows >= 160:
            break
        time.sleep(0.2)
    assert rows is not None and rows >= 160


def test_drain_on_sigterm_finishes_grpc_calls(models, start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(models(slow_ms=1000), "--workers", "1", "--grpc-port", "0")
    client = tg.InferenceServerClient(server.grpc_address)
    outcome: dict[str, object] = {}

    def slow_call() -> None:
        try:
            outcome["predict"] = client.infer("iris", [fp64_input(IRIS[:1])]).as_numpy("predict").tolist()
        except InferenceServerException as exc:
            outcome["error"] = exc

    assert client.is_server_live()  # connected
    caller = threading.Thread(target=slow_call)
    caller.start()
    deadline = time.monotonic() + 30
    while (sample(server.metrics(), "modelops_inflight_requests") or 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the call is in the model (1 s)
    server.proc.send_signal(signal.SIGTERM)
    caller.join(timeout=30)
    assert outcome.get("predict") == [0], (outcome, "".join(server.output))
    assert server.proc.wait(timeout=60) == 0
    with pytest.raises(InferenceServerException) as info:
        client.is_server_live()
    assert info.value.status() == str(grpc.StatusCode.UNAVAILABLE)
    client.close()


def test_message_size_limit_is_the_body_limit(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> None:
    # --max-body-bytes (default 8 MiB) bounds a gRPC message as it bounds a REST body.
    huge = service_pb2.ModelInferRequest(model_name="iris", raw_input_contents=[b"\0" * (9 * 1024 * 1024)])
    huge.inputs.add(name="input-0", datatype="FP64", shape=[1, 4])
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(huge, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details()
