"""The order of a tick's actions: scale-ups, then the routing change, then scale-downs, deletions
and Events, so traffic never points at pods that are not there. Called by `machine.next_state`."""

from __future__ import annotations

from modelops.rollout.actions import Action, DeleteDeployment, EnsureDeployment
from modelops.rollout.context import Tick


def _tracked(tick: Tick) -> set[str | None]:
    """The revisions status keeps a Deployment for: stable, canary, previous. Everything else goes."""
    return {t.revision for t in (tick.stable, tick.canary, tick.previous) if t is not None}


def _orphans(tick: Tick) -> list[DeleteDeployment]:
    """Delete every observed Deployment of no track: derived from status alone on every tick, so a
    deletion lost after the status write (crash, conflict) is done by the next tick."""
    keep = _tracked(tick)
    return [DeleteDeployment(d.revision) for d in tick.observed.deployments if d.revision not in keep]


def ordered_actions(tick: Tick) -> tuple[Action, ...]:
    """Scale-ups, then the routing change, then scale-downs, deletions and events.

    A revision that left every track during the tick (the old stable at a switch) is not ensured:
    the decision must be the one a later tick derives from the new status alone.
    """

    def grows(ensure: EnsureDeployment) -> bool:
        found = tick.observed.deployment(ensure.revision)
        return found is None or ensure.replicas >= found.replicas

    keep = _tracked(tick)
    ensures = [e for e in tick.ensures if e.revision in keep]
    ups = [e for e in ensures if grows(e)]
    downs = [e for e in ensures if not grows(e)]
    routing: list[Action] = [tick.routing] if tick.routing is not None else []
    return (*ups, *routing, *downs, *_orphans(tick), *tick.events)
