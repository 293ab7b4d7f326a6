"""The stable track: a first deploy (or a stable that never got ready, replaced directly) and the
steady state with no canary. Called by `machine.next_state` and, after a switch, by `promotion`."""

from __future__ import annotations

from modelops.api.status import TrackStatus
from modelops.rollout.actions import SetRouting
from modelops.rollout.conditions import REASON_PODS_FAILING
from modelops.rollout.context import READINESS_POLL_SECONDS, Target, Tick, display_name
from modelops.rollout.events import EVENT_CANARY_SUPERSEDED, EVENT_DEPLOYED, EVENT_DEPLOYING, EVENT_REPLACED


def deploys_directly(tick: Tick, target: Target) -> bool:
    """First deploy, or a stable that never got a ready pod: nothing to canary against."""
    if tick.stable is None or tick.stable.revision is None:
        return True
    return (
        tick.canary is None
        and tick.stable.revision != target.revision
        and tick.total > 0
        and tick.observed.ready(tick.stable.revision) == 0
        and tick.stable.deployed_at is None
    )


def deploy_directly(tick: Tick, target: Target) -> None:
    """Deploy `target` as stable with no canary (first deploy, or over a stable that never got ready)."""
    old = tick.stable
    if old is None or old.revision != target.revision:
        if old is not None and old.revision is not None:
            tick.record(old.revision, old.model_version, old.model, "Superseded", f"replaced by {target.revision}"
                        " before any pod was ready")
            tick.event(EVENT_REPLACED, f"{old.revision} never had a ready pod; deploying {target.revision} "
                       "directly")
        tick.event(EVENT_DEPLOYING, f"deploying {display_name(tick, target.model_version, target.revision)} as stable")
        tick.stable = TrackStatus(revision=target.revision, model_version=target.model_version, model=target.model)
        tick.canary = None
        tick.analysis = None
    steady(tick)


def steady(tick: Tick) -> None:
    """No canary: the stable track at full strength, all traffic to it; announce when it is first ready."""
    stable = tick.stable
    assert stable is not None and stable.revision is not None
    if tick.canary is not None:
        # Spec went back to the stable revision while a canary ran (or after it was aborted).
        if not tick.canary.aborted and tick.canary.revision is not None:
            tick.record(tick.canary.revision, tick.canary.model_version, tick.canary.model, "Superseded",
                        f"spec returned to the stable revision {stable.revision}")
            tick.event(EVENT_CANARY_SUPERSEDED, f"canary {tick.canary.revision} removed: spec asks for the stable "
                       f"revision {stable.revision} again")
        tick.canary = None
    tick.ensure(stable.revision, tick.total, "stable", stable.model)
    baking = tick.previous.revision if tick.previous is not None and tick.router.weighted_route else None
    tick.routing = SetRouting(stable.revision, baking, 0)
    ready = tick.observed.ready(stable.revision)
    if ready >= tick.total:
        if stable.deployed_at is None:
            tick.stable = stable.model_copy(update={"deployed_at": tick.now_text})
            tick.record(stable.revision, stable.model_version, stable.model, "Deployed", "all pods ready")
            tick.event(EVENT_DEPLOYED, f"{display_name(tick, stable.model_version, stable.revision)} serves on "
                       f"{ready}/{tick.total} pods")
    else:
        problem = tick.observed.problem(stable.revision)
        if problem:
            tick.stalled = (REASON_PODS_FAILING, f"{stable.revision} pods are not starting: {problem}")
        tick.wait(READINESS_POLL_SECONDS)
