"""Decisions read status fields made for them (`stable.deployedAt`), never the bounded display history:
a ModelDeployment whose history overflowed behaves exactly like one with a short history, and a status
written by an older operator (no `deployedAt`) is read correctly."""

from __future__ import annotations

from modelops.api.status import HISTORY_LIMIT, ModelDeploymentStatus

from .world import World, make_spec, revision

V1 = revision("1")


def deployed_v1() -> World:
    world = World(make_spec("1", analysis={"disabled": True}))
    world.tick()
    world.tick()
    assert world.status.phase == "Healthy" and world.status.stable is not None
    return world


def abort_canaries(world: World, versions: range) -> World:
    """Roll out each version as a canary and abort it: one history entry each."""
    for number in versions:
        world.roll_out(str(number))
        world.tick()
        world.command("abort")
        world.tick()
    return world


def long_history() -> World:
    world = abort_canaries(deployed_v1(), range(2, 2 + HISTORY_LIMIT))
    assert len(world.status.history) == HISTORY_LIMIT
    assert all(entry.revision != V1 for entry in world.status.history), "v1's Deployed entry fell out"
    return world


def short_history() -> World:
    world = abort_canaries(deployed_v1(), range(2, 4))
    assert any(entry.revision == V1 for entry in world.status.history)
    return world


def events_after(world: World, start: int) -> list[str]:
    return world.reasons()[start:]


def test_deployed_at_is_set_once_when_stable_first_serves_at_full_strength() -> None:
    world = World(make_spec("1"), auto_ready=False)
    world.tick()
    assert world.status.stable is not None and world.status.stable.deployed_at is None
    world.wait(7)
    world.make_ready(V1)
    world.tick()
    deployed_at = world.status.stable.deployed_at
    assert deployed_at == "2025-01-01T12:00:07Z"
    world.wait(60)
    world.tick()
    assert world.status.stable.deployed_at == deployed_at


def test_returning_to_stable_after_history_overflowed_announces_nothing_again() -> None:
    results = []
    for world in (short_history(), long_history()):
        start = len(world.events)
        world.roll_out("1")  # spec goes back to the stable revision while the last canary sits aborted
        world.tick()
        world.tick()
        results.append((events_after(world, start), world.status.phase, world.condition("Ready")[:2]))
    short, long = results
    assert long == short
    assert "Deployed" not in long[0]
    assert long[1] == "Healthy"


def test_lost_stable_pods_after_history_overflowed_still_get_a_canary_not_a_direct_deploy() -> None:
    results = []
    for aborted in (2, HISTORY_LIMIT - 1):
        world = abort_canaries(deployed_v1(), range(2, 2 + aborted))
        world.roll_out("30")
        world.tick()  # a canary runs
        world.auto_ready = False
        world.deployments[V1] = [3, 0]  # meanwhile every stable pod is lost
        world.roll_out("1")  # spec goes back to v1: the canary is superseded (one more history entry)
        world.tick()
        assert world.status.canary is None
        if aborted == HISTORY_LIMIT - 1:
            assert all(entry.revision != V1 for entry in world.status.history), "v1's entry fell out"
        phase, degraded = world.status.phase, world.condition("Degraded")[:2]
        start = len(world.events)
        world.roll_out("40")
        world.tick()
        canary = world.status.canary
        results.append((phase, degraded, events_after(world, start),
                        world.status.stable.revision if world.status.stable else None,
                        canary.revision if canary else None))
    short, long = results
    assert long == short
    # v1 served before: its pods being gone is Degraded (not a first deploy), and v40 is a canary.
    assert long == ("Degraded", ("True", "StableUnavailable"), ["CanaryStarted"], V1, revision("40"))


def old_operator_wrote(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """The status as an operator without `deployedAt` stored it (as read back from the API)."""
    wire = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    del wire["stable"]["deployedAt"]
    return ModelDeploymentStatus.model_validate(wire)


def test_status_of_an_older_operator_gets_deployed_at_from_its_history_once() -> None:
    world = short_history()
    entry = next(e for e in reversed(world.status.history) if e.revision == V1)
    world.status = old_operator_wrote(world.status)
    assert world.status.stable is not None and world.status.stable.deployed_at is None
    start = len(world.events)
    world.roll_out("1")
    world.tick()
    assert world.status.stable.deployed_at == entry.at
    assert "Deployed" not in events_after(world, start)


def test_status_of_an_older_operator_whose_history_overflowed_counts_as_deployed() -> None:
    world = long_history()
    world.status = old_operator_wrote(world.status)
    start = len(world.events)
    world.roll_out("1")
    world.tick()
    assert world.status.stable is not None
    assert world.status.stable.deployed_at == world.status.history[0].at
    assert "Deployed" not in events_after(world, start)


def test_status_of_an_older_operator_mid_first_deploy_is_still_deploying() -> None:
    world = World(make_spec("1"), auto_ready=False)
    world.tick()
    world.status = ModelDeploymentStatus.model_validate(world.status.model_dump(by_alias=True, mode="json"))
    world.tick()
    assert world.status.phase == "Deploying" and world.status.stable.deployed_at is None
    world.make_ready(V1)
    world.tick()
    assert world.reasons().count("Deployed") == 1
