"""Properties of the canary state machine over random histories (hypothesis): whatever happens —
pods getting ready or lost, analysis runs good, bad or silent, commands, new revisions, time — the
weight never exceeds the current step's, an abort ends at weight 0, a repeated tick changes nothing,
and the status survives a JSON round trip."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelops.api.commands import Command
from modelops.api.status import ModelDeploymentStatus
from modelops.rollout.machine import next_state

from .world import World, bad, good, make_spec, silent

READINGS = {"good": good(), "bad": bad(), "silent": silent(), "none": None}

operations = st.one_of(
    st.tuples(st.just("tick"), st.sampled_from(sorted(READINGS))),
    st.tuples(st.just("wait"), st.sampled_from([1, 5, 15, 30, 61])),
    st.tuples(st.just("ready"), st.booleans()),
    st.tuples(st.just("lose"), st.booleans()),
    st.tuples(st.just("command"), st.sampled_from(["promote", "promote full", "abort", "pause", "resume",
                                                   "retry", "undo"])),
    st.tuples(st.just("rollout"), st.sampled_from(["2", "3", "4"])),
)

step_lists = st.sampled_from([
    [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}],
    [{"setWeight": 25}, {"analysis": {"count": 2}}, {"setWeight": 75}, {"pause": {}}],
    [{"pause": {"duration": "10s"}}, {"setWeight": 100}],
    [],
])


def step_weight(steps: list[Any], index: int) -> int:
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return int(step.set_weight)
    return 0


def check_tick(world: World, commands: tuple[Command, ...], reading: str) -> None:
    observed = world.observed(READINGS[reading], commands)
    decision = next_state(world.spec, world.status, observed, world.now)
    status = decision.status
    steps = world.spec.rollout.steps
    canary = status.canary
    routing = decision.routing
    assert routing is not None

    # The weight never exceeds the current step's.
    if canary is not None and not canary.rollback and canary.step_index < len(steps):
        assert canary.weight <= step_weight(steps, canary.step_index)
        assert routing.canary_weight <= canary.weight
    # An abort always ends at weight 0.
    if canary is not None and canary.aborted:
        assert canary.weight == 0 and routing.canary_weight == 0
        assert status.phase == "Aborted"
        stable = world.deployments.get(status.stable.revision if status.stable else "", [0, 0])
        if stable[1] >= world.spec.serving.replicas and canary.revision in world.deployments:
            assert decision.replicas_of(canary.revision) == 0
    if canary is None and status.stable is not None:
        assert routing.canary_weight == 0

    # A second call with the same inputs changes nothing and says nothing.
    again = next_state(world.spec, status, observed, world.now)
    assert again.status == status
    assert again.events == ()
    # From there on the decision is a fixed point: the same desired state, again and again.
    third = next_state(world.spec, again.status, observed, world.now)
    assert third.actions == again.actions and third.status == status

    # The status round-trips through the API's JSON unchanged.
    wire = status.model_dump(by_alias=True, mode="json")
    assert ModelDeploymentStatus.model_validate(wire) == status
    assert len(status.history) <= 10

    world.apply(decision)
    world.status = status


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=step_lists, gateway=st.booleans(), bake=st.sampled_from(["0s", "2m"]),
       ops=st.lists(operations, min_size=1, max_size=40))
def test_invariants_hold_over_any_history(steps: list[Any], gateway: bool, bake: str,
                                          ops: list[tuple[str, Any]]) -> None:
    traffic = {"router": "GatewayAPI", "httpRoute": {"name": "iris"}} if gateway else {"router": "ReplicaRatio"}
    world = World(make_spec("1", steps=steps, traffic=traffic, bakeTime=bake), auto_ready=False)
    check_tick(world, (), "none")
    for rev in list(world.deployments):
        world.make_ready(rev)
    nonce = 0
    for op, arg in ops:
        if op == "tick":
            check_tick(world, (), arg)
        elif op == "wait":
            world.wait(arg)
        elif op == "ready":
            world.auto_ready = arg
            for rev in list(world.deployments):
                world.make_ready(rev)
        elif op == "lose":
            for rev, (replicas, ready) in list(world.deployments.items()):
                if ready > 0 and (arg or rev == (world.status.stable.revision if world.status.stable else None)):
                    world.deployments[rev] = [replicas, ready - 1]
        elif op == "command":
            nonce += 1
            name, _, value = arg.partition(" ")
            check_tick(world, (Command(name, value, f"n{nonce}"),), "none")
        elif op == "rollout":
            world.roll_out(arg)
            check_tick(world, (), "none")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=step_lists.filter(bool), ops=st.lists(operations, min_size=1, max_size=40))
def test_silence_never_promotes(steps: list[Any], ops: list[tuple[str, Any]]) -> None:
    """Without one successful analysis run or a promote command, no new revision becomes stable."""
    world = World(make_spec("1", steps=steps), auto_ready=True)
    check_tick(world, (), "none")
    first = world.status.stable.revision if world.status.stable else None
    nonce = 0
    for op, arg in ops:
        if op == "tick" and arg != "good":
            check_tick(world, (), arg)
        elif op == "wait":
            world.wait(arg)
        elif op == "command" and not arg.startswith("promote"):
            nonce += 1
            name, _, value = arg.partition(" ")
            check_tick(world, (Command(name, value, f"n{nonce}"),), "none")
        elif op == "rollout":
            world.roll_out(arg)
            check_tick(world, (), "none")
        assert world.status.stable is not None and world.status.stable.revision == first
