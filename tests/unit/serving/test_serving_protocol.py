"""Decoding and encoding of OIP v2 / KServe v1 requests: every bad input is a RequestError."""

from __future__ import annotations

import json
import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelops.serving.protocol import ModelSpec, RequestError, decode_v1, decode_v2, encode_v1, encode_v2

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


def v2(data: object, shape: tuple[object, ...] = (1, 4), datatype: str = "FP64", **extra: object) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input-0", "shape": list(shape), "datatype": datatype, "data": data}], **extra}
    ).encode()


def test_flat_and_nested_data() -> None:
    flat = decode_v2(v2([1, 2, 3, 4.5]), None, SPEC)
    nested = decode_v2(v2([[1, 2, 3, 4.5], [5, 6, 7, 8]], shape=(2, 4)), None, SPEC)
    assert flat.rows.tolist() == [[1, 2, 3, 4.5]]
    assert nested.rows.shape == (2, 4)
    assert flat.outputs == [("predict", False)]


def test_per_feature_inputs() -> None:
    body = {
        "inputs": [{"name": n, "shape": [2], "datatype": "FP32", "data": [i, i + 10]} for i, n in enumerate("dcba")]
    }
    req = decode_v2(orjson.dumps(body), None, SPEC)
    # Columns follow the model's feature order, not the request's.
    assert req.rows.tolist() == [[3, 2, 1, 0], [13, 12, 11, 10]]


def test_binary_tensor_extension() -> None:
    rows = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    header = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    )
    req = decode_v2(header + rows.tobytes(), len(header), SPEC)
    assert req.rows.tolist() == [[1, 2, 3, 4]]
    body, hlen = encode_v2(SPEC, req, {"predict": np.array([2])})
    assert hlen is not None
    head = orjson.loads(body[:hlen])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert struct.unpack("<q", body[hlen:]) == (2,)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"inputs": []}', "non-empty"),
        (v2([1, 2, 3]), "expected 1x4=4 numbers, got 3"),
        (v2([1, 2, 3, 4], shape=(1, 3)), "does not match"),
        (v2([1, "2", 3, 4]), "strings"),
        (v2([1, True, 3, 4]), "booleans"),
        (v2([1, None, 3, 4]), "nulls"),
        (v2([[1, 2], 3, 4]), "mixes"),
        (v2([[[1, 2, 3, 4]]]), "nested too deeply"),
        (v2([1, 2, 3, 4], datatype="BYTES"), "not numeric"),
        (v2([1, 2, 3, 4], shape=("1", 4)), "shape"),
        (b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,1,2,3]}]}', "NaN"),
        (b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[Infinity,1,2,3]}]}', "NaN or infinite"),
        (v2([1, 2, 3, 4], outputs=[{"name": "nope"}]), "unknown output"),
        (v2([1.0] * 4 * 101, shape=(101, 4)), "too many rows"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
    ],
)
def test_bad_v2_requests(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as info:
        decode_v2(body, None, SPEC)
    assert info.value.status == 400
    assert message in info.value.message


def test_binary_size_mismatch() -> None:
    header = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}]}
    )
    with pytest.raises(RequestError, match="shorter"):
        decode_v2(header + b"\0" * 8, len(header), SPEC)
    with pytest.raises(RequestError, match="larger than the body"):
        decode_v2(header, len(header) + 5, SPEC)


def test_nan_allowed_when_model_allows() -> None:
    spec = ModelSpec(**{**SPEC.__dict__, "allow_nan": True})
    req = decode_v2(b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[NaN,1,2,3]}]}', None, spec)
    assert np.isnan(req.rows[0, 0])


def test_v1_lists_and_objects() -> None:
    assert decode_v1(b'{"instances": [[1,2,3,4]]}', SPEC).rows.tolist() == [[1, 2, 3, 4]]
    req = decode_v1(b'{"instances": [{"a":1,"b":2,"c":3,"d":4}]}', SPEC)
    assert req.rows.tolist() == [[1, 2, 3, 4]]
    assert orjson.loads(encode_v1(np.array([1, 2]))) == {"predictions": [1, 2]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": [[1,2,3]]}', "instance 0 has 3 values"),
        (b'{"instances": [{"a":1}]}', "missing feature"),
        (b'{"instances": "x"}', "list of rows"),
        (b'{"instances": []}', "empty"),
        (b'{"instances": [1,2,3,4]}', "each instance"),
        (b'{"instances": [["1",2,3,4]]}', "strings"),
    ],
)
def test_bad_v1_requests(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as info:
        decode_v1(body, SPEC)
    assert info.value.status == 400
    assert message in info.value.message


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_any_json_either_decodes_or_is_a_400(value: object) -> None:
    for body in (
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": value}]}).encode(),
        json.dumps(value).encode(),
    ):
        for v2_protocol in (True, False):
            try:
                req = decode_v2(body, None, SPEC) if v2_protocol else decode_v1(body, SPEC)
            except RequestError as exc:
                assert exc.status == 400
            else:
                assert req.rows.shape[1] == 4
                assert np.isfinite(req.rows).all()
