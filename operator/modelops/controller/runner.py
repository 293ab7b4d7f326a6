"""`modelops run`: start kopf with the modelops handlers in this process."""

from __future__ import annotations

import asyncio
import logging


def run_operator(namespaces: list[str], liveness: str | None, verbose: bool) -> int:
    import kopf

    from modelops.controller import handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
        standalone=True,
    ))
    return 0
