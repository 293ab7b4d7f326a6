"""The requests `kubectl modelops` writes are the ones the controller reads and acts on.

Each request's annotation goes through the controller's own parser (`parse_commands`) and state
machine (`next_state`), so a change of the format on either side fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import ModelDeploymentStatus
from modelops.cli.kubectl_requests import handled, new_request, refusal, undo_candidates
from modelops.rollout.commands import (
    COMMAND_ABORT,
    COMMAND_PAUSE,
    COMMAND_PROMOTE,
    COMMAND_RESUME,
    COMMAND_RETRY,
    COMMAND_UNDO,
    PROMOTE_FULL,
    PROMOTE_STEP,
    parse_commands,
)
from modelops.rollout.machine import next_state
from modelops.rollout.observed import DeploymentObservation, DesiredRevision, Observed

from .statuses import NOW, V1, V2, V3, aborted, canary_at_step_2, healthy


def status_of(obj: dict[str, Any]) -> ModelDeploymentStatus:
    return ModelDeploymentStatus.model_validate(obj["status"])


def controller_tick(obj: dict[str, Any], annotations: dict[str, str]) -> ModelDeploymentStatus:
    """One reconcile of `obj` by the real state machine, with the cluster as its status describes it."""
    spec = ModelDeploymentSpec.model_validate(obj["spec"])
    status = status_of(obj)
    tracks = [t for t in (status.stable, status.canary) if t is not None and t.revision is not None]
    observed = Observed(
        generation=obj["metadata"]["generation"],
        desired=DesiredRevision(obj["status"]["canary"]["revision"] if status.canary else V1,
                                ModelSource.model_validate(obj["spec"]["model"])),
        deployments=tuple(DeploymentObservation(t.revision or "", t.replicas, t.ready_replicas) for t in tracks),
        observed_weight=status.canary.observed_weight if status.canary else 0,
        commands=parse_commands(annotations),
    )
    return next_state(spec, status, observed, NOW).status


def annotations_of(*requests: Any) -> dict[str, str]:
    merged: dict[str, str] = {}
    for request in requests:
        merged.update(request.patch()["metadata"]["annotations"])
    return merged


@pytest.mark.parametrize(("command", "value"), [
    (COMMAND_PROMOTE, PROMOTE_STEP), (COMMAND_PROMOTE, PROMOTE_FULL), (COMMAND_ABORT, ""), (COMMAND_PAUSE, ""),
    (COMMAND_RESUME, ""), (COMMAND_RETRY, ""), (COMMAND_UNDO, ""), (COMMAND_UNDO, V2),
])
def test_the_annotation_parses_back_as_the_same_command(command: str, value: str) -> None:
    request = new_request(command, value)
    patch = request.patch()
    assert list(patch) == ["metadata"] and list(patch["metadata"]) == ["annotations"]  # never spec
    [(key, raw)] = patch["metadata"]["annotations"].items()
    assert key == f"modelops.dev/{command}"
    assert json.loads(raw) == {"value": value, "nonce": request.nonce}
    [parsed] = parse_commands(patch["metadata"]["annotations"])
    assert (parsed.name, parsed.value, parsed.nonce) == (command, value, request.nonce)


def test_every_request_gets_a_fresh_nonce_so_asking_twice_acts_twice() -> None:
    nonces = {new_request(COMMAND_PROMOTE, PROMOTE_STEP).nonce for _ in range(50)}
    assert len(nonces) == 50


def test_promote_refuses_a_value_the_controller_does_not_know() -> None:
    with pytest.raises(ValueError, match="promote takes"):
        new_request(COMMAND_PROMOTE, "all")


def test_promote_full_is_taken_by_the_controller_and_marked_handled() -> None:
    obj = canary_at_step_2()
    request = new_request(COMMAND_PROMOTE, PROMOTE_FULL)
    assert refusal(request, status_of(obj)) is None
    after = controller_tick(obj, annotations_of(request))
    assert handled(after, request)
    assert after.canary is not None and after.canary.step_index == 4  # past the last of 4 steps
    assert not handled(status_of(obj), request)


def test_pause_then_abort_reach_the_controller() -> None:
    obj = canary_at_step_2()
    pause = new_request(COMMAND_PAUSE)
    after = controller_tick(obj, annotations_of(pause))
    assert handled(after, pause) and after.canary is not None and after.canary.paused
    obj["status"] = after.wire()
    abort = new_request(COMMAND_ABORT)
    assert refusal(abort, after) is None
    after = controller_tick(obj, annotations_of(pause, abort))
    assert handled(after, abort)
    assert after.canary is not None and after.canary.aborted and after.canary.weight == 0


def test_commands_that_need_a_running_canary_are_refused_on_a_healthy_object() -> None:
    status = status_of(healthy())
    for command, value in ((COMMAND_ABORT, ""), (COMMAND_PAUSE, ""), (COMMAND_RESUME, ""),
                           (COMMAND_PROMOTE, PROMOTE_STEP)):
        assert refusal(new_request(command, value), status) == "no canary in progress"
    assert refusal(new_request(COMMAND_RETRY), status) == "no aborted canary to retry"


def test_after_an_abort_promote_points_to_retry_and_retry_is_accepted() -> None:
    status = status_of(aborted())
    assert refusal(new_request(COMMAND_PROMOTE, PROMOTE_FULL), status) == (
        f"canary {V3} was aborted; use retry to start it again")
    assert refusal(new_request(COMMAND_ABORT), status) == "no canary in progress"
    assert refusal(new_request(COMMAND_RETRY), status) is None


def test_undo_goes_back_only_to_revisions_that_served_with_a_known_model() -> None:
    status = status_of(aborted())  # history: v1 Deployed, v2 Promoted, v2 Rolledback, v3 Aborted; stable v1
    assert undo_candidates(status) == [V2]
    assert refusal(new_request(COMMAND_UNDO, V2), status) is None
    assert refusal(new_request(COMMAND_UNDO, ""), status) is None
    assert refusal(new_request(COMMAND_UNDO, "deadbeef00"), status) == (
        f"no revision deadbeef00 in history (can go back to: {V2})")
    assert refusal(new_request(COMMAND_UNDO, V3), status) == (
        f"revision {V3} never served at full strength (last outcome: Aborted) (can go back to: {V2})")
    assert refusal(new_request(COMMAND_UNDO, V1), status) == (
        f"{V1} is already stable (to stop a canary, use abort) (can go back to: {V2})")


def test_undo_with_nothing_earlier_is_refused() -> None:
    status = status_of(healthy())
    assert refusal(new_request(COMMAND_UNDO), status) == "no earlier revision with a known model in history"
    fresh = ModelDeploymentStatus()
    assert refusal(new_request(COMMAND_UNDO, V1), fresh) == "nothing deployed yet"


def test_the_controller_pins_the_revision_undo_asked_for() -> None:
    obj = aborted()
    request = new_request(COMMAND_UNDO, V2)
    after = controller_tick(obj, annotations_of(request))
    assert handled(after, request)
    assert after.pinned is not None and after.pinned.revision == V2


def test_a_baking_previous_revision_is_the_first_undo_candidate() -> None:
    obj = healthy()
    obj["status"]["previous"] = {"revision": V2, "modelVersion": "2", "until": "2025-03-04T10:10:00Z"}
    assert undo_candidates(status_of(obj)) == [V2]
    assert refusal(new_request(COMMAND_UNDO), status_of(obj)) is None
