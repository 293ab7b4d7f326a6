"""Status written by a newer operator (fields this version does not know, at any depth) still parses,
and the fields this version knows survive the round trip; spec stays strict."""

from __future__ import annotations

from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from pydantic import ValidationError

SHA = "b" * 64
MODEL = {"name": "iris", "version": "2", "uri": "file:///m/iris-2.joblib", "sha256": SHA, "format": "joblib"}


def known_status() -> dict[str, Any]:
    """A status using every nested status model, as this version writes it."""
    return {
        "observedGeneration": 4,
        "phase": "Progressing",
        "message": "canary at 50%",
        "conditions": [{"type": "Ready", "status": "False", "reason": "CanaryProgressing", "message": "m",
                        "lastTransitionTime": "2025-01-01T12:00:00Z", "observedGeneration": 4}],
        "stable": {"revision": "rev0000001", "modelVersion": "1", "replicas": 2, "readyReplicas": 2,
                   "model": {**MODEL, "version": "1"}, "deployedAt": "2025-01-01T11:00:00Z"},
        "canary": {"revision": "rev0000002", "modelVersion": "2", "weight": 50, "observedWeight": 50,
                   "stepIndex": 2, "stepStartedAt": "2025-01-01T12:00:00Z", "replicas": 2, "readyReplicas": 2,
                   "model": MODEL},
        "analysis": {"phase": "Running", "successes": 1, "lastRunAt": "2025-01-01T12:00:30Z",
                     "startedAt": "2025-01-01T12:00:00Z",
                     "metrics": [{"name": "errors", "value": 0.001, "verdict": "Successful", "samples": 100,
                                  "measuredAt": "2025-01-01T12:00:30Z"}]},
        "history": [{"revision": "rev0000001", "modelVersion": "1", "outcome": "Deployed",
                     "at": "2025-01-01T11:00:00Z", "uri": "file:///m/iris-1.joblib", "sha256": SHA}],
        "previous": {"revision": "rev0000000", "modelVersion": "0", "model": {**MODEL, "version": "0"},
                     "until": "2025-01-01T13:00:00Z"},
        "pinned": {"revision": "rev0000000", "modelVersion": "0", "model": {**MODEL, "version": "0"},
                   "replaces": "rev0000002"},
        "handledCommands": {"pause": "n1"},
    }


MAPS = {"handledCommands"}  # plain string maps, not objects with fields


def with_unknown_fields(node: Any) -> Any:
    """The same document with an unknown field added to every object in it (as a newer operator might)."""
    if isinstance(node, dict):
        grown = {key: value if key in MAPS else with_unknown_fields(value) for key, value in node.items()}
        grown["fromTheFuture"] = {"nested": [1, 2, 3]}
        return grown
    if isinstance(node, list):
        return [with_unknown_fields(item) for item in node]
    return node


def test_unknown_status_fields_at_every_level_are_ignored_and_known_ones_round_trip() -> None:
    known = known_status()
    future = with_unknown_fields(known)
    assert future["canary"]["model"]["fromTheFuture"] and future["conditions"][0]["fromTheFuture"]
    status = ModelDeploymentStatus.model_validate(future)
    wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire == ModelDeploymentStatus.model_validate(known).model_dump(by_alias=True, exclude_none=True,
                                                                          mode="json")
    # Every known field made it through (defaults aside, the written document is what was read).
    def contains(big: Any, small: Any) -> bool:
        if isinstance(small, dict):
            return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
        if isinstance(small, list):
            return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
        return bool(big == small)

    assert contains(wire, known)
    assert "fromTheFuture" not in str(wire)


def test_spec_still_refuses_unknown_fields_and_names_them() -> None:
    body = {"model": MODEL, "rollout": {"traffic": {"router": "ReplicaRatio", "wieght": 3}}}
    with pytest.raises(ValidationError, match="wieght"):
        ModelDeploymentSpec.model_validate(body)
    with pytest.raises(ValidationError, match="colour"):
        ModelDeploymentSpec.model_validate({"model": {**MODEL, "colour": "red"}})
