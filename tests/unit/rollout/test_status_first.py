"""Status first, then act: every action follows from status alone.

The controller writes `Decision.status` before it carries out `Decision.actions`. If it dies (or its
writes fail) in between, the next reconcile sees the new status and the cluster as it was: that tick
must issue the same ensure / delete / route actions again and no Event a second time (an Event lost
in a crash is acceptable, a doubled one is not). Each scenario below is run once undisturbed, then
once per tick with that tick's actions lost, and must end exactly where the undisturbed run ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from modelops.analysis.judging import MetricReading
from modelops.api.commands import Command
from modelops.api.events import EmitEvent
from modelops.api.status import ModelDeploymentStatus, PreviousStatus, TrackStatus
from modelops.api.timefmt import format_time
from modelops.rollout.actions import Decision, DeleteDeployment
from modelops.rollout.analysis_runs import analysis_due
from modelops.rollout.machine import next_state

from .world import World, bad, good, make_spec, model, revision

V1, V2, V3 = revision("1"), revision("2"), revision("3")


@dataclass
class CrashingWorld(World):
    """A World whose `crash_at`-th tick writes its status but loses its actions (and Events)."""

    crash_at: int | None = None
    ticks: int = 0
    events_per_tick: list[list[str]] = field(default_factory=list)
    crashed: Decision | None = None

    def tick(self, measurement: tuple[MetricReading, ...] | None = None,
             commands: tuple[Command, ...] = ()) -> Decision:
        self.ticks += 1
        if self.ticks != self.crash_at:
            decision = super().tick(measurement, commands)
            self.events_per_tick.append([e.reason for e in decision.events])
            return decision
        lost = next_state(self.spec, self.status, self.observed(measurement, commands), self.now)
        self.status = lost.status  # written; the operator dies before acting
        self.crashed = lost
        self.events_per_tick.append([])
        # The next reconcile: the same cluster, the new status, the annotations still in place.
        due = analysis_due(self.spec, self.status, self.now)
        again = next_state(self.spec, self.status, self.observed(measurement if due else None, commands),
                           self.now)
        assert again.events == (), f"tick {self.ticks}: events emitted twice: {again.events}"
        wanted = [a for a in lost.actions if not isinstance(a, EmitEvent)]
        redone = [a for a in again.actions if not isinstance(a, EmitEvent)]
        assert redone == wanted, f"tick {self.ticks}: lost actions {wanted} not re-issued: {redone}"
        assert again.status == lost.status, f"tick {self.ticks}: status moved on without the actions"
        self.apply(again)
        self.status = again.status
        self.last = again
        return again


Script = Callable[[CrashingWorld], None]


def ready_all(world: World) -> None:
    for rev in list(world.deployments):
        world.make_ready(rev)


def drive(world: World, ticks: int, reading: tuple[MetricReading, ...] = good(), seconds: float = 5) -> None:
    """Tick (measuring when due), let the pods asked for become ready, let time pass."""
    for _ in range(ticks):
        world.tick(measurement=reading if analysis_due(world.spec, world.status, world.now) else None)
        ready_all(world)
        world.wait(seconds)


def deploy_v1(world: World) -> None:
    world.tick()  # Deploying
    world.make_ready(V1)
    world.tick()  # Deployed


def full_canary_with_bake(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 40)  # CanaryStarted, steps, analysis, Promoting, Promoted (v1 kept for 2m)
    world.wait(120)
    drive(world, 2)  # bake over: v1 let go and deleted


def abort_by_analysis_then_retry(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 8)
    world.wait(30)
    world.tick(measurement=bad())  # aborted: weight 0 at once
    drive(world, 2, reading=bad())
    world.command("retry")
    drive(world, 3)


def user_abort_then_new_revision(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 3)
    world.auto_ready = True
    world.command("abort")
    drive(world, 2)
    world.roll_out("3")  # the aborted canary's Deployment goes
    drive(world, 3)


def superseded_canary(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 5)
    world.roll_out("3")
    drive(world, 5)
    world.roll_out("1")  # back to stable: the canary goes
    drive(world, 3)


def undo_within_bake(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 40)
    world.command("undo")  # v1 is still there (bake window): straight back
    drive(world, 4)


def undo_after_bake(world: CrashingWorld) -> None:
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 40)
    world.wait(200)
    drive(world, 2)
    world.command("undo", V1)  # rollback from history: full strength first, then switched
    drive(world, 4)
    world.roll_out("3")  # a new spec lifts the undo pin
    drive(world, 3)


def direct_replacement_of_a_stable_that_never_got_ready(world: CrashingWorld) -> None:
    world.problems[V1] = "image pull failed"
    world.tick()
    world.tick()
    world.roll_out("2")
    world.tick()
    world.make_ready(V2)
    drive(world, 2)


SCRIPTS: dict[str, tuple[Script, str]] = {
    "full canary, bake": (full_canary_with_bake, "2m"),
    "abort by analysis, retry": (abort_by_analysis_then_retry, "0s"),
    "user abort, new revision": (user_abort_then_new_revision, "0s"),
    "superseded canary": (superseded_canary, "0s"),
    "undo within bake": (undo_within_bake, "10m"),
    "undo after bake": (undo_after_bake, "1m"),
    "direct replacement": (direct_replacement_of_a_stable_that_never_got_ready, "0s"),
}


def run(script: Script, bake: str, crash_at: int | None) -> CrashingWorld:
    world = CrashingWorld(make_spec("1", bakeTime=bake), auto_ready=False, crash_at=crash_at)
    script(world)
    return world


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_actions_lost_after_the_status_write_are_redone_by_the_next_tick(name: str) -> None:
    script, bake = SCRIPTS[name]
    undisturbed = run(script, bake, None)
    assert sum(1 for reasons in undisturbed.events_per_tick if reasons) >= 3, undisturbed.events_per_tick
    for index in range(len(undisturbed.events_per_tick)):  # every tick, each transition among them
        crashed = run(script, bake, index + 1)
        assert crashed.crashed is not None
        lost = undisturbed.events_per_tick[index]
        expected = [r for i, rs in enumerate(undisturbed.events_per_tick) if i != index for r in rs]
        where = f"{name}: crash after the status write of tick {index + 1} ({', '.join(lost)})"
        assert crashed.reasons() == expected, where
        assert crashed.deployments == undisturbed.deployments, where
        assert crashed.status == undisturbed.status, where


def test_the_scenarios_reach_the_transitions_they_are_named_for() -> None:
    reasons = {name: run(script, bake, None).reasons() for name, (script, bake) in SCRIPTS.items()}
    assert {"Deployed", "CanaryStarted", "StepCompleted", "Promoting", "Promoted", "PreviousReleased"} <= set(
        reasons["full canary, bake"])
    assert {"RolloutAborted", "CommandHandled"} <= set(reasons["abort by analysis, retry"])
    assert reasons["user abort, new revision"].count("CanaryStarted") == 2
    assert "CanarySuperseded" in reasons["superseded canary"]
    assert "RolledBack" in reasons["undo within bake"]
    assert {"RollbackStarted", "RolledBack", "UndoPinReleased"} <= set(reasons["undo after bake"])
    assert "ReplacedUnready" in reasons["direct replacement"]


def test_a_leftover_deployment_of_no_track_is_deleted_from_status_alone() -> None:
    """Given the status after a promotion (v2 stable, no canary, no previous) and the old stable's
    Deployment still in the cluster (its deletion was lost), the next tick deletes it."""
    world = World(make_spec("2"))
    world.status = ModelDeploymentStatus(
        stable=TrackStatus(revision=V2, model_version="2", model=model("2"), deployed_at=format_time(world.now)))
    world.deployments = {V1: [3, 3], V2: [3, 3], V3: [1, 0]}
    decision = world.tick()
    deleted = {a.revision for a in decision.actions if isinstance(a, DeleteDeployment)}
    assert deleted == {V1, V3}
    assert decision.events == ()
    assert set(world.deployments) == {V2}


def test_a_previous_revision_is_kept_until_its_bake_window_ends_then_deleted() -> None:
    world = World(make_spec("2"))
    until = world.now + timedelta(seconds=60)
    world.status = ModelDeploymentStatus(
        stable=TrackStatus(revision=V2, model_version="2", model=model("2"), deployed_at=format_time(world.now)),
        previous=PreviousStatus(revision=V1, model_version="1", model=model("1"), until=format_time(until)))
    world.deployments = {V1: [3, 3], V2: [3, 3]}
    decision = world.tick()
    assert not any(isinstance(a, DeleteDeployment) for a in decision.actions)
    assert world.deployments[V1][0] == 0  # ReplicaRatio: kept at 0 so the one Service sends it nothing
    world.wait(61)
    decision = world.tick()
    assert DeleteDeployment(V1) in decision.actions and V1 not in world.deployments


def test_a_new_canary_does_not_inherit_the_weight_its_predecessor_carried() -> None:
    """The weight the controller read was carried by the canary being replaced: the new one starts
    at 0% observed and its analysis clock waits until it carries traffic itself."""
    world = CrashingWorld(make_spec("1"))
    deploy_v1(world)
    world.roll_out("2")
    drive(world, 3)
    assert world.status.canary is not None and world.status.canary.observed_weight > 0
    world.auto_ready = False
    world.roll_out("3")
    world.tick()
    canary = world.status.canary
    assert canary is not None and canary.revision == V3
    assert canary.observed_weight == 0
    assert world.status.analysis is None
