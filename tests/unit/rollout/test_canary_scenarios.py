"""Scenarios of the canary state machine, told as given / when / then."""

from __future__ import annotations

from modelops.api.status import ModelDeploymentStatus
from modelops.api.timefmt import parse_time
from modelops.rollout.actions import DeleteDeployment, EnsureDeployment
from modelops.rollout.analysis_runs import analysis_due
from modelops.rollout.machine import next_state

from .world import World, bad, good, make_spec, revision, silent

V1, V2, V3 = revision("1"), revision("2"), revision("3")


def deployed_v1(**rollout: object) -> World:
    world = World(make_spec("1", **rollout))
    world.tick()
    world.tick()
    assert world.status.phase == "Healthy", world.status.message
    return world


def canary_v2_at_step(world: World, index: int) -> World:
    """Roll v2 out and drive it (with good analysis runs) until it sits at step `index`."""
    world.roll_out("2")
    for _ in range(40):
        canary = world.status.canary
        if canary is not None and canary.step_index >= index:
            break
        due = analysis_due(world.spec, world.status, world.now)
        world.tick(measurement=good() if due else None)
        world.wait(5)
    assert world.status.canary is not None and world.status.canary.step_index == index
    return world


def test_first_deploy_goes_straight_to_stable():
    world = World(make_spec("1"), auto_ready=False)
    decision = world.tick()
    assert decision.replicas_of(V1) == 3
    assert world.status.phase == "Deploying"
    assert world.status.canary is None
    assert world.condition("Ready")[0] == "False"
    world.make_ready(V1)
    world.tick()
    assert world.status.phase == "Healthy"
    assert world.condition("Ready")[:2] == ("True", "Healthy")
    assert world.condition("Reconciling")[0] == "False"
    assert world.condition("Stalled")[0] == "False"
    assert [h.outcome for h in world.status.history] == ["Deployed"]
    assert "Deployed" in world.reasons()


def test_new_revision_starts_canary_next_to_stable_at_step_zero():
    world = deployed_v1()
    world.roll_out("2")
    decision = world.tick()
    canary = world.status.canary
    assert canary is not None and canary.revision == V2 and canary.step_index == 0
    assert decision.replicas_of(V1) == 3  # stable keeps full strength
    assert decision.replicas_of(V2) == 1  # ceil(3 * 10%)
    assert world.status.stable is not None and world.status.stable.revision == V1
    assert "CanaryStarted" in world.reasons()


def test_weight_moves_on_only_once_canary_pods_are_ready():
    world = deployed_v1()
    world.auto_ready = False
    world.roll_out("2")
    world.tick()
    world.tick()
    assert world.status.canary is not None and world.status.canary.step_index == 0
    assert "waiting for canary pods: 0/1" in (world.status.message or "")
    world.make_ready(V2)
    world.tick()
    assert world.status.canary.step_index == 1  # the pause step began


def test_canary_whose_pods_cannot_start_never_takes_traffic_and_says_why():
    world = deployed_v1()
    world.auto_ready = False
    world.roll_out("2")
    world.problems[V2] = "init container fetch-model failed: sha256 mismatch"
    for _ in range(3):
        decision = world.tick()
        world.wait(5)
    canary = world.status.canary
    assert canary is not None and canary.step_index == 0 and canary.observed_weight == 0
    assert decision.routing is not None and decision.routing.canary_weight == 0
    stalled = world.condition("Stalled")
    assert stalled[0] == "True" and "sha256 mismatch" in stalled[2], stalled
    assert "sha256 mismatch" in (world.status.message or "")


def test_timed_pause_survives_an_operator_restart_with_the_same_remaining_time():
    world = canary_v2_at_step(deployed_v1(analysis={"disabled": True}), 1)
    started = world.status.canary.step_started_at
    world.wait(12)
    # The operator restarts: only the stored (JSON) status survives.
    stored = world.status.model_dump(by_alias=True, mode="json")
    world.status = ModelDeploymentStatus.model_validate(stored)
    decision = world.tick()
    elapsed = (world.now - parse_time(started)).total_seconds()
    assert world.status.canary.step_index == 1
    assert world.status.canary.step_started_at == started
    assert decision.requeue_after == 30 - elapsed
    assert f"pause, {30 - elapsed:.0f}s left" in world.status.message
    world.wait(decision.requeue_after - 1)
    world.tick()
    assert world.status.canary.step_index == 1
    world.wait(1)
    world.tick()
    assert world.status.canary.step_index == 2


def test_a_user_pause_stops_the_clock_of_a_timed_pause():
    world = canary_v2_at_step(deployed_v1(analysis={"disabled": True}), 1)  # pause 30s
    world.wait(10)
    left = 30 - (world.now - parse_time(world.status.canary.step_started_at)).total_seconds()
    world.command("pause")
    world.wait(300)
    world.tick()
    assert world.status.canary.step_index == 1 and world.status.phase == "Paused"
    world.command("resume")
    assert world.status.canary.step_index == 1
    assert f"pause, {left:.0f}s left" in (world.status.message or ""), world.status.message
    world.wait(left - 1)
    world.tick()
    assert world.status.canary.step_index == 1
    world.wait(1)
    world.tick()
    assert world.status.canary.step_index == 2


def test_errors_above_the_limit_abort_the_canary_at_step_two():
    """Given a canary at step 2 with errors above the limit, when the analysis runs, then the canary
    weight is 0 and Degraded says why."""
    world = canary_v2_at_step(deployed_v1(), 2)
    world.tick()
    world.wait(30)
    assert analysis_due(world.spec, world.status, world.now)
    decision = world.tick(measurement=bad())
    canary = world.status.canary
    assert canary is not None and canary.aborted and canary.weight == 0
    assert decision.routing is not None and decision.routing.canary_weight == 0
    assert decision.replicas_of(V1) == 3 and decision.replicas_of(V2) == 0
    status, reason, message = world.condition("Degraded")
    assert (status, reason) == ("True", "AnalysisFailed")
    assert "errors = 0.12 above max 0.02" in message
    assert world.condition("Stalled")[0] == "True"
    assert world.status.phase == "Aborted"
    assert world.status.history[-1].outcome == "Aborted"
    assert "RolloutAborted" in world.reasons()


def test_abort_keeps_the_canary_until_stable_is_back_at_full_strength():
    world = canary_v2_at_step(deployed_v1(), 2)
    world.auto_ready = False
    world.deployments[V1] = [3, 1]  # two stable pods were lost meanwhile
    world.command("abort")
    assert world.last is not None
    assert world.last.routing is not None and world.last.routing.canary_weight == 0
    assert world.last.replicas_of(V2) == world.deployments[V2][0] > 0
    world.make_ready(V1)
    decision = world.tick()
    assert decision.replicas_of(V2) == 0
    actions = decision.actions
    stable_at = next(i for i, a in enumerate(actions) if isinstance(a, EnsureDeployment) and a.revision == V1)
    canary_at = next(i for i, a in enumerate(actions) if isinstance(a, EnsureDeployment) and a.revision == V2)
    assert stable_at < canary_at
    assert world.condition("Degraded")[1] == "AbortedByUser"


def test_good_canary_is_promoted_and_the_old_stable_is_deleted():
    world = deployed_v1()
    world.roll_out("2")
    world.tick()
    for _ in range(60):
        if world.status.canary is None:
            break
        world.wait(5)
        world.tick(measurement=good() if analysis_due(world.spec, world.status, world.now) else None)
    assert world.status.stable is not None and world.status.stable.revision == V2
    world.tick()
    assert V1 not in world.deployments and world.deployments[V2] == [3, 3]
    assert world.status.phase == "Healthy"
    assert [h.outcome for h in world.status.history] == ["Deployed", "Promoted"]
    assert world.reasons().count("Promoted") == 1


def test_silence_never_promotes_and_inconclusive_beyond_the_limit_stalls():
    world = canary_v2_at_step(deployed_v1(), 3)
    for _ in range(4):
        world.wait(30)
        world.tick(measurement=silent())
    assert world.status.canary is not None and world.status.canary.step_index == 3
    assert world.status.phase == "Inconclusive"
    assert world.condition("Stalled")[:2] == ("True", "InconclusiveLimitExceeded")
    assert world.status.stable.revision == V1
    # Metrics come back: the rollout goes on by itself.
    world.wait(30)
    world.tick(measurement=good())
    assert world.condition("Stalled")[0] == "False"
    for _ in range(5):
        world.tick()
    assert world.status.stable.revision == V2


def test_too_few_requests_is_inconclusive_not_a_pass():
    world = canary_v2_at_step(deployed_v1(), 3)
    world.wait(30)
    world.tick(measurement=good(samples=5))
    assert world.status.analysis is not None and world.status.analysis.phase == "Inconclusive"
    assert "only 5 requests, 20 needed" in world.status.analysis.metrics[0].message
    world.wait(60)
    world.tick()
    assert world.status.canary is not None  # not promoted


def test_new_revision_mid_canary_restarts_at_step_zero_and_removes_the_old_canary():
    world = canary_v2_at_step(deployed_v1(), 2)
    world.roll_out("3")
    decision = world.tick()
    assert world.status.canary is not None
    assert world.status.canary.revision == V3 and world.status.canary.step_index == 0
    assert DeleteDeployment(V2) in decision.actions
    assert V2 not in world.deployments
    assert world.status.history[-1].outcome == "Superseded"
    assert world.status.history[-1].revision == V2


def test_indefinite_pause_waits_for_promote():
    world = deployed_v1(steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}],
                        analysis={"disabled": True})
    world.roll_out("2")
    world.tick()
    world.tick()
    world.wait(3600)
    world.tick()
    assert world.status.canary.step_index == 1 and world.status.phase == "Paused"
    world.command("promote")
    assert world.status.canary.step_index == 2


def test_promote_full_skips_the_remaining_steps():
    world = canary_v2_at_step(deployed_v1(), 1)
    world.command("promote", "full")
    world.tick()
    assert world.status.stable.revision == V2 and world.status.canary is None


def test_a_command_is_handled_once_per_nonce():
    world = canary_v2_at_step(deployed_v1(), 1)
    world.command("pause")
    assert world.status.canary.paused
    assert world.status.handled_commands == {"pause": "n1"}
    world.command("resume")
    assert not world.status.canary.paused
    # The pause annotation is still there with its old nonce: nothing happens.
    from modelops.api.commands import Command

    world.tick(commands=(Command("pause", "", "n1"), Command("resume", "", "n2")))
    assert not world.status.canary.paused


def test_retry_after_abort_restarts_the_canary():
    world = canary_v2_at_step(deployed_v1(), 2)
    world.command("abort")
    world.tick()
    assert world.deployments[V2][0] == 0
    world.command("retry")
    assert world.status.canary is not None and not world.status.canary.aborted
    assert world.status.canary.step_index == 0
    assert world.last is not None and world.last.replicas_of(V2) == 1
    assert world.condition("Degraded")[0] == "False"


def test_undo_within_bake_switches_back_quickly():
    world = deployed_v1(bakeTime="10m", analysis={"disabled": True})
    world.roll_out("2")
    for _ in range(30):
        world.tick()
        world.wait(10)
    assert world.status.stable.revision == V2
    assert world.status.previous is not None and world.status.previous.revision == V1
    assert world.deployments[V1][0] == 0  # kept, scaled to 0 under ReplicaRatio
    world.command("undo")
    world.tick()
    assert world.status.stable.revision == V1
    assert world.status.history[-1].outcome == "Rolledback"
    # The pin holds while spec still asks for v2.
    world.wait(600)
    world.tick()
    assert world.status.stable.revision == V1 and world.status.canary is None
    assert V2 not in world.deployments


def test_undo_after_bake_brings_back_a_revision_from_history():
    world = deployed_v1(analysis={"disabled": True})
    world.roll_out("2")
    for _ in range(30):
        world.tick()
        world.wait(10)
    assert world.status.stable.revision == V2 and V1 not in world.deployments
    world.command("undo", V1)
    assert world.status.canary is not None and world.status.canary.rollback
    assert world.status.canary.model is not None and world.status.canary.model.version == "1"
    world.tick()
    assert world.status.stable.revision == V1
    # A new spec revision lifts the pin and rolls out again.
    world.roll_out("3")
    world.tick()
    assert world.status.pinned is None and world.status.canary.revision == V3


def test_gateway_route_weight_follows_ready_pods():
    world = World(make_spec("1", traffic={"router": "GatewayAPI", "httpRoute": {"name": "iris"}}))
    world.tick()
    world.tick()
    world.auto_ready = False
    world.roll_out("2")
    decision = world.tick()
    assert decision.routing is not None and decision.routing.canary_weight == 0
    world.make_ready(V2)
    decision = world.tick()
    assert decision.routing is not None and decision.routing.canary_weight == 10
    assert world.status.canary.step_index == 0  # the route has to carry it first
    world.tick()
    assert world.status.canary.step_index == 1


def test_a_second_call_with_the_same_inputs_changes_nothing():
    world = canary_v2_at_step(deployed_v1(), 2)
    world.wait(30)
    observed = world.observed(measurement=bad())
    first = next_state(world.spec, world.status, observed, world.now)
    second = next_state(world.spec, first.status, observed, world.now)
    assert second.status == first.status
    assert second.events == ()


def test_commands_are_read_from_annotations():
    from modelops.rollout.commands import parse_commands

    commands = parse_commands({
        "modelops.dev/promote": '{"value": "full", "nonce": "abc"}',
        "modelops.dev/abort": "1700000000",
        "modelops.dev/undo": '{"value": "", "nonce": ""}',  # no nonce: not a request
        "other/thing": "x",
    })
    assert [(c.name, c.value, c.nonce) for c in commands] == [("abort", "", "1700000000"), ("promote", "full", "abc")]
