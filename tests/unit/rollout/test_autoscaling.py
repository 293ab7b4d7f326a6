"""HPA mode through the state machine: the autoscaler's count for the stable Deployment is the size
everything else follows (first deploy at minReplicas, canary steps, promotion), kept within bounds."""

from __future__ import annotations

import pytest
from modelops.api.spec import ModelDeploymentSpec, Serving
from pydantic import ValidationError

from .world import World, make_spec, revision

V1, V2 = revision("1"), revision("2")
STEPS = [{"setWeight": 50}, {"pause": {}}]


def autoscaled_world(min_replicas: int = 3, max_replicas: int = 10) -> World:
    body = make_spec("1", steps=STEPS, analysis={"disabled": True}).model_dump(by_alias=True, exclude_none=True)
    body["serving"]["autoscaling"] = {"minReplicas": min_replicas, "maxReplicas": max_replicas}
    return World(ModelDeploymentSpec.model_validate(body))


def hpa_scales(world: World, rev: str, replicas: int) -> None:
    """What the HorizontalPodAutoscaler does: the stable Deployment's replicas change under us."""
    world.deployments[rev] = [replicas, replicas]


def test_the_first_deploy_starts_at_min_replicas_and_then_follows_the_autoscaler() -> None:
    world = autoscaled_world(min_replicas=3)
    world.tick()
    assert world.deployments[V1] == [3, 3]
    world.tick()
    assert world.status.phase == "Healthy"
    hpa_scales(world, V1, 7)
    decision = world.tick()
    assert decision.replicas_of(V1) == 7  # what it has: nothing to take back
    assert world.status.phase == "Healthy" and "7/7 pods" in (world.status.message or "")


def test_the_canary_is_sized_from_the_autoscaled_stable_and_promotion_takes_its_latest_count() -> None:
    world = autoscaled_world()
    world.tick()
    world.tick()
    hpa_scales(world, V1, 6)
    world.roll_out("2")
    world.tick()
    world.tick()
    assert world.status.canary is not None and world.status.canary.step_index == 1
    assert world.deployments[V2] == [6, 6]  # 50% next to 6 stable pods
    assert world.status.canary.observed_weight == 50
    hpa_scales(world, V1, 8)  # load grows while the canary waits
    world.tick()
    assert world.deployments[V2] == [8, 8]
    world.command("promote")
    for _ in range(6):
        world.tick()
    assert world.status.stable is not None and world.status.stable.revision == V2
    assert world.deployments[V2] == [8, 8] and world.status.phase == "Healthy"


def test_the_count_is_kept_within_the_autoscaler_bounds() -> None:
    serving = Serving.model_validate({"replicas": 2, "autoscaling": {"minReplicas": 2, "maxReplicas": 5}})
    assert [serving.total(n) for n in (None, 0, 1, 4, 9)] == [2, 2, 2, 4, 5]
    assert Serving.model_validate({"replicas": 4}).total(9) == 4  # without autoscaling: spec.replicas
    with pytest.raises(ValidationError, match="minReplicas must not exceed maxReplicas"):
        Serving.model_validate({"autoscaling": {"minReplicas": 6, "maxReplicas": 5}})
