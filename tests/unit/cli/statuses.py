"""Realistic ModelDeployment objects as the API server returns them (camelCase wire form), for the
tests of `kubectl modelops` views and requests: a Healthy one, a canary at step 2 with analysis,
and an aborted one with a Degraded condition."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
SHA = "3f" * 32
V1, V2, V3 = "5c9d2e71a0", "b7c1e0f2d4", "e01a9c33f8"


def _model(version: str) -> dict[str, Any]:
    return {"name": "iris", "version": version, "uri": f"pvc://models/iris/{version}/model.skops", "format": "skops"}


def _spec(version: str) -> dict[str, Any]:
    return {
        "model": _model(version),
        "serving": {"replicas": 4},
        "rollout": {
            "steps": [{"setWeight": 25}, {"pause": {"duration": "2m"}}, {"setWeight": 50}, {"pause": {}}],
            "analysis": {"interval": "30s", "failureLimit": 1, "metrics": [
                {"name": "errors", "builtin": "errorRate", "max": 0.02},
                {"name": "p99", "builtin": "latencyP99", "max": 0.25, "vsStable": {"maxIncrease": 0.2}},
            ]},
        },
    }


def _condition(type_: str, status: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": at,
            "observedGeneration": 2}


def _history(revision: str, version: str, outcome: str, reason: str, at: str) -> dict[str, Any]:
    return {"revision": revision, "modelVersion": version, "outcome": outcome, "reason": reason, "at": at,
            **({"uri": _model(version)["uri"], "format": "skops"} if outcome in ("Deployed", "Promoted") else {})}


def _object(version: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml-prod", "generation": 2, "resourceVersion": "4711"},
        "spec": _spec(version),
        "status": status,
    }


def healthy() -> dict[str, Any]:
    """v1 serves on all four pods; nothing is moving."""
    return _object("1", {
        "observedGeneration": 2,
        "phase": "Healthy",
        "message": f"iris v1 ({V1}) serving on 4/4 pods",
        "stable": {"revision": V1, "modelVersion": "1", "replicas": 4, "readyReplicas": 4, "model": _model("1")},
        "conditions": [
            _condition("Ready", "True", "Healthy", f"iris v1 ({V1}) serving on 4/4 pods", "2025-03-04T09:15:00Z"),
            _condition("Reconciling", "False", "Reconciled", "", "2025-03-04T09:15:00Z"),
            _condition("Stalled", "False", "AsExpected", "", "2025-03-04T09:15:00Z"),
        ],
        "history": [_history(V1, "1", "Deployed", "", "2025-03-04T09:15:00Z")],
        "handledCommands": {},
    })


def canary_at_step_2() -> dict[str, Any]:
    """v2 carries 25% and sits in the 2m pause (step 2 of 4), 50s in; analysis has run twice."""
    status = healthy()["status"]
    message = f"canary v2 ({V2}) at 25% (observed 25%), step 2/4 pause 2m"
    status.update({
        "phase": "Progressing",
        "message": message,
        "canary": {"revision": V2, "modelVersion": "2", "weight": 25, "observedWeight": 25, "stepIndex": 1,
                   "stepStartedAt": "2025-03-04T09:59:10Z", "replicas": 1, "readyReplicas": 1, "model": _model("2")},
        "analysis": {
            "phase": "Running", "successes": 2, "failures": 0, "inconclusives": 1,
            "lastRunAt": "2025-03-04T09:59:40Z", "startedAt": "2025-03-04T09:58:10Z",
            "metrics": [
                {"name": "errors", "value": 0.0041, "stableValue": 0.0038, "limit": "max 0.02",
                 "verdict": "Successful", "samples": 412, "message": "errors = 0.0041 within limits",
                 "measuredAt": "2025-03-04T09:59:40Z"},
                {"name": "p99", "value": 0.1873, "stableValue": 0.1702, "limit": "max 0.25, stable +20% (0.20424)",
                 "verdict": "Successful", "samples": 412, "message": "p99 = 0.1873 within limits",
                 "measuredAt": "2025-03-04T09:59:40Z"},
            ],
        },
    })
    status["conditions"] = [
        _condition("Ready", "True", "CanaryProgressing", message, "2025-03-04T09:15:00Z"),
        _condition("Reconciling", "True", "CanaryProgressing", message, "2025-03-04T09:58:00Z"),
        _condition("Progressing", "True", "CanaryProgressing", message, "2025-03-04T09:58:00Z"),
    ]
    return _object("2", status)


def aborted() -> dict[str, Any]:
    """v3 failed p99 against stable at step 3 and was aborted: weight 0, Degraded names the metric."""
    obj = canary_at_step_2()
    status = copy.deepcopy(obj["status"])
    reason = "p99 = 0.412 above max 0.25 (stable 0.17)"
    message = f"canary v3 ({V3}) aborted: {reason}; stable v1 takes all traffic (retry, or change spec)"
    status.update({
        "phase": "Aborted",
        "message": message,
        "canary": {"revision": V3, "modelVersion": "3", "weight": 0, "observedWeight": 0, "stepIndex": 2,
                   "stepStartedAt": "2025-03-04T09:57:00Z", "replicas": 0, "readyReplicas": 0, "aborted": True,
                   "abortReason": reason, "model": _model("3")},
        "analysis": {
            "phase": "Failed", "successes": 3, "failures": 2, "inconclusives": 0,
            "lastRunAt": "2025-03-04T09:58:30Z",
            "metrics": [
                {"name": "errors", "value": 0.003, "stableValue": 0.0035, "limit": "max 0.02",
                 "verdict": "Successful", "samples": 380, "measuredAt": "2025-03-04T09:58:30Z"},
                {"name": "p99", "value": 0.412, "stableValue": 0.17, "limit": "max 0.25, stable +20% (0.204)",
                 "verdict": "Failed", "samples": 380, "message": reason, "measuredAt": "2025-03-04T09:58:30Z"},
            ],
        },
        "history": [
            _history(V1, "1", "Deployed", "", "2025-03-01T08:00:00Z"),
            _history(V2, "2", "Promoted", "all steps passed", "2025-03-02T14:30:00Z"),
            _history(V2, "2", "Rolledback", f"undo to {V1}", "2025-03-03T11:00:00Z"),
            _history(V3, "3", "Aborted", reason, "2025-03-04T09:58:30Z"),
        ],
    })
    status["conditions"] = [
        _condition("Ready", "True", "Healthy", f"iris v1 ({V1}) serving on 4/4 pods", "2025-03-04T09:15:00Z"),
        _condition("Stalled", "True", "AnalysisFailed", message, "2025-03-04T09:58:30Z"),
        _condition("Degraded", "True", "AnalysisFailed", message, "2025-03-04T09:58:30Z"),
    ]
    obj["spec"] = _spec("3")
    obj["status"] = status
    return obj
