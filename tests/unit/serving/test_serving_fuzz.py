"""Fuzzing (hypothesis, bounded): the OIP v2 / v1 decoders, the gRPC decoder and the HTTP
request parser must never crash, never answer 5xx to bad input, and never stall a connection.

The HTTP fuzzing drives a real worker data plane (real model, real batcher, real event loop)
through HttpConnection and the REST route table; only the socket is replaced by a transport that
records what is written, so thousands of inputs run in seconds. tests/serving/test_server_fuzz.py
does the same over real sockets against the real server. MODELOPS_FUZZ_EXAMPLES scales the number of examples.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelops.loading.loader import load_model_dir
from modelops.serving.dataplane import DataPlane, WorkerConfig
from modelops.serving.grpc_codec import decode_infer
from modelops.serving.http import HttpFront
from modelops.serving.metrics import RequestMetrics
from modelops.serving.predictor import Predictor
from modelops.serving.protocol import ModelSpec, RequestError, decode_v1, decode_v2
from modelops.serving.rest import RestApi

EXAMPLES = int(os.environ.get("MODELOPS_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SPEC = ModelSpec(
    name="iris",
    version="1",
    feature_names=["a", "b", "c", "d"],
    max_rows=100,
    allow_nan=False,
    predict_datatype="INT64",
    has_proba=True,
    classes=[0, 1, 2],
)

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=8)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30,
)
datatypes = st.sampled_from(["FP64", "FP32", "FP16", "INT64", "INT8", "UINT8", "UINT64", "BOOL", "BYTES", "X"])
shapes = st.lists(st.integers(-2, 6), min_size=0, max_size=3)
tensor = st.fixed_dictionaries(
    {"name": st.sampled_from(["input-0", "a", "b", "c", "d", "z"]), "datatype": datatypes, "shape": shapes},
    optional={
        "data": st.one_of(json_value, st.lists(st.floats(allow_nan=True), max_size=24)),
        "parameters": st.one_of(json_value, st.fixed_dictionaries({"binary_data_size": st.integers(-4, 200)})),
    },
)
v2_object = st.fixed_dictionaries(
    {"inputs": st.one_of(json_value, st.lists(tensor, max_size=5))},
    optional={
        "id": json_value,
        "outputs": st.one_of(json_value, st.lists(st.fixed_dictionaries({"name": json_value}), max_size=3)),
        "parameters": json_value,
    },
)


def _refused_politely(call: Any) -> None:
    try:
        call()
    except RequestError as exc:
        assert 400 <= exc.status < 500
        assert exc.message


@FUZZ
@given(obj=v2_object, tail=st.binary(max_size=64), header=st.one_of(st.none(), st.integers(-5, 400)))
def test_v2_decoder_never_crashes(obj: dict[str, Any], tail: bytes, header: int | None) -> None:
    head = json.dumps(obj).encode()
    body = head + tail if header is not None else head
    length = None if header is None else min(header, len(head)) if header >= 0 else header

    def decode() -> None:
        req = decode_v2(body, length, SPEC)
        assert req.rows.shape[1] == 4 and 0 < req.rows.shape[0] <= SPEC.max_rows
        assert np.isfinite(req.rows).all()

    _refused_politely(decode)


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), json_value.map(lambda v: json.dumps(v).encode())))
def test_decoders_refuse_arbitrary_bytes(body: bytes) -> None:
    _refused_politely(lambda: decode_v2(body, None, SPEC))
    _refused_politely(lambda: decode_v1(body, SPEC))


grpc_contents = st.fixed_dictionaries(
    {
        field: st.lists(st.integers(-(2**31), 2**31 - 1) if "int" in field else st.floats(), max_size=12)
        for field in ("fp64_contents", "fp32_contents", "int64_contents", "int_contents", "uint_contents")
    }
).map(lambda d: SimpleNamespace(uint64_contents=[], bool_contents=[], bytes_contents=[], **d))
grpc_tensor = st.builds(
    SimpleNamespace,
    name=st.sampled_from(["input-0", "a", "b", "c", "d"]),
    datatype=datatypes,
    shape=st.lists(st.integers(-2, 6), max_size=3),
    contents=grpc_contents,
)


@FUZZ
@given(
    inputs=st.lists(grpc_tensor, max_size=5),
    raw=st.lists(st.binary(max_size=80), max_size=5),
    outputs=st.lists(st.sampled_from(["predict", "predict_proba", "x"]), max_size=3),
)
def test_grpc_decoder_never_crashes(inputs: list[Any], raw: list[bytes], outputs: list[str]) -> None:
    request = SimpleNamespace(
        inputs=inputs, raw_input_contents=raw, id="", outputs=[SimpleNamespace(name=n) for n in outputs]
    )
    _refused_politely(lambda: decode_infer(request, SPEC))


# -- the HTTP parser ---------------------------------------------------------------------------
class RecordingTransport:
    """Stands in for the socket: keeps what the connection writes and whether it closed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpFront]:
    from modelops.training.trainer import TrainOptions, train

    out: Path = tmp_path_factory.mktemp("fuzz-iris")
    train(TrainOptions(dataset="iris", output=out))
    loaded = load_model_dir(out)
    predictor = Predictor(loaded.model, loaded.metadata)
    spec = ModelSpec(
        name="iris",
        version="1",
        feature_names=loaded.metadata.feature_names,
        max_rows=100,
        allow_nan=False,
        predict_datatype="INT64",
        has_proba=predictor.has_proba,
        classes=list(loaded.metadata.classes),
    )
    config = WorkerConfig(
        index=0,
        max_batch_size=64,
        max_latency_s=0.0,
        max_body_bytes=4096,
        request_timeout_s=10.0,
        keepalive_timeout_s=10.0,
        drain_timeout_s=1.0,
        inline_predict=True,
        revision="fuzz",
        max_pipelined_bytes=4096,
    )
    loop = asyncio.new_event_loop()
    metrics = RequestMetrics("iris", "1", "fuzz", "classification", list(loaded.metadata.classes))
    plane = DataPlane(loop, predictor, spec, config, metrics, None, {"name": "iris"})
    yield HttpFront(plane, RestApi(plane).dispatch)
    loop.close()


GOOD = [
    b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/models/iris HTTP/1.1\r\n\r\n",
    b'POST /v2/models/iris/infer HTTP/1.1\r\nContent-Length: 75\r\n\r\n'
    b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]}',
    b'POST /v1/models/iris:predict HTTP/1.1\r\nContent-Length: 27\r\n\r\n{"instances":[[1,2,3,4.5]]}',
    b"POST /v2/models/iris/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"inp\r\n0\r\n\r\n",
    b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
]
pieces = st.one_of(
    st.sampled_from(GOOD),
    st.binary(max_size=40),
    st.sampled_from([b"\r\n", b"\r\n\r\n", b"Content-Length: 99999999\r\n", b"Expect: 100-continue\r\n", b":", b"\0"]),
    st.sampled_from(GOOD).flatmap(lambda g: st.integers(0, len(g)).map(lambda k: g[:k])),
)


@FUZZ
@given(parts=st.lists(pieces, min_size=1, max_size=8), cuts=st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_http_parser_never_crashes_stalls_or_answers_5xx(front: HttpFront, parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(parts)
    conn = front.connection()
    transport = RecordingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    try:
        offset, k = 0, 0
        while offset < len(stream) and not transport.closed:
            size = cuts[k % len(cuts)]
            k += 1
            if transport.reading:
                conn.data_received(stream[offset : offset + size])
                offset += size
            front.plane.loop.run_until_complete(asyncio.sleep(0))  # let the batcher run
        for _ in range(3):
            front.plane.loop.run_until_complete(asyncio.sleep(0))
        statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", bytes(transport.data))]
        assert all(code < 500 for code in statuses), bytes(transport.data)[:500]
        # No stall: nothing is left half-answered; the connection is idle, reading, or closed.
        assert transport.closed or (not conn.busy and not conn.queue), (conn.busy, len(conn.queue))
        assert transport.closed or transport.reading or conn.queue
    finally:
        conn.connection_lost(None)
