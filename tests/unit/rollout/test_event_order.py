"""Events come out of the machine in the order of the transitions they announce, within one tick
and across ticks (the controller posts `Decision.events` in tuple order, after the status write)."""

from __future__ import annotations

import re

from .world import World, make_spec, revision

V2 = revision("2")


def step_numbers(world: World) -> list[int]:
    found = (re.match(r"step (\d+)/", e.message) for e in world.events if e.reason == "StepCompleted")
    return [int(m.group(1)) for m in found if m]


def test_steps_completed_in_one_tick_are_announced_in_step_order() -> None:
    # With 3 stable pods one canary pod is the closest to 10%, 20% and 25% alike: once it is ready,
    # three steps are done in the same tick.
    world = World(make_spec("1", steps=[{"setWeight": 10}, {"setWeight": 20}, {"setWeight": 25}, {"pause": {}}],
                            analysis={"disabled": True}))
    world.tick()
    world.tick()
    world.auto_ready = False
    world.roll_out("2")
    world.tick()
    world.make_ready(V2)
    decision = world.tick()
    assert [e.reason for e in decision.events] == ["StepCompleted"] * 3
    assert step_numbers(world) == [1, 2, 3]


def test_a_whole_rollout_announces_its_transitions_in_order() -> None:
    world = World(make_spec("1", steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}, {"setWeight": 50},
                                        {"pause": {"duration": "10s"}}], analysis={"disabled": True}))
    world.tick()
    world.tick()
    world.roll_out("2")
    for _ in range(20):
        world.tick()
        world.wait(5)
    assert world.reasons() == ["Deploying", "Deployed", "CanaryStarted", "StepCompleted", "StepCompleted",
                               "StepCompleted", "StepCompleted", "Promoting", "Promoted"]
    assert step_numbers(world) == [1, 2, 3, 4]
