"""Which ModelDeployment watch events are a person's: an echo of one of our own status writes queues
nothing, even when it arrives after a later write of ours; an edit or a command is urgent; an echo
that beats our write's answer, or a relist, is routine."""

from __future__ import annotations

import itertools
from typing import Any

from modelops.api.status import ModelDeploymentStatus
from modelops.controller.cache import Cache
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.reconcile import Reconciler


class _StatusWrites:
    """Stands in for `Kube` where only `replace_status` is called: each write gets a new resourceVersion."""

    def __init__(self) -> None:
        self.versions = itertools.count(100)

    async def call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def replace_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        meta = {**obj["metadata"], "resourceVersion": str(next(self.versions))}
        return {**obj, "metadata": meta, "status": status}


def _mdep(version: str, generation: int = 1, observed: int | None = 1,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"namespace": "ns", "name": "iris", "uid": "u1", "resourceVersion": version,
                         "generation": generation, "annotations": annotations or {}},
            "status": {} if observed is None else {"observedGeneration": observed}}


def _reconciler() -> Reconciler:
    return Reconciler(_StatusWrites(), Cache(), OperatorMetrics())  # type: ignore[arg-type]


async def test_late_echoes_of_our_writes_are_ours_and_a_new_version_is_not() -> None:
    reconciler = _reconciler()
    obj = _mdep("1")
    reconciler.cache.mdeps.put(("ns", "iris"), obj)
    assert reconciler.triage("ADDED", obj) == "routine"
    written = []
    for message in ("step 1", "step 1: pods ready", "step 2"):
        obj = await reconciler._write_status(obj, ModelDeploymentStatus(message=message))
        written.append(obj["metadata"]["resourceVersion"])
    assert written == ["100", "101", "102"]
    # The watch delivers the echo of the first write after the third write.
    assert all(reconciler.triage("MODIFIED", _mdep(v)) is None for v in written)
    assert reconciler.triage("MODIFIED", _mdep("103")) == "routine"  # someone's label, say
    reconciler.forget(("ns", "iris"))
    assert reconciler.triage("MODIFIED", _mdep("102")) == "routine"


def test_an_edit_a_command_and_a_new_object_are_urgent_and_nothing_else_is() -> None:
    reconciler = _reconciler()
    assert reconciler.triage("ADDED", _mdep("1", generation=1, observed=None)) == "urgent"  # new
    assert reconciler.triage("MODIFIED", _mdep("2", generation=1, observed=1)) == "routine"  # our echo, early
    assert reconciler.triage("MODIFIED", _mdep("3", generation=2, observed=1)) == "urgent"  # spec edited
    command = {"modelops.dev/abort": '{"nonce": "1"}'}
    assert reconciler.triage("MODIFIED", _mdep("4", generation=2, observed=2, annotations=command)) == "urgent"
    assert reconciler.triage("MODIFIED", _mdep("5", generation=2, observed=2, annotations=command)) == "routine"
    # A relist after an expired watch: only what is not yet observed is urgent.
    assert reconciler.triage("ADDED", _mdep("6", generation=2, observed=2, annotations=command)) == "routine"
