"""ReplicaRatio through the state machine: a step carries the share closest to its weight that pods
allow (stable keeps full strength), and status explains when maxSurge keeps it lower."""

from __future__ import annotations

from typing import Any

from modelops.rollout.analysis_runs import analysis_due

from .world import World, good, make_spec, revision

V2 = revision("2")


def world_with(replicas: int, **rollout: Any) -> World:
    spec = make_spec("1", **rollout)
    world = World(spec.model_copy(update={"serving": spec.serving.model_copy(update={"replicas": replicas})}))
    world.tick()
    world.tick()
    assert world.status.phase == "Healthy"
    return world


def drive_to_step(world: World, index: int) -> None:
    for _ in range(40):
        canary = world.status.canary
        if canary is not None and canary.step_index >= index:
            break
        world.tick(measurement=good() if analysis_due(world.spec, world.status, world.now) else None)
        world.wait(5)
    assert world.status.canary is not None and world.status.canary.step_index == index


def test_set_weight_50_with_two_stable_replicas_carries_50_percent():
    world = world_with(2, steps=[{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50},
                                 {"pause": {}}], analysis={"disabled": True})
    world.roll_out("2")
    drive_to_step(world, 1)
    assert world.status.canary.observed_weight == 33  # 1 canary pod next to 2: the closest to 10%
    drive_to_step(world, 3)
    assert world.deployments[V2] == [2, 2]
    assert world.status.canary.weight == 50 and world.status.canary.observed_weight == 50
    assert "maxSurge" not in (world.status.message or "")


def test_max_surge_binding_is_explained_in_status():
    world = world_with(2, steps=[{"setWeight": 90}, {"pause": {}}], analysis={"disabled": True},
                       traffic={"router": "ReplicaRatio", "maxSurge": 10})
    world.roll_out("2")
    drive_to_step(world, 1)
    assert world.deployments[V2] == [10, 10]
    assert world.status.canary.observed_weight == 83
    note = "weight 90% needs 18 canary pods; capped at maxSurge 10: carrying 83%"
    assert note in (world.status.message or "")
    assert note in world.condition("Progressing")[2]


def test_default_max_surge_is_the_replica_count():
    world = world_with(3, steps=[{"setWeight": 75}, {"pause": {}}], analysis={"disabled": True})
    world.roll_out("2")
    drive_to_step(world, 1)
    assert world.deployments[V2] == [3, 3]
    assert "weight 75% needs 9 canary pods; capped at maxSurge 3: carrying 50%" in (world.status.message or "")
