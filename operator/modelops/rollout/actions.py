"""What the state machine decided: the new status and the actions the controller carries out.

Actions are desired state, safe to apply again on every tick (ensure, delete, route), and derived
from the decided status plus what was observed, so a tick that sees that status after its actions
were lost issues them again; events are emitted only on the tick that makes a transition, so a
repeated tick emits none. The controller writes status first, then applies `Decision.actions` in
order: scale-ups come before the routing change and scale-downs after it, so traffic never points
at pods that are not there. Events are in the order of the transitions they announce; post them in
tuple order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelops.api.events import EmitEvent
from modelops.api.spec import ModelSource
from modelops.api.status import ModelDeploymentStatus

Track = Literal["stable", "canary", "previous"]


@dataclass(frozen=True)
class EnsureDeployment:
    """The Deployment `<mdep>-<revision>` exists with `replicas` pods.

    Create it from `model` + the current spec.serving when missing; when present, set only its
    replicas (its pod template is never rewritten: that would restart pods).
    """

    revision: str
    replicas: int
    track: Track
    model: ModelSource | None = None


@dataclass(frozen=True)
class DeleteDeployment:
    revision: str


@dataclass(frozen=True)
class SetRouting:
    """Traffic: `<mdep>-stable` selects `stable_revision`, `<mdep>-canary` `canary_revision`, and the
    HTTPRoute sends `canary_weight`% to the canary (GatewayAPI). ReplicaRatio has nothing to write."""

    stable_revision: str
    canary_revision: str | None
    canary_weight: int


Action = EnsureDeployment | DeleteDeployment | SetRouting | EmitEvent


@dataclass(frozen=True)
class Decision:
    status: ModelDeploymentStatus
    actions: tuple[Action, ...]
    requeue_after: float | None  # seconds until the next tick is needed; None: only on change

    @property
    def events(self) -> tuple[EmitEvent, ...]:
        return tuple(a for a in self.actions if isinstance(a, EmitEvent))

    @property
    def routing(self) -> SetRouting | None:
        return next((a for a in self.actions if isinstance(a, SetRouting)), None)

    def replicas_of(self, revision: str) -> int | None:
        """The replicas this decision wants for `revision` (None: not ensured this tick)."""
        found = [a.replicas for a in self.actions if isinstance(a, EnsureDeployment) and a.revision == revision]
        return found[-1] if found else None
