"""Decode and encode inference requests: Open Inference Protocol v2 (REST, JSON and the binary
tensor extension that tritonclient uses) and KServe v1.

Pure functions over bytes, called by the model server's REST adapter (modelops.serving.rest).
Every malformed input raises :class:`RequestError` with a status code and a message that says
what was wrong; nothing here lets a bad request become a 500.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

FloatArray = npt.NDArray[np.float64]

NUMERIC_TYPES = {int, float}

# OIP v2 datatypes and their little-endian numpy equivalents (binary tensor extension).
V2_DTYPES: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


class RequestError(Exception):
    """A request we refuse; ``status`` is the HTTP status, the message goes to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ModelSpec:
    """What decoding needs to know about the served model."""

    name: str
    version: str
    feature_names: list[str]
    max_rows: int
    allow_nan: bool
    predict_datatype: str
    has_proba: bool
    classes: list[Any] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


@dataclass
class InferRequest:
    rows: FloatArray
    request_id: Any = None
    # (output name, binary?) in the order the client asked for them.
    outputs: list[tuple[str, bool]] = field(default_factory=list)


def loads(body: bytes) -> Any:
    """Parse JSON. NaN / Infinity literals (not JSON, but Python's json.dumps writes them) are
    parsed so the NaN check can answer precisely; other garbage is a 400."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in body or b"Infinity" in body:
            try:
                return json.loads(body)
            except (ValueError, RecursionError):
                pass
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None


def _numeric_rows(data: Any, n_rows: int, n_features: int, what: str) -> FloatArray:
    """Turn a flat or nested JSON list into a (n_rows, n_features) float64 matrix, refusing
    strings, booleans, nulls and ragged rows."""
    if not isinstance(data, list):
        raise RequestError(400, f"{what}: 'data' must be a list of numbers")
    flat: list[Any] = data
    if data and type(data[0]) is list:
        if not all(type(row) is list for row in data):
            raise RequestError(400, f"{what}: 'data' mixes lists and scalars")
        flat = list(itertools.chain.from_iterable(data))
        if flat and any(type(v) is list for v in flat):
            raise RequestError(400, f"{what}: 'data' is nested too deeply; send rows of numbers")
    if len(flat) != n_rows * n_features:
        raise RequestError(
            400, f"{what}: expected {n_rows}x{n_features}={n_rows * n_features} numbers, got {len(flat)}"
        )
    types = set(map(type, flat))
    if not types <= NUMERIC_TYPES:
        bad = sorted(t.__name__ for t in types - NUMERIC_TYPES)
        names = {"str": "strings", "bool": "booleans", "NoneType": "nulls", "dict": "objects"}
        raise RequestError(400, f"{what}: only numbers are accepted, found {', '.join(names.get(b, b) for b in bad)}")
    try:
        return np.array(flat, dtype=np.float64).reshape(n_rows, n_features)
    except OverflowError:
        raise RequestError(400, f"{what}: a number is too large for float64") from None


def _all_finite(rows: FloatArray) -> bool:
    # For a few values a Python loop over a list beats numpy's per-call overhead (~4 us).
    if rows.size <= 64:
        return all(map(math.isfinite, rows.ravel().tolist()))
    return bool(np.isfinite(rows).all())


def check_rows(rows: FloatArray, spec: ModelSpec) -> FloatArray:
    if rows.shape[0] == 0:
        raise RequestError(400, "the request holds no rows")
    if rows.shape[0] > spec.max_rows:
        raise RequestError(400, f"too many rows: {rows.shape[0]} > limit {spec.max_rows}")
    if not spec.allow_nan and not _all_finite(rows):
        raise RequestError(400, "input contains NaN or infinite values, which this model does not accept")
    return rows


def _shape(inp: dict[str, Any], what: str) -> list[int]:
    shape = inp.get("shape")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(400, f"{what}: 'shape' must be a non-empty list of non-negative integers")
    return shape


def decode_v2(body: bytes, header_length: int | None, spec: ModelSpec) -> InferRequest:
    """An OIP v2 infer request. ``header_length`` is the Inference-Header-Content-Length header
    (binary tensor extension) or None for pure JSON."""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise RequestError(400, "Inference-Header-Content-Length is larger than the body")
        obj = loads(body[:header_length])
        binary = memoryview(body)[header_length:]
    else:
        obj = loads(body)
        binary = memoryview(b"")
    if type(obj) is not dict:
        raise RequestError(400, "request body must be a JSON object with 'inputs'")
    inputs = obj.get("inputs")
    if type(inputs) is not list or not inputs:
        raise RequestError(400, "'inputs' must be a non-empty list of tensors")
    if not all(type(i) is dict for i in inputs):
        raise RequestError(400, "each entry of 'inputs' must be an object")
    offset = 0
    tensors: list[FloatArray] = []
    n_features = spec.n_features
    if len(inputs) == 1:
        # One [N, F] tensor (or [F] for a single row), like MLServer's and KServe's sklearn runtimes.
        inp = inputs[0]
        shape = _shape(inp, "input 0")
        if len(shape) == 1:
            shape = [1, shape[0]]
        if len(shape) != 2 or shape[1] != n_features:
            raise RequestError(400, f"input shape {inp.get('shape')} does not match [N, {n_features}] for this model")
        rows, offset = _tensor(inp, shape[0], n_features, binary, offset, "input 0")
    elif len(inputs) == n_features:
        # One [N] or [N, 1] tensor per feature, named by feature.
        by_name = {i.get("name"): i for i in inputs}
        missing = [n for n in spec.feature_names if n not in by_name]
        if missing:
            raise RequestError(400, f"inputs must be named by feature; missing: {', '.join(missing)}")
        n_rows = -1
        for name in spec.feature_names:
            inp = by_name[name]
            shape = _shape(inp, f"input {name!r}")
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise RequestError(400, f"input {name!r}: shape must be [N] or [N, 1]")
            if n_rows not in (-1, shape[0]):
                raise RequestError(400, "all per-feature inputs must have the same number of rows")
            n_rows = shape[0]
            column, offset = _tensor(inp, n_rows, 1, binary, offset, f"input {name!r}")
            tensors.append(column)
        rows = np.hstack(tensors)
    else:
        raise RequestError(
            400, f"expected one [N, {n_features}] input or {n_features} per-feature inputs, got {len(inputs)} inputs"
        )
    if offset != len(binary):
        raise RequestError(400, "binary data is longer than the inputs declare")
    req = InferRequest(check_rows(rows, spec), obj.get("id"))
    req.outputs = _requested_outputs(obj, spec)
    return req


def _tensor(
    inp: dict[str, Any], n_rows: int, n_cols: int, binary: memoryview, offset: int, what: str
) -> tuple[FloatArray, int]:
    datatype = inp.get("datatype")
    if datatype not in V2_DTYPES or datatype == "BOOL":
        raise RequestError(400, f"{what}: datatype {datatype!r} is not numeric (use FP32, FP64 or an INT type)")
    if n_rows > 0 and n_rows * n_cols == 0:
        raise RequestError(400, f"{what}: empty tensor")
    params = inp.get("parameters")
    size = params.get("binary_data_size") if type(params) is dict else None
    if size is None:
        if "data" not in inp:
            raise RequestError(400, f"{what}: no 'data' and no binary_data_size")
        return _numeric_rows(inp["data"], n_rows, n_cols, what), offset
    dtype = np.dtype(V2_DTYPES[datatype])
    if type(size) is not int or size != n_rows * n_cols * dtype.itemsize:
        raise RequestError(400, f"{what}: binary_data_size {size!r} does not match shape and datatype")
    if offset + size > len(binary):
        raise RequestError(400, f"{what}: binary data is shorter than binary_data_size")
    arr = np.frombuffer(binary[offset : offset + size], dtype=dtype).astype(np.float64).reshape(n_rows, n_cols)
    return arr, offset + size


def _requested_outputs(obj: dict[str, Any], spec: ModelSpec) -> list[tuple[str, bool]]:
    params = obj.get("parameters")
    default_binary = bool(params.get("binary_data_output", False)) if type(params) is dict else False
    outputs = obj.get("outputs")
    if outputs is None:
        return [("predict", default_binary)]
    if type(outputs) is not list:
        raise RequestError(400, "'outputs' must be a list")
    allowed = ["predict", "predict_proba"] if spec.has_proba else ["predict"]
    result: list[tuple[str, bool]] = []
    for out in outputs:
        name = out.get("name") if type(out) is dict else None
        if name not in allowed:
            raise RequestError(400, f"unknown output {name!r}; this model has {', '.join(allowed)}")
        p = out.get("parameters")
        binary = bool(p.get("binary_data", default_binary)) if type(p) is dict else default_binary
        result.append((name, binary))
    return result or [("predict", default_binary)]


def _datatype_of(values: npt.NDArray[Any]) -> str:
    kind = values.dtype.kind
    if kind == "f":
        return "FP64"
    if kind in "iu":
        return "INT64"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def encode_v2(spec: ModelSpec, req: InferRequest, results: dict[str, npt.NDArray[Any]]) -> tuple[bytes, int | None]:
    """Response body, and the JSON header length when binary outputs follow it (else None)."""
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in req.outputs:
        values = results[name]
        datatype = _datatype_of(values)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if binary:
            blob = _to_binary(values, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _to_json_list(values, datatype)
        outputs.append(entry)
    resp: dict[str, Any] = {"model_name": spec.name, "model_version": spec.version, "outputs": outputs}
    if req.request_id is not None:
        resp["id"] = req.request_id
    head = orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _to_json_list(values: npt.NDArray[Any], datatype: str) -> Any:
    flat = values.reshape(-1)
    if datatype == "BYTES":
        return [str(v) for v in flat.tolist()]
    return flat


def _to_binary(values: npt.NDArray[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in values.reshape(-1).tolist():
            raw = str(v).encode()
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=V2_DTYPES[datatype]).tobytes()


def decode_v1(body: bytes, spec: ModelSpec) -> InferRequest:
    """A KServe v1 predict request: {"instances": [[...], ...]} (or "inputs"); instances may also
    be objects keyed by feature name."""
    obj = loads(body)
    if type(obj) is not dict:
        raise RequestError(400, "request body must be a JSON object with 'instances'")
    instances = obj.get("instances", obj.get("inputs"))
    if type(instances) is not list:
        raise RequestError(400, "'instances' must be a list of rows")
    if not instances:
        raise RequestError(400, "'instances' is empty")
    n = spec.n_features
    if len(instances) > spec.max_rows:
        raise RequestError(400, f"too many rows: {len(instances)} > limit {spec.max_rows}")
    if all(type(i) is dict for i in instances):
        try:
            instances = [[inst[name] for name in spec.feature_names] for inst in instances]
        except KeyError as exc:
            raise RequestError(400, f"instance is missing feature {exc.args[0]!r}") from None
    elif not all(type(i) is list for i in instances):
        raise RequestError(400, "each instance must be a list of numbers or an object keyed by feature name")
    bad = next((k for k, row in enumerate(instances) if len(row) != n), None)
    if bad is not None:
        raise RequestError(400, f"instance {bad} has {len(instances[bad])} values; this model takes {n} features")
    rows = _numeric_rows(instances, len(instances), n, "instances")
    return InferRequest(check_rows(rows, spec))


def encode_v1(values: npt.NDArray[Any]) -> bytes:
    return orjson.dumps({"predictions": values}, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
