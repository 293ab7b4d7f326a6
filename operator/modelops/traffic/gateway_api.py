"""GatewayAPI router: the canary weight as backendRef weights of the user's HTTPRoute (exact weights).

The controller owns two track Services, `<mdep>-stable` and `<mdep>-canary`; this module rewrites the
backendRefs of every rule of the user's HTTPRoute to point at them with weights `100 - w` and `w`
(matches, filters and other rule fields are kept), and reads the weight back from a route. Pure:
the controller fetches the route, calls `route_patch`, and applies the returned merge patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STABLE_SUFFIX = "-stable"
CANARY_SUFFIX = "-canary"


def stable_service(mdep: str) -> str:
    return f"{mdep}{STABLE_SUFFIX}"


def canary_service(mdep: str) -> str:
    return f"{mdep}{CANARY_SUFFIX}"


def backend_refs(mdep: str, weight: int, port: int) -> list[dict[str, Any]]:
    """The two weighted backendRefs for a canary weight in percent."""
    w = min(max(weight, 0), 100)
    return [
        {"group": "", "kind": "Service", "name": stable_service(mdep), "port": port, "weight": 100 - w},
        {"group": "", "kind": "Service", "name": canary_service(mdep), "port": port, "weight": w},
    ]


def route_patch(route: Mapping[str, Any], mdep: str, weight: int, port: int) -> dict[str, Any]:
    """A merge patch for `route` whose every rule sends `weight`% to the canary Service.

    A route without rules gets one rule (match everything). Rules are a list, so a merge patch
    replaces them whole: every rule's other fields are copied from the route as observed.
    """
    rules = list((route.get("spec") or {}).get("rules") or [{}])
    new_rules = [{**dict(rule), "backendRefs": backend_refs(mdep, weight, port)} for rule in rules]
    return {"spec": {"rules": new_rules}}


def route_weight(route: Mapping[str, Any], mdep: str) -> int | None:
    """The canary weight the route carries now, in percent of the first rule's two tracks.

    None when the route does not (yet) point at our track Services.
    """
    rules = (route.get("spec") or {}).get("rules") or []
    if not rules:
        return None
    refs = rules[0].get("backendRefs") or []
    weights = {ref.get("name"): int(ref.get("weight", 1)) for ref in refs}
    stable = weights.get(stable_service(mdep))
    canary = weights.get(canary_service(mdep))
    if stable is None and canary is None:
        return None
    total = (stable or 0) + (canary or 0)
    if total == 0:
        return 0
    return (100 * (canary or 0)) // total
