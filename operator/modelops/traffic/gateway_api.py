"""GatewayAPI router: the canary weight as backendRef weights of the user's HTTPRoute (exact weights).

The controller owns two track Services, `<mdep>-stable` and `<mdep>-canary`; the HTTPRoute is the
user's. This module rewrites only the backendRefs that name our Services into the two weighted refs
(`100 - w` and `w`), leaving every other rule and backend alone, and reads the weight back from a
route. Pure: the controller reads the route from its cache, calls `route_with_weights`, and writes the
result back with the resourceVersion it read.
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


def _is_ours(ref: Mapping[str, Any], mdep: str) -> bool:
    return (ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")
            and ref.get("name") in (mdep, stable_service(mdep), canary_service(mdep)))


def routes_us(route: Mapping[str, Any], mdep: str) -> bool:
    """Whether any rule of the route has a backendRef naming our Services (`<mdep>`, `-stable`, `-canary`)."""
    rules = (route.get("spec") or {}).get("rules") or []
    return any(_is_ours(ref, mdep) for rule in rules for ref in rule.get("backendRefs") or [])


def route_with_weights(route: Mapping[str, Any], mdep: str, weight: int, port: int) -> dict[str, Any] | None:
    """The route with `weight`% to the canary in every rule that names our Services; None if unchanged.

    Only the backendRefs naming `<mdep>`, `<mdep>-stable` or `<mdep>-canary` are rewritten (into the
    two weighted track refs, where the first of them stood); other rules, other backends, matches and
    filters are the user's and stay as they are. metadata.resourceVersion is kept, so writing the
    result back fails on a concurrent change instead of undoing it.
    """
    spec = dict(route.get("spec") or {})
    new_rules = []
    for rule in spec.get("rules") or []:
        refs = list(rule.get("backendRefs") or [])
        positions = [i for i, ref in enumerate(refs) if _is_ours(ref, mdep)]
        if not positions:
            new_rules.append(rule)
            continue
        others = [ref for ref in refs if not _is_ours(ref, mdep)]
        at = positions[0]
        before = sum(1 for i in range(at) if not _is_ours(refs[i], mdep))
        new_refs = [*others[:before], *backend_refs(mdep, weight, port), *others[before:]]
        new_rules.append({**dict(rule), "backendRefs": new_refs})
    if new_rules == list(spec.get("rules") or []):
        return None
    return {**dict(route), "spec": {**spec, "rules": new_rules}}


def route_weight(route: Mapping[str, Any], mdep: str) -> int | None:
    """The canary weight the route carries now, in percent of the first of our rules' two tracks.

    None when the route does not (yet) point at our track Services.
    """
    rules = [rule for rule in (route.get("spec") or {}).get("rules") or []
             if any(_is_ours(ref, mdep) for ref in rule.get("backendRefs") or [])]
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
