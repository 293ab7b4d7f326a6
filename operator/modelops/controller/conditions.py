"""kstatus-compatible conditions for the first reconcile (Ready, Reconciling, Stalled)."""

from __future__ import annotations

from modelops.api.models import Condition


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of the same type, keeping lastTransitionTime unless status changes."""
    out: list[Condition] = []
    for old in conditions:
        if old.type == new.type:
            if old.status == new.status:
                new = new.model_copy(update={"last_transition_time": old.last_transition_time})
            continue
        out.append(old)
    out.append(new)
    return sorted(out, key=lambda c: c.type)
