"""The revision depends only on what the user wrote: defaults (written out, left implicit, or added by
a newer operator) never change it; replicas never change it; anything the user writes about the
model or the serving template does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec, Serving
from modelops.resources.naming import desired_revision, legacy_revision_of, revision_of
from pydantic import Field

WRITTEN: dict[str, Any] = {
    "model": {"name": "iris", "version": "1", "uri": "file:///m/model.joblib", "sha256": "a" * 64},
    "serving": {"replicas": 3, "workers": 2},
}


def spec(**changes: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {"model": dict(WRITTEN["model"]), "serving": dict(WRITTEN["serving"])}
    for part, fields in changes.items():
        body[part].update(fields)
    return ModelDeploymentSpec.model_validate(body)


def test_defaults_written_out_give_the_same_revision_as_defaults_left_out() -> None:
    # What the API server stores after CRD defaulting: every default filled in explicitly.
    filled = spec(model={"format": "joblib"},
                  serving={"image": Serving().image, "port": 8080, "batching": {"maxBatchSize": 32,
                                                                                "maxLatencyMs": 2.0}})
    assert revision_of("ns", "iris", filled) == revision_of("ns", "iris", spec())


def test_a_field_added_with_a_default_by_a_newer_operator_changes_no_revision() -> None:
    class NewerServing(Serving):
        """The serving model of an operator version that added an optional, defaulted field."""

        warmup_requests: int = Field(default=0, ge=0)

    old = spec()
    upgraded = old.model_copy(update={"serving": NewerServing.model_validate(old.serving.model_dump())})
    stored_with_default = old.model_copy(
        update={"serving": NewerServing.model_validate({**old.serving.model_dump(), "warmup_requests": 0})})
    assert revision_of("ns", "iris", upgraded) == revision_of("ns", "iris", old)
    assert revision_of("ns", "iris", stored_with_default) == revision_of("ns", "iris", old)
    # ... while a user who sets the new field to something else asks for different pods.
    used = old.model_copy(
        update={"serving": NewerServing.model_validate({**old.serving.model_dump(), "warmup_requests": 5})})
    assert revision_of("ns", "iris", used) != revision_of("ns", "iris", old)


def test_replicas_do_not_change_the_revision() -> None:
    assert revision_of("ns", "iris", spec(serving={"replicas": 7})) == revision_of("ns", "iris", spec())
    assert revision_of("ns", "iris", spec(serving={"replicas": 2})) == revision_of("ns", "iris", spec())
    # Nor does switching to HPA mode or changing its bounds: the pods run the same thing.
    autoscaled = spec(serving={"autoscaling": {"minReplicas": 2, "maxReplicas": 9}})
    assert revision_of("ns", "iris", autoscaled) == revision_of("ns", "iris", spec())


@pytest.mark.parametrize("change", [
    {"model": {"version": "2"}},
    {"model": {"uri": "file:///m/other.joblib"}},
    {"model": {"sha256": "b" * 64}},
    {"model": {"format": "skops"}},
    {"serving": {"image": "registry.example/modelops:0.2.0"}},
    {"serving": {"workers": 1}},  # back to the default from a written 2: still what the user wrote
    {"serving": {"port": 9090}},
    {"serving": {"batching": {"maxBatchSize": 64}}},
    {"serving": {"resources": {"requests": {"cpu": "250m"}}}},
], ids=lambda c: next(f"{part}.{field}" for part, fields in c.items() for field in fields))
def test_every_user_written_change_changes_the_revision(change: dict[str, Any]) -> None:
    assert revision_of("ns", "iris", spec(**change)) != revision_of("ns", "iris", spec())


def test_the_owner_is_part_of_the_revision() -> None:
    assert revision_of("other", "iris", spec()) != revision_of("ns", "iris", spec())
    assert revision_of("ns", "wine", spec()) != revision_of("ns", "iris", spec())


# ------------------------------------------------------------------ revisions made by operator 0.1.0


# An object as the API server stored it under operator 0.1.0's CRD: its defaults filled in.
STORED_0_1_0: dict[str, Any] = {
    "model": {"name": "iris", "version": "1", "uri": "file:///m/model.joblib", "sha256": "a" * 64,
              "format": "joblib"},
    "serving": {"replicas": 3, "image": "modelops-operator:0.1.0", "workers": 2, "port": 8080,
                "batching": {"maxBatchSize": 32, "maxLatencyMs": 2.0}},
}


def revision_of_0_1_0(namespace: str, name: str, stored: dict[str, Any]) -> str:
    """The hash operator 0.1.0 computed (its `revision_of`), over the wire form it saw."""
    runs = {"owner": f"{namespace}/{name}", "model": stored["model"], "serving": {**stored["serving"], "replicas": 0}}
    return hashlib.sha256(json.dumps(runs, sort_keys=True).encode()).hexdigest()[:10]


def test_the_legacy_hash_is_the_one_operator_0_1_0_made() -> None:
    extra = {"resources": {"requests": {"cpu": "1"}}, "tolerations": [{"key": "gpu", "operator": "Exists"}]}
    for stored in (STORED_0_1_0, {**STORED_0_1_0, "serving": {**STORED_0_1_0["serving"], **extra}}):
        parsed = ModelDeploymentSpec.model_validate(stored)
        assert legacy_revision_of("ns", "iris", parsed) == revision_of_0_1_0("ns", "iris", stored)


def test_upgrading_from_0_1_0_keeps_running_tracks_and_starts_no_canary() -> None:
    current = ModelDeploymentSpec.model_validate(STORED_0_1_0)
    made_by_0_1_0 = revision_of_0_1_0("ns", "iris", STORED_0_1_0)
    assert made_by_0_1_0 != revision_of("ns", "iris", current)  # the hash itself changed in this release
    assert desired_revision("ns", "iris", current, (made_by_0_1_0, None)) == made_by_0_1_0
    assert desired_revision("ns", "iris", current, ("someother01", made_by_0_1_0)) == made_by_0_1_0  # a canary
    # Fields this release adds with defaults (a newer Serving) do not hide the old revision either.

    class NewerServing(Serving):
        grpc_port: int = Field(default=9000)

    upgraded = current.model_copy(
        update={"serving": NewerServing.model_validate({**current.serving.model_dump(), "grpc_port": 9000})})
    assert desired_revision("ns", "iris", upgraded, (made_by_0_1_0,)) == made_by_0_1_0
    # Once the user changes what the pods run, the new hash is wanted.
    newer = current.model_copy(update={"model": current.model.model_copy(update={"version": "2"})})
    assert desired_revision("ns", "iris", newer, (made_by_0_1_0,)) == revision_of("ns", "iris", newer)
    assert desired_revision("ns", "iris", current, ()) == revision_of("ns", "iris", current)
