"""A watch event that only echoes one of our own status writes queues nothing, even when it arrives
after a later write of ours; anyone else's change to the object is not mistaken for an echo."""

from __future__ import annotations

import itertools
from typing import Any

from modelops.api.models import ModelDeploymentStatus
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


def _mdep(version: str) -> dict[str, Any]:
    return {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"namespace": "ns", "name": "iris", "uid": "u1", "resourceVersion": version}}


async def test_late_echoes_of_our_writes_are_ours_and_a_new_version_is_not() -> None:
    cache = Cache()
    reconciler = Reconciler(_StatusWrites(), cache, OperatorMetrics())  # type: ignore[arg-type]
    obj = _mdep("1")
    cache.mdeps.put(("ns", "iris"), obj)
    written = []
    for message in ("step 1", "step 1: pods ready", "step 2"):
        obj = await reconciler._write_status(obj, ModelDeploymentStatus(message=message))
        written.append(obj["metadata"]["resourceVersion"])
    assert written == ["100", "101", "102"]
    # The watch delivers the echo of the first write after the third write.
    assert all(reconciler.caused_by_us(_mdep(v)) for v in written)
    assert not reconciler.caused_by_us(_mdep("1"))  # the version before our writes
    assert not reconciler.caused_by_us(_mdep("103"))  # someone's edit after them
    reconciler.forget(("ns", "iris"))
    assert not reconciler.caused_by_us(_mdep("102"))
