"""The context of one tick: what `next_state` was given and what it has decided so far.

Every step of the tick (`modelops.rollout.stable`, `canary`, `steps`, `promotion`, `commands`, ...)
reads and updates one `Tick`, in the manner of Argo Rollouts' rolloutContext; `machine.next_state`
turns it into a Decision at the end. Helpers every step uses live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelops.api.events import EVENT_NORMAL, EVENT_WARNING, EmitEvent
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import (
    HISTORY_LIMIT,
    AnalysisStatus,
    CanaryStatus,
    HistoryEntry,
    ModelDeploymentStatus,
    PinnedRevision,
    PreviousStatus,
    TrackStatus,
)
from modelops.api.timefmt import format_time
from modelops.rollout.actions import EnsureDeployment, SetRouting, Track
from modelops.rollout.conditions import REASON_PODS_FAILING
from modelops.rollout.observed import Observed
from modelops.traffic.router import Router

# While waiting on pods the controller is also woken by Deployment events; this is the fallback.
READINESS_POLL_SECONDS = 5.0
# Never ask for a tick sooner than this: a due-but-not-taken measurement must not spin the loop.
MIN_REQUEUE_SECONDS = 1.0


@dataclass(frozen=True)
class Target:
    """The revision this tick moves towards (spec's, or an undo pin's) and the model it runs."""

    revision: str
    model_version: str | None
    model: ModelSource | None


@dataclass
class Tick:
    """The working state of one call of `next_state`; turned into a Decision at the end."""

    spec: ModelDeploymentSpec
    old: ModelDeploymentStatus
    observed: Observed
    now: datetime
    router: Router
    stable: TrackStatus | None
    canary: CanaryStatus | None
    analysis: AnalysisStatus | None
    previous: PreviousStatus | None
    pinned: PinnedRevision | None
    history: list[HistoryEntry]
    handled: dict[str, str]
    ensures: list[EnsureDeployment] = field(default_factory=list)
    routing: SetRouting | None = None
    events: list[EmitEvent] = field(default_factory=list)
    requeue: list[float] = field(default_factory=list)
    hold: str | None = None  # why the canary does not move on this tick
    stalled: tuple[str, str] | None = None  # (reason, message) when it cannot move on without help
    note: str | None = None  # what status should explain besides the phase (e.g. maxSurge binding)
    abort_reason_code: str | None = None

    @property
    def now_text(self) -> str:
        return format_time(self.now)

    @property
    def total(self) -> int:
        # HPA mode: the autoscaler's choice for the stable Deployment, read back, is the size.
        stable = self.observed.deployment(self.stable.revision) if self.stable is not None else None
        return self.spec.serving.total(stable.replicas if stable is not None else None)

    @property
    def observed_weight(self) -> int:
        """The share the router carries to this tick's canary.

        The controller measured it for the canary in the status it read (`Observed.weight_revision`);
        a canary started on this tick carries nothing yet (the weight read belonged to the one just
        replaced), and saying otherwise would make the status depend on whether the previous tick's
        actions were carried out.
        """
        measured_for = self.observed.weight_revision
        if measured_for is None and self.old.canary is not None:
            measured_for = self.old.canary.revision
        if self.canary is None or measured_for is None or self.canary.revision != measured_for:
            return 0
        return min(max(self.observed.observed_weight, 0), 100)

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(EmitEvent(EVENT_WARNING if warning else EVENT_NORMAL, reason, message[:1024]))

    def record(self, revision: str, version: str | None, model: ModelSource | None, outcome: str,
               reason: str) -> None:
        entry = HistoryEntry.model_validate(
            {
                "revision": revision,
                "modelVersion": version or "",
                "outcome": outcome,
                "reason": reason[:1024],
                "at": self.now_text,
                "uri": model.uri if model else None,
                "sha256": model.sha256 if model else None,
                "format": model.format if model else None,
            }
        )
        self.history = [*self.history, entry][-HISTORY_LIMIT:]

    def ensure(self, revision: str, replicas: int, track: Track, model: ModelSource | None) -> None:
        self.ensures = [e for e in self.ensures if e.revision != revision]
        self.ensures.append(EnsureDeployment(revision, max(replicas, 0), track, model))

    def wait(self, seconds: float) -> None:
        self.requeue.append(max(seconds, MIN_REQUEUE_SECONDS))


def display_name(tick: Tick, version: str | None, revision: str | None) -> str:
    """`<model> v<version> (<revision>)`, as Events and messages name a revision."""
    return f"{tick.spec.model.name} v{version} ({revision})"


def status_so_far(tick: Tick) -> ModelDeploymentStatus:
    """The status this tick has decided so far (before phase, message and conditions)."""
    return tick.old.model_copy(
        update={
            "observed_generation": tick.observed.generation,
            "stable": tick.stable,
            "canary": tick.canary,
            "analysis": tick.analysis,
            "previous": tick.previous,
            "pinned": tick.pinned,
            "history": tick.history,
            "handled_commands": tick.handled,
        }
    )


def report_pod_problem(tick: Tick, revision: str | None) -> None:
    """A canary whose pods cannot start holds at its weight (it never takes traffic) and says why."""
    problem = tick.observed.problem(revision)
    if problem:
        tick.hold = f"{tick.hold}: {problem}"
        tick.stalled = (REASON_PODS_FAILING, f"canary {revision} pods are not starting: {problem}")
