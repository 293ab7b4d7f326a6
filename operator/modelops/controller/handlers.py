"""kopf handlers: every watch event of a ModelDeployment, or of a Deployment it owns, asks the
reconciler to look again; a periodic resync catches anything a watch missed.

Loaded by `modelops run` (runner.py). The handlers store nothing on the objects: kopf's finalizer
and annotation prefixes are set to modelops.dev so user objects carry no kopf.zalando.org keys.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from modelops.api.models import GROUP, PLURAL, VERSION
from modelops.controller.kube import Kube
from modelops.controller.reconcile import RESYNC_SECONDS, Reconciler
from modelops.resources.builders import OWNER_KIND
from modelops.resources.naming import LABEL_MANAGED_BY, MANAGED_BY

log = logging.getLogger(__name__)
_state: dict[str, Reconciler] = {}


def reconciler() -> Reconciler:
    return _state["reconciler"]


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = "modelops.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="modelops.dev", key="last-handled-configuration")
    settings.posting.enabled = False  # we post our own Events, one per decision
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    kube = await asyncio.to_thread(Kube)
    _state["reconciler"] = Reconciler(kube)
    asyncio.get_running_loop().create_task(_resync(kube))


async def _resync(kube: Kube) -> None:
    """Look at every ModelDeployment now and then, whatever the watches said."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        try:
            for obj in await asyncio.to_thread(kube.list_mdeps):
                reconciler().trigger(obj["metadata"]["namespace"], obj["metadata"]["name"])
        except Exception:
            log.exception("resync failed")


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_model_deployment(event: kopf.RawEvent, name: str, namespace: str | None, **_: Any) -> None:
    if event.get("type") == "DELETED" or namespace is None:
        return
    reconciler().trigger(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={LABEL_MANAGED_BY: MANAGED_BY})
async def on_owned_deployment(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    if namespace is None:
        return
    for ref in body.metadata.get("ownerReferences", []) or []:
        if ref.get("kind") == OWNER_KIND and ref.get("controller"):
            reconciler().trigger(namespace, ref["name"])
