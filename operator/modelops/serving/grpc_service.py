"""OIP v2 ``inference.GRPCInferenceService`` over the data plane, whatever the gRPC stack.

Used by the gRPC server (modelops.serving.grpc_server) and by the other stacks measured beside it
(benchmarks/serving/grpc_stacks.py): the stack receives a call and hands the message here; this
module checks the model, decodes (modelops.serving.grpc_codec), submits to the data plane, and
builds the answer. Refusals are :class:`CallFailed` with a gRPC status *name*, which each stack
maps to its own status type, and are counted in the request metrics as the HTTP status they map
to. It imports no gRPC library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from modelops.serving.batching import Pending
from modelops.serving.dataplane import DataPlane, server_version
from modelops.serving.grpc_codec import decode_infer, encode_outputs
from modelops.serving.grpc_v2 import grpc_predict_v2_pb2 as pb
from modelops.serving.protocol import RequestError

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
# The HTTP status each gRPC status is counted as in modelops_requests_total{code}.
HTTP_STATUS = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class CallFailed(Exception):
    """A call ends with gRPC status ``code`` (a name such as "NOT_FOUND") and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InferenceService:
    """The service's six calls as plain methods; ModelInfer is split around the wait for the model."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.spec = plane.spec
        meta = plane.metadata
        self.metadata = pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]],
        )
        self.server_metadata = pb.ServerMetadataResponse(name="modelops", version=server_version(), extensions=[])
        self.live = pb.ServerLiveResponse(live=True)

    def ready(self) -> bool:
        return self.plane.not_ready_reason() is None

    def server_ready(self, request: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.ready())

    def model_ready(self, request: Any) -> Any:
        self._check_model(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.ready())

    def model_metadata(self, request: Any) -> Any:
        self._check_model(request.name, request.version)
        return self.metadata

    def _check_model(self, name: str, version: str) -> None:
        error = self.plane.model_error(name, version)
        if error is not None:
            raise CallFailed("NOT_FOUND", error)

    # -- ModelInfer ----------------------------------------------------------------------------
    def start_infer(self, request: Any, started: float, answer: Callable[[Pending], None]) -> tuple[Pending, bool]:
        """Submit the call's rows; ``answer`` is told on the loop. Returns the request and whether
        it used raw contents (the answer does too)."""
        try:
            self._check_model(request.model_name, request.model_version)
            try:
                req, raw = decode_infer(request, self.spec)
            except RequestError as exc:
                raise CallFailed("INVALID_ARGUMENT", exc.message) from None
            except Exception as exc:  # a decoder bug must still not become UNKNOWN or a crash
                log.exception("unexpected error decoding a gRPC request")
                raise CallFailed("INVALID_ARGUMENT", f"could not decode request: {type(exc).__name__}") from None
        except CallFailed as exc:
            self.plane.count(HTTP_STATUS[exc.code], "grpc", started)
            raise
        return self.plane.submit(req, "grpc", started, answer, holds_client=True), raw

    def finish_infer(self, item: Pending, raw: bool, request_id: str) -> Any:
        """The answer to a call whose outcome the data plane has told (or CallFailed)."""
        try:
            if item.timed_out:
                raise CallFailed("DEADLINE_EXCEEDED", item.error or "timed out")
            if item.results is None:
                raise CallFailed("INTERNAL", item.error or "prediction failed")
            response = pb.ModelInferResponse(model_name=self.spec.name, model_version=self.spec.version, id=request_id)
            try:
                encode_outputs(item.request, item.results, raw, response, pb.ModelInferResponse.InferOutputTensor)
            except Exception as exc:
                log.exception("failed to encode a gRPC response")
                raise CallFailed("INTERNAL", f"failed to encode the response: {exc}") from None
        except CallFailed as exc:
            self.plane.answered(item, HTTP_STATUS[exc.code])
            raise
        self.plane.answered(item, 200)
        return response

    def abandon(self, item: Pending) -> None:
        """The client went away (or the call was cancelled) before the outcome."""
        self.plane.cancel(item)

