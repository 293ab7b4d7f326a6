"""The phase and one-line message of a ModelDeployment, derived from its status (never stored as the
thing that drives decisions, as in Argo Rollouts' rolloututil). Called by `machine.next_state` at the
end of a tick; `hold` is the tick's reason for not moving on, when it has one.
"""

from __future__ import annotations

from datetime import datetime

from modelops.api.durations import parse_duration
from modelops.api.rollout_spec import Step
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from modelops.api.timefmt import parse_time

DEPLOYING = "Deploying"
HEALTHY = "Healthy"
DEGRADED = "Degraded"
PROGRESSING = "Progressing"
PAUSED = "Paused"
ANALYSING = "Analysing"
INCONCLUSIVE = "Inconclusive"
PROMOTING = "Promoting"
ROLLING_BACK = "RollingBack"
ABORTED = "Aborted"
PHASES = (DEPLOYING, HEALTHY, DEGRADED, PROGRESSING, PAUSED, ANALYSING, INCONCLUSIVE, PROMOTING,
          ROLLING_BACK, ABORTED)

# History outcomes after which a revision served at full strength (for display and `undo`; decisions
# read `status.stable.deployedAt`).
DEPLOYED_OUTCOMES = ("Deployed", "Promoted")

def describe_step(step: Step) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause until promoted"
    if step.analysis is not None:
        return f"analysis x{step.analysis.count}"
    return "step"


def pause_remaining(step: Step, started_at: str | None, now: datetime) -> float | None:
    """Seconds left in a timed pause step (None: not a timed pause)."""
    if step.pause is None or not step.pause.duration:
        return None
    started = parse_time(started_at) if started_at else now
    elapsed = (now - started).total_seconds()
    return max(0.0, parse_duration(step.pause.duration).total_seconds() - elapsed)


def derive_phase(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime, hold: str | None = None
) -> tuple[str, str]:
    """(phase, message) for printer columns and people."""
    stable, canary = status.stable, status.canary
    total = spec.serving.total(stable.replicas if stable is not None else None)
    if stable is None or stable.revision is None:
        return DEPLOYING, "nothing deployed yet"
    stable_name = f"{spec.model.name} v{stable.model_version} ({stable.revision})"
    if canary is None or canary.revision is None:
        if stable.ready_replicas < total:
            if stable.deployed_at is not None:
                return DEGRADED, f"{stable_name}: only {stable.ready_replicas}/{total} pods ready"
            return DEPLOYING, f"deploying {stable_name}: {stable.ready_replicas}/{total} pods ready"
        message = f"{stable_name} serving on {stable.ready_replicas}/{total} pods"
        if status.previous is not None:
            message += (
                f"; v{status.previous.model_version} ({status.previous.revision}) kept for a quick undo"
                f" until {status.previous.until}"
            )
        if status.pinned is not None:
            message += f"; pinned by undo (spec asks for {status.pinned.replaces})"
        return HEALTHY, message
    canary_name = f"v{canary.model_version} ({canary.revision})"
    if canary.aborted:
        return ABORTED, (
            f"canary {canary_name} aborted: {canary.abort_reason}; stable v{stable.model_version} takes all "
            "traffic (retry, or change spec)"
        )
    if canary.rollback:
        return ROLLING_BACK, f"rolling back to {canary_name}: {canary.ready_replicas}/{total} pods ready"
    steps = spec.rollout.steps
    if canary.step_index >= len(steps):
        return PROMOTING, f"promoting {canary_name}: {canary.ready_replicas}/{total} pods ready"
    step = steps[canary.step_index]
    prefix = (
        f"canary {canary_name} at {canary.weight}% (observed {canary.observed_weight}%), "
        f"step {canary.step_index + 1}/{len(steps)} {describe_step(step)}"
    )
    if canary.paused:
        return PAUSED, f"{prefix}: paused by user (resume or promote)"
    analysis = status.analysis
    if analysis is not None and analysis.phase == "Inconclusive":
        return INCONCLUSIVE, f"{prefix}: {hold or 'holding: analysis inconclusive'}"
    if step.pause is not None and not step.pause.duration:
        return PAUSED, f"{prefix}: {hold or 'paused until promoted'}"
    if hold:
        return (ANALYSING if step.analysis is not None else PROGRESSING), f"{prefix}: {hold}"
    if step.analysis is not None:
        return ANALYSING, f"{prefix}: {canary.analysis_step_successes}/{step.analysis.count} successful runs"
    return PROGRESSING, prefix
