"""Decode and encode OIP v2 gRPC ``ModelInfer`` messages: the gRPC twin of modelops.serving.protocol.

Called by modelops.serving.grpc_server. Pure functions over the generated protobuf messages, read
by attribute only (no import of the generated module, so this stays importable and testable
anywhere). Inputs come as ``raw_input_contents`` (little-endian bytes, one entry per input, what
tritonclient sends) or as typed ``contents`` (``fp64_contents``, ``int64_contents``, ...); the
answer uses the same form the request used. Every malformed input raises
:class:`~modelops.serving.protocol.RequestError` naming what was wrong (the server maps it to
INVALID_ARGUMENT).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.serving.protocol import (
    V2_DTYPES,
    FloatArray,
    InferRequest,
    ModelSpec,
    RequestError,
    _datatype_of,
    _to_binary,
    check_rows,
)

# Which typed-contents field carries each datatype (OIP v2: InferTensorContents).
CONTENTS_FIELD = {
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def decode_infer(request: Any, spec: ModelSpec) -> tuple[InferRequest, bool]:
    """The rows of a ``ModelInferRequest``, and whether it used ``raw_input_contents``."""
    inputs = list(request.inputs)
    if not inputs:
        raise RequestError(400, "'inputs' must hold at least one tensor")
    raw: list[bytes] = list(request.raw_input_contents)
    if raw and len(raw) != len(inputs):
        raise RequestError(400, f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs")
    n_features = spec.n_features
    if len(inputs) == 1:
        inp = inputs[0]
        shape = _shape(inp, "input 0")
        if len(shape) == 1:
            shape = [1, shape[0]]
        if len(shape) != 2 or shape[1] != n_features:
            raise RequestError(400, f"input shape {list(inp.shape)} does not match [N, {n_features}] for this model")
        rows = _tensor(inp, raw[0] if raw else None, shape[0], n_features, "input 0")
    elif len(inputs) == n_features:
        by_name = {inp.name: (k, inp) for k, inp in enumerate(inputs)}
        missing = [n for n in spec.feature_names if n not in by_name]
        if missing:
            raise RequestError(400, f"inputs must be named by feature; missing: {', '.join(missing)}")
        columns: list[FloatArray] = []
        n_rows = -1
        for name in spec.feature_names:
            k, inp = by_name[name]
            shape = _shape(inp, f"input {name!r}")
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise RequestError(400, f"input {name!r}: shape must be [N] or [N, 1]")
            if n_rows not in (-1, shape[0]):
                raise RequestError(400, "all per-feature inputs must have the same number of rows")
            n_rows = shape[0]
            columns.append(_tensor(inp, raw[k] if raw else None, n_rows, 1, f"input {name!r}"))
        rows = np.hstack(columns)
    else:
        raise RequestError(
            400, f"expected one [N, {n_features}] input or {n_features} per-feature inputs, got {len(inputs)} inputs"
        )
    req = InferRequest(check_rows(rows, spec), request.id or None)
    allowed = ["predict", "predict_proba"] if spec.has_proba else ["predict"]
    for out in request.outputs:
        if out.name not in allowed:
            raise RequestError(400, f"unknown output {out.name!r}; this model has {', '.join(allowed)}")
        req.outputs.append((out.name, bool(raw)))
    if not req.outputs:
        req.outputs = [("predict", bool(raw))]
    return req, bool(raw)


def _shape(inp: Any, what: str) -> list[int]:
    shape = [int(d) for d in inp.shape]
    if not shape or any(d < 0 for d in shape):
        raise RequestError(400, f"{what}: 'shape' must be a non-empty list of non-negative integers")
    return shape


def _tensor(inp: Any, raw: bytes | None, n_rows: int, n_cols: int, what: str) -> FloatArray:
    datatype = inp.datatype
    if datatype not in V2_DTYPES or datatype == "BOOL":
        raise RequestError(400, f"{what}: datatype {datatype!r} is not numeric (use FP32, FP64 or an INT type)")
    if n_rows == 0 or n_cols == 0:
        raise RequestError(400, f"{what}: empty tensor")
    count = n_rows * n_cols
    if raw is not None:
        dtype = np.dtype(V2_DTYPES[datatype])
        if len(raw) != count * dtype.itemsize:
            raise RequestError(
                400,
                f"{what}: raw_input_contents holds {len(raw)} bytes; shape {[n_rows, n_cols]} of {datatype} "
                f"needs {count * dtype.itemsize}",
            )
        return np.frombuffer(raw, dtype=dtype).astype(np.float64).reshape(n_rows, n_cols)
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise RequestError(400, f"{what}: datatype {datatype} can only be sent in raw_input_contents")
    values = getattr(inp.contents, field)
    if len(values) != count:
        raise RequestError(
            400, f"{what}: expected {n_rows}x{n_cols}={count} values in contents.{field}, got {len(values)}"
        )
    try:
        return np.asarray(values, dtype=np.float64).reshape(n_rows, n_cols)
    except (OverflowError, ValueError) as exc:
        raise RequestError(400, f"{what}: contents.{field} cannot be read as numbers: {exc}") from None


def encode_outputs(
    req: InferRequest, results: dict[str, npt.NDArray[Any]], raw: bool, response: Any, output_tensor: Any
) -> None:
    """Fill ``response`` (a ModelInferResponse) with the requested outputs; ``output_tensor`` is
    the generated ``ModelInferResponse.InferOutputTensor`` class."""
    for name, _ in req.outputs:
        values = results[name]
        datatype = _datatype_of(values)
        tensor = output_tensor(name=name, datatype=datatype, shape=list(values.shape))
        if raw:
            response.raw_output_contents.append(_to_binary(values, datatype))
        else:
            flat = values.reshape(-1)
            if datatype == "FP64":
                tensor.contents.fp64_contents.extend(flat.tolist())
            elif datatype == "INT64":
                tensor.contents.int64_contents.extend(flat.tolist())
            elif datatype == "BOOL":
                tensor.contents.bool_contents.extend(flat.tolist())
            else:
                tensor.contents.bytes_contents.extend(str(v).encode() for v in flat.tolist())
        response.outputs.append(tensor)
