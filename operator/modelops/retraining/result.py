"""The small JSON a retraining Job writes to its termination message, and its parser.

Written by `modelops retrain-job` (modelops.cli.retrain_commands) to /dev/termination-log; read back
by the controller from the Job pod's `status.containerStatuses[].state.terminated.message` and parsed
here, so the operator needs no access to the model storage. Kubernetes keeps at most 4096 bytes of a
termination message, so it carries digests and numbers, never data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

RESULT_VERSION = 1
MAX_MESSAGE_BYTES = 4096
JobOutcome = Literal["Trained", "Rejected", "NoNewData"]
OUTCOMES: tuple[JobOutcome, ...] = ("Trained", "Rejected", "NoNewData")


class ResultError(ValueError):
    """The termination message is not a retraining result."""


@dataclass(frozen=True)
class GateOutcome:
    metric: str
    candidate: float | None
    current: float | None
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class JobResult:
    """What one run produced. `Rejected`: trained, but the gate said no (the artifact is still written)."""

    outcome: JobOutcome
    dataset_sha256: str
    uri: str | None = None
    sha256: str | None = None
    format: str | None = None
    version: str | None = None
    rows: int | None = None
    holdout_sha256: str | None = None
    gate: GateOutcome | None = None

    def to_json(self) -> str:
        """Compact JSON (camelCase), at most MAX_MESSAGE_BYTES."""
        body: dict[str, Any] = {"v": RESULT_VERSION}
        for key, value in asdict(self).items():
            if value is not None:
                body[_camel(key)] = value
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise ResultError(f"result is {len(text.encode())} bytes; a termination message holds {MAX_MESSAGE_BYTES}")
        return text


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_result(message: str) -> JobResult:
    """The result in a termination message; ResultError naming what is wrong otherwise."""
    try:
        body = json.loads(message)
    except ValueError as error:
        raise ResultError(f"termination message is not JSON: {message[:200]!r}") from error
    if not isinstance(body, dict):
        raise ResultError("termination message is not a JSON object")
    if body.get("v") != RESULT_VERSION:
        raise ResultError(f"termination message has result version {body.get('v')!r}, expected {RESULT_VERSION}")
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise ResultError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    dataset = body.get("datasetSha256")
    if not isinstance(dataset, str) or not dataset:
        raise ResultError("datasetSha256 is missing")
    if outcome != "NoNewData" and not (isinstance(body.get("sha256"), str) and isinstance(body.get("uri"), str)):
        raise ResultError(f"a {outcome} result needs uri and sha256")
    gate = body.get("gate")
    parsed_gate = None
    if isinstance(gate, dict):
        parsed_gate = GateOutcome(
            metric=str(gate.get("metric", "")),
            candidate=_number(gate.get("candidate")),
            current=_number(gate.get("current")),
            passed=bool(gate.get("passed")),
            message=str(gate.get("message", ""))[:1024],
        )
    rows = body.get("rows")
    return JobResult(
        outcome=outcome,
        dataset_sha256=dataset,
        uri=_text(body.get("uri")),
        sha256=_text(body.get("sha256")),
        format=_text(body.get("format")),
        version=_text(body.get("version")),
        rows=int(rows) if isinstance(rows, int) else None,
        holdout_sha256=_text(body.get("holdoutSha256")),
        gate=parsed_gate,
    )


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
