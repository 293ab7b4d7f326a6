"""Reading status written by an older operator: derive, once, the decision fields it did not write.

Called by `machine.next_state` at the start of every tick; a status this version wrote passes through
unchanged. Older operators decided from the bounded display history (`status.history`); the fields
that replaced it are filled from that history here, so the next status write carries them and later
ticks never look at history for a decision again.
"""

from __future__ import annotations

from modelops.api.status import HISTORY_LIMIT, ModelDeploymentStatus, TrackStatus
from modelops.rollout.phase import DEPLOYED_OUTCOMES


def deployed_at_from_history(status: ModelDeploymentStatus, revision: str) -> str | None:
    """When `revision` served at full strength, as far as an old status's history tells.

    Its latest entry says Deployed or Promoted: that entry's time. No entry at all in a full history:
    the entry fell out (the bug this field fixes), and the stable revision of a status with a full
    history was deployed before the oldest entry that is left (unless an entry says it replaced a
    never-ready stable directly and no Deployed entry followed). Otherwise: not deployed yet.
    """
    for entry in reversed(status.history):
        if entry.revision == revision:
            return entry.at if entry.outcome in DEPLOYED_OUTCOMES else None
        if entry.outcome == "Superseded" and entry.reason.startswith(f"replaced by {revision} "):
            return None  # deployed directly over a stable that never got ready, and not announced since
    if len(status.history) >= HISTORY_LIMIT:
        return status.history[0].at
    return None


def upgrade_status(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """`status` with `stable.deployedAt` derived when an older operator left it out."""
    stable = status.stable
    if stable is None or stable.revision is None or stable.deployed_at is not None:
        return status
    deployed_at = deployed_at_from_history(status, stable.revision)
    if deployed_at is None:
        return status
    track: TrackStatus = stable.model_copy(update={"deployed_at": deployed_at})
    return status.model_copy(update={"stable": track})
