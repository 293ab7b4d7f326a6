"""ModelDeployment objects in every phase, with the status the real state machine writes.

Each fixture is driven there by `modelops.rollout.machine.next_state` (through the in-memory World of
tests/unit/rollout/world.py), so the conditions, reasons and phases are the operator's own, not a copy
that could drift. Used by tests/unit/test_gitops_health.py, which runs Argo CD's health check (Lua)
and Flux's kstatus on each; `python -m tests.gitops.fixtures DIR` writes them as JSON for people.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelops.api.kind import GROUP, VERSION
from modelops.rollout.analysis_runs import analysis_due
from modelops.rollout.phase import PHASES

from tests.unit.rollout.world import World, bad, good, make_spec, silent


def _deployed(**rollout: Any) -> World:
    world = World(make_spec("1", **rollout))
    world.tick()
    world.tick()
    assert world.status.phase == "Healthy", world.status.message
    return world


def _advance(world: World, until: Callable[[World], bool], measure: Any = good) -> World:
    for _ in range(60):
        if until(world):
            return world
        due = analysis_due(world.spec, world.status, world.now)
        world.tick(measurement=measure() if due else None)
        world.wait(5)
    raise AssertionError(f"never reached the wanted state: {world.status.phase} {world.status.message}")


def deploying() -> World:
    world = World(make_spec("1"), auto_ready=False)
    world.tick()
    return world


def healthy() -> World:
    return _deployed()


def degraded() -> World:
    world = _deployed()
    stable = world.status.stable
    assert stable is not None and stable.revision is not None
    world.deployments[stable.revision][1] = 1  # two of three stable pods lost
    world.tick()
    return world


def progressing() -> World:
    world = _deployed()
    world.roll_out("2")
    world.tick()
    return world


def paused() -> World:
    world = _deployed(steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}], analysis={"disabled": True})
    world.roll_out("2")
    return _advance(world, lambda w: w.status.phase == "Paused")


def paused_by_user() -> World:
    world = progressing()
    world.command("pause")
    return world


def analysing() -> World:
    world = _deployed(steps=[{"setWeight": 20}, {"analysis": {"count": 3}}, {"setWeight": 60}])
    world.roll_out("2")
    return _advance(world, lambda w: w.status.phase == "Analysing")


def inconclusive() -> World:
    world = _deployed()
    world.roll_out("2")
    return _advance(world, lambda w: w.status.phase == "Inconclusive", measure=silent)


def promoting() -> World:
    # 25% of 3 is one canary pod beside 3 stable (50% would be 3 beside 3): promotion has pods to add.
    world = _deployed(steps=[{"setWeight": 25}], analysis={"disabled": True})
    world.roll_out("2")
    world.auto_ready = False
    world.tick()
    canary = world.status.canary
    assert canary is not None and canary.revision is not None
    world.make_ready(canary.revision)
    return _advance(world, lambda w: w.status.phase == "Promoting")


def rolling_back() -> World:
    world = _deployed(analysis={"disabled": True})
    world.roll_out("2")
    _advance(world, lambda w: w.status.canary is None and w.status.stable is not None
             and w.status.stable.model_version == "2")
    previous = world.status.history[0].revision
    world.auto_ready = False
    world.command("undo", previous)
    return world


def aborted() -> World:
    world = _deployed()
    world.roll_out("2")
    return _advance(world, lambda w: w.status.phase == "Aborted", measure=bad)


def stalled_pods() -> World:
    """Deploying, but the pods cannot start (the kubelet's reason in the Stalled condition)."""
    world = World(make_spec("1"), auto_ready=False)
    world.tick()
    stable = world.status.stable
    assert stable is not None and stable.revision is not None
    world.problems[stable.revision] = "ImagePullBackOff: image not found"
    world.tick()
    return world


# name -> (builder, phase, Argo CD health status, kstatus status)
SCENARIOS: dict[str, tuple[Callable[[], World], str, str, str]] = {
    "deploying": (deploying, "Deploying", "Progressing", "InProgress"),
    "deploying-pods-failing": (stalled_pods, "Deploying", "Degraded", "Failed"),
    "healthy": (healthy, "Healthy", "Healthy", "Current"),
    "degraded": (degraded, "Degraded", "Degraded", "InProgress"),
    "progressing": (progressing, "Progressing", "Progressing", "InProgress"),
    "paused-step": (paused, "Paused", "Suspended", "InProgress"),
    "paused-by-user": (paused_by_user, "Paused", "Suspended", "InProgress"),
    "analysing": (analysing, "Analysing", "Progressing", "InProgress"),
    "inconclusive": (inconclusive, "Inconclusive", "Progressing", "InProgress"),
    "promoting": (promoting, "Promoting", "Progressing", "InProgress"),
    "rolling-back": (rolling_back, "RollingBack", "Progressing", "InProgress"),
    "aborted": (aborted, "Aborted", "Degraded", "Failed"),
}


def as_object(world: World, name: str, generation: int | None = None) -> dict[str, Any]:
    """The ModelDeployment as the API server would return it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "models", "generation": generation or world.generation,
                     "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": world.spec.wire(),
        "status": world.status.wire(),
    }


def fixtures() -> dict[str, dict[str, Any]]:
    out = {}
    for name, (builder, phase, _, _) in SCENARIOS.items():
        world = builder()
        assert world.status.phase == phase, f"{name}: wanted phase {phase}, got {world.status.phase}"
        out[name] = as_object(world, name)
    # The spec changed and the operator has not seen it yet: never Healthy, whatever status says.
    out["healthy-unobserved-generation"] = as_object(healthy(), "healthy-unobserved-generation", generation=5)
    assert {o["status"]["phase"] for o in out.values()} == set(PHASES), "a phase has no fixture"
    return out


# Expected verdicts: (Argo CD health, kstatus) per fixture.
EXPECTED = {name: (argo, kstatus) for name, (_, _, argo, kstatus) in SCENARIOS.items()}
EXPECTED["healthy-unobserved-generation"] = ("Progressing", "InProgress")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    target.mkdir(parents=True, exist_ok=True)
    for name, obj in fixtures().items():
        (target / f"{name}.json").write_text(json.dumps(obj, indent=2) + "\n")
