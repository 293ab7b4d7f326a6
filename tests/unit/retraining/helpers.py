"""Builders of specs, statuses and observations for the retraining machine's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelops.api.commands import Command
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import CanaryStatus, ModelDeploymentStatus, PinnedRevision, TrackStatus
from modelops.retraining.actions import RetrainDecision
from modelops.retraining.machine import next_retraining
from modelops.retraining.observed import DriftObservation, DriftReading, JobObservation, RetrainObserved
from modelops.retraining.result import GateOutcome, JobResult

T0 = datetime(2025, 3, 3, 12, 0, 0, tzinfo=UTC)
MDEP = "iris"
STABLE_REV = "rev0000001"
SHA_STABLE = "a" * 64
SHA_NEW = "b" * 64
DATA_OLD = "c" * 64
DATA_NEW = "d" * 64


def git_model(version: str = "1") -> ModelSource:
    return ModelSource(name="iris", version=version, uri=f"file:///models/iris-{version}.joblib", sha256=SHA_STABLE)


def make_spec(version: str = "1", **retraining: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {
        "triggers": {"drift": {"minSamples": 100, "forDuration": "5m"}},
        "job": {"dataset": {"uri": "pvc://data/iris.csv", "targetColumn": "label"},
                "holdout": {"uri": "pvc://data/holdout.csv"}, "output": {"uri": "pvc://models/iris"}},
        "guardrails": {"cooldown": "1h", "maxRunsPerDay": 3, "maxConsecutiveRejections": 2},
        "gate": {"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.0},
    }
    body.update(retraining)
    return ModelDeploymentSpec.model_validate({"model": git_model(version).wire(), "retraining": body})


def stable_status(model: ModelSource | None = None, **changes: Any) -> ModelDeploymentStatus:
    stable = TrackStatus(revision=STABLE_REV, model_version="1", replicas=2, ready_replicas=2,
                         model=model or git_model())
    return ModelDeploymentStatus(stable=stable, **changes)


def canary_status(status: ModelDeploymentStatus, model: ModelSource, aborted: bool = False) -> ModelDeploymentStatus:
    canary = CanaryStatus(revision="rev0000002", model_version=model.version, weight=10, model=model,
                          aborted=aborted, abort_reason="errors above 0.02" if aborted else None)
    return status.model_copy(update={"canary": canary})


def pinned(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    return status.model_copy(update={"pinned": PinnedRevision(revision="rev0000000", replaces=STABLE_REV)})


def drift(psi: float, samples: int = 500, revision: str = STABLE_REV, features: int = 4) -> DriftObservation:
    readings = tuple(DriftReading(series=f"f{i}", psi=psi if i == 0 else 0.01, samples=samples)
                     for i in range(features))
    return DriftObservation(revision=revision, window_seconds=600, readings=readings)


def trained(sha: str = SHA_NEW, dataset: str = DATA_NEW, passed: bool = True, candidate: float = 0.95,
            current: float = 0.9) -> JobResult:
    return JobResult(outcome="Trained" if passed else "Rejected", dataset_sha256=dataset,
                     uri=f"pvc://models/iris/{MDEP}-retrain-1/model.joblib", sha256=sha, format="joblib",
                     version="1-r1", rows=1000, holdout_sha256="e" * 64,
                     gate=GateOutcome("accuracy", candidate, current, passed))


def observe(status: ModelDeploymentStatus, *, drift_obs: DriftObservation | None = None,
            job: JobObservation | None = None, commands: tuple[Command, ...] = (),
            generation: int = 1) -> RetrainObserved:
    """An observation; when status names a Job and none is given, the Job is seen Running."""
    rs = status.retraining
    if job is None and rs is not None and rs.job is not None:
        job = JobObservation(name=rs.job.name, phase="Running")
    return RetrainObserved(generation=generation, spec_revision=STABLE_REV, drift=drift_obs, job=job,
                           commands=commands)


def tick(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime, **observed: Any) -> RetrainDecision:
    return next_retraining(spec, status, observe(status, **observed), now, MDEP)


def reasons(decision: RetrainDecision) -> list[str]:
    return [e.reason for e in decision.events]
