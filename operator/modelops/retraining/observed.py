"""What the controller observed for the retraining loop this tick: the input of `next_retraining`.

The controller fills a `RetrainObserved` from the stable track's drift gauges, the quality metrics
of the feedback endpoint, a PromQL value, the Job named in `status.retraining.job` and the command
annotations (`parse_retrain_commands`). Whether a canary is in progress or an undo pin holds is read
from the status passed alongside. A field left None means "not measured this tick" and changes
nothing; a measurement with too few samples is a measurement, and breaks a breach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelops.api.commands import ANNOTATION_PREFIX, Command, parse_command_annotations
from modelops.retraining.result import JobResult, ResultError, parse_result

COMMAND_RETRAIN = "retrain"  # value "" asks for a run now; "reset" lifts RetrainBlocked / DriftPersists
COMMAND_APPROVE = "approve"  # approves the recorded candidate (promotion: Manual)
RETRAIN_RESET = "reset"
RETRAIN_COMMANDS = (COMMAND_RETRAIN, COMMAND_APPROVE)
ANNOTATION_RETRAIN = ANNOTATION_PREFIX + COMMAND_RETRAIN
ANNOTATION_APPROVE = ANNOTATION_PREFIX + COMMAND_APPROVE
PREDICTION_SERIES = "prediction"  # the series name of the prediction PSI among the feature names


@dataclass(frozen=True)
class DriftReading:
    """One PSI gauge: a feature's (or `prediction`'s) PSI over the window, and the rows it saw."""

    series: str
    psi: float
    samples: int
    bins: int = 10  # baseline bins of the series (the trainer's --bins; predictions: the classes)


@dataclass(frozen=True)
class DriftObservation:
    """The drift gauges of one track. Only the stable track's count (canary traffic is not the world)."""

    revision: str
    window_seconds: float
    readings: tuple[DriftReading, ...]


@dataclass(frozen=True)
class PodDrift:
    """One serving pod's drift gauges as scraped: modelops_drift_window_rows,
    modelops_feature_drift_psi{feature} and modelops_prediction_drift_psi."""

    rows: int
    features: Mapping[str, float]
    prediction: float | None = None


def stable_drift(revision: str, window_seconds: float, pods: Sequence[PodDrift], feature_bins: int = 10,
                 prediction_bins: int = 10) -> DriftObservation | None:
    """The drift observation of the stable track from its pods' gauges: the pod with the most rows.

    PSIs of separate windows cannot be pooled into the PSI of their union, and the largest window is
    the least noisy, so one pod speaks for the track (traffic is spread evenly by the Service). Bins are
    not exported: the trainer's default 10 per feature, and for predictions the class count (pass it).
    """
    usable = [p for p in pods if p.rows > 0 and p.features]
    if not usable:
        return None
    pod = max(usable, key=lambda p: p.rows)
    readings = [DriftReading(name, value, pod.rows, feature_bins) for name, value in sorted(pod.features.items())]
    if pod.prediction is not None:
        readings.append(DriftReading(PREDICTION_SERIES, pod.prediction, pod.rows, prediction_bins))
    return DriftObservation(revision=revision, window_seconds=window_seconds, readings=tuple(readings))


@dataclass(frozen=True)
class QualityReading:
    """Rolling accuracy or MAE from the feedback labels of one revision."""

    revision: str
    metric: Literal["accuracy", "mae"]
    value: float | None
    samples: int
    window_seconds: float | None = None


@dataclass(frozen=True)
class PromQLReading:
    value: float | None  # None: the query returned nothing (never a breach)


JobPhase = Literal["Absent", "Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class JobObservation:
    """The Job named in status.retraining.job as found (by name and owner UID).

    Succeeded: `result` parsed from the pod's termination message (None with `reason` saying why
    when it did not parse). Failed: `reason` from the Job's Failed condition (DeadlineExceeded,
    BackoffLimitExceeded) and the pod's termination message.
    """

    name: str
    phase: JobPhase
    result: JobResult | None = None
    reason: str = ""


@dataclass(frozen=True)
class RetrainObserved:
    generation: int
    spec_revision: str | None = None  # the revision spec.model/serving hash to (recorded in a candidate)
    drift: DriftObservation | None = None
    quality: QualityReading | None = None
    promql: PromQLReading | None = None
    job: JobObservation | None = None
    commands: tuple[Command, ...] = ()
    current_dataset_sha256: str | None = None  # when the controller knows it better than status does


def parse_retrain_commands(annotations: Mapping[str, str]) -> tuple[Command, ...]:
    """`modelops.dev/retrain` and `modelops.dev/approve`, in the format of every command
    (`modelops.api.commands`): JSON `{"value": ..., "nonce": ...}`, or a plain string taken as the nonce."""
    return parse_command_annotations(annotations, RETRAIN_COMMANDS)


RETRAIN_CONTAINER = "retrain"  # the container name modelops.resources.jobs gives the Job's pod
MAX_REASON = 1024


def observe_job(name: str, job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]) -> JobObservation:
    """A JobObservation from the Job object (None: not found) and its pods, as the API returns them.

    Succeeded: the result parsed from the succeeded pod's termination message. Failed: the Job's Failed
    condition (DeadlineExceeded, BackoffLimitExceeded) and the last failed pod's message, which with
    FallbackToLogsOnError is the tail of its log when it wrote no result.
    """
    if job is None:
        return JobObservation(name, "Absent")
    conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []
                  if c.get("status") == "True"}
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        message = _terminated_message(pods, succeeded=True)
        if message is None:
            return JobObservation(name, "Succeeded", reason="the pod left no termination message")
        try:
            return JobObservation(name, "Succeeded", result=parse_result(message))
        except ResultError as error:
            return JobObservation(name, "Succeeded", reason=str(error)[:MAX_REASON])
    if "Failed" in conditions or "FailureTarget" in conditions:
        condition = conditions.get("Failed") or conditions["FailureTarget"]
        reason = f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip().rstrip(":")
        last = _terminated_message(pods, succeeded=False)
        if last:
            reason += f"; last pod said: {last.strip()[-600:]}"
        return JobObservation(name, "Failed", reason=reason[:MAX_REASON])
    return JobObservation(name, "Running")


def _terminated_message(pods: Sequence[Mapping[str, Any]], succeeded: bool) -> str | None:
    """The termination message of the newest pod that ended the given way."""
    wanted = "Succeeded" if succeeded else "Failed"
    chosen = [p for p in pods if (p.get("status") or {}).get("phase") == wanted]
    chosen.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    for pod in reversed(chosen):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != RETRAIN_CONTAINER:
                continue
            terminated = (status.get("state") or {}).get("terminated") or {}
            message = terminated.get("message")
            if isinstance(message, str) and message:
                return message
    return None
