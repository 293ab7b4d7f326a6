"""The canary state machine: `next_state(spec, status, observed, now) -> Decision`, pure.

The controller calls it on every tick of a ModelDeployment (after `analysis_due` told it whether to
measure first) and carries out the returned actions, then writes the returned status. Everything the
machine needs to resume lives in status, so an operator restarted at any moment picks up the same
step with the same remaining pause (`stepStartedAt` + `now`).

One tick is a straight sequence over one context (`context.Tick`), in the manner of Argo Rollouts'
reconcileX steps, each family of steps in a module of its own: commands (`commands`) -> which
revision is wanted (here) -> first deploy | steady (`stable`) | canary (`canary`: measure in
`analysis_runs`, abort in `abort`, advance `steps`, `promotion`) -> bake window (`promotion`) ->
orphan Deployments and the order of actions (`ordering`) -> conditions (`conditions`), phase and
message (`phase`).

Traffic choices (see `modelops.traffic.replica_ratio`): stable keeps full strength until promotion,
so an abort is immediate; a step's weight is reached only once the canary pods that carry it are
ready (and, with GatewayAPI, the route says so). Promotion makes the canary Deployment the stable one
(no restarts): full strength first, then the switch, then the old stable goes (after the bake window).
"""

from __future__ import annotations

from datetime import datetime

from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from modelops.api.timefmt import as_utc
from modelops.rollout.actions import Decision
from modelops.rollout.canary import run_canary
from modelops.rollout.commands import apply_commands
from modelops.rollout.conditions import derive_conditions
from modelops.rollout.context import Target, Tick, status_so_far
from modelops.rollout.events import EVENT_PIN_RELEASED
from modelops.rollout.legacy import upgrade_status
from modelops.rollout.observed import Observed
from modelops.rollout.ordering import ordered_actions
from modelops.rollout.phase import derive_phase
from modelops.rollout.promotion import bake
from modelops.rollout.stable import deploy_directly, deploys_directly, steady
from modelops.traffic.factory import router_for


def next_state(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observed: Observed, now: datetime
) -> Decision:
    """The status and actions that move this ModelDeployment one tick towards its spec."""
    status = upgrade_status(status)
    tick = Tick(
        spec=spec,
        old=status,
        observed=observed,
        now=as_utc(now),
        router=router_for(spec.rollout.traffic),
        stable=status.stable,
        canary=status.canary,
        analysis=status.analysis,
        previous=status.previous,
        pinned=status.pinned,
        history=list(status.history),
        handled=dict(status.handled_commands),
    )
    _release_stale_pin(tick)
    apply_commands(tick)
    target = _target(tick)
    if deploys_directly(tick, target):
        deploy_directly(tick, target)
    elif tick.stable is not None and tick.stable.revision == target.revision:
        steady(tick)
    else:
        run_canary(tick, target)
    bake(tick)
    return _decide(tick)


def _target(tick: Tick) -> Target:
    if tick.pinned is not None:
        return Target(tick.pinned.revision, tick.pinned.model_version, tick.pinned.model)
    desired = tick.observed.desired
    return Target(desired.revision, desired.model.version, desired.model)


def _release_stale_pin(tick: Tick) -> None:
    # An undo holds until Git moves on: a new spec revision is a new decision by its owner.
    if tick.pinned is not None and tick.observed.desired.revision != tick.pinned.replaces:
        tick.event(EVENT_PIN_RELEASED, f"spec now asks for {tick.observed.desired.revision}; the undo "
                   f"pin on {tick.pinned.revision} is lifted")
        tick.pinned = None


def _with_observations(tick: Tick) -> None:
    """Copy what was observed of the tracks into status (counts, observed weight)."""
    observed = tick.observed
    if tick.stable is not None:
        found = observed.deployment(tick.stable.revision)
        tick.stable = tick.stable.model_copy(
            update={"replicas": found.replicas if found else 0, "ready_replicas": found.ready_replicas if found else 0}
        )
    if tick.canary is not None:
        found = observed.deployment(tick.canary.revision)
        tick.canary = tick.canary.model_copy(
            update={
                "replicas": found.replicas if found else 0,
                "ready_replicas": found.ready_replicas if found else 0,
                "observed_weight": tick.observed_weight,
            }
        )


def _decide(tick: Tick) -> Decision:
    _with_observations(tick)
    status = status_so_far(tick)
    phase, message = derive_phase(tick.spec, status, tick.now, tick.hold)
    if tick.stalled is not None and tick.stalled[1] not in message:
        message = f"{message}; {tick.stalled[1]}"
    if tick.note is not None:
        message = f"{message}; {tick.note}"
    status = status.model_copy(update={"phase": phase, "message": message[:2048]})
    status = derive_conditions(tick, status, phase, message)
    # Round-trip through validation so the status we hand back is exactly what the API stores.
    status = ModelDeploymentStatus.model_validate(status.model_dump(by_alias=True))
    requeue = min(tick.requeue) if tick.requeue else None
    return Decision(status=status, actions=ordered_actions(tick), requeue_after=requeue)
