"""The imperative requests of `kubectl modelops` (promote, abort, pause, resume, retry, undo) as data.

A request is one `modelops.dev/<command>` annotation in the format the controller parses
(`modelops.rollout.commands.parse_commands`): JSON `{"value": ..., "nonce": ...}`, a fresh nonce per
request so that asking twice acts twice. Requests never touch spec: Git owns spec. The plugin
(modelops.cli.kubectl) builds a request here, checks it against the status it just read
(`refusal`, so an SRE hears at once what the controller would only put in a CommandIgnored
Event), patches the annotation, and, with --wait, waits for `handled`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from modelops.api.commands import ANNOTATION_PREFIX
from modelops.api.status import ModelDeploymentStatus
from modelops.rollout.commands import (
    COMMAND_ABORT,
    COMMAND_PAUSE,
    COMMAND_PROMOTE,
    COMMAND_RESUME,
    COMMAND_RETRY,
    COMMAND_UNDO,
    PROMOTE_FULL,
    PROMOTE_STEP,
)
from modelops.rollout.phase import DEPLOYED_OUTCOMES


@dataclass(frozen=True)
class Request:
    """One command for the controller, identified by its nonce."""

    command: str
    value: str
    nonce: str

    @property
    def annotation(self) -> str:
        return ANNOTATION_PREFIX + self.command

    @property
    def annotation_value(self) -> str:
        return json.dumps({"value": self.value, "nonce": self.nonce}, sort_keys=True)

    def patch(self) -> dict[str, Any]:
        """A JSON merge patch that writes this request and nothing else."""
        return {"metadata": {"annotations": {self.annotation: self.annotation_value}}}

    def describe(self) -> str:
        if self.command == COMMAND_PROMOTE:
            return "promote to the end of the steps (full)" if self.value == PROMOTE_FULL else "promote one step"
        if self.command == COMMAND_UNDO:
            return f"undo to revision {self.value}" if self.value else "undo to the previous revision"
        return self.command


def new_request(command: str, value: str = "", nonce: str | None = None) -> Request:
    """A request with a fresh nonce (uuid4) unless one is given."""
    if command == COMMAND_PROMOTE and value not in (PROMOTE_STEP, PROMOTE_FULL):
        raise ValueError(f"promote takes {PROMOTE_STEP!r} or {PROMOTE_FULL!r}, not {value!r}")
    return Request(command=command, value=value, nonce=nonce or uuid.uuid4().hex)


def handled(status: ModelDeploymentStatus, request: Request) -> bool:
    """Whether the controller has taken this request (accepted or ignored: see its Events)."""
    return status.handled_commands.get(request.command) == request.nonce


def undo_candidates(status: ModelDeploymentStatus) -> list[str]:
    """Revisions an undo can go back to, newest first: the baking previous one, then history entries that
    served at full strength with a known model (what the controller's undo accepts)."""
    found: list[str] = []
    if status.previous is not None:
        found.append(status.previous.revision)
    stable = status.stable.revision if status.stable is not None else None
    for entry in reversed(status.history):
        deployed = entry.outcome in DEPLOYED_OUTCOMES and entry.uri is not None
        if deployed and entry.revision != stable and entry.revision not in found:
            found.append(entry.revision)
    return found


def refusal(request: Request, status: ModelDeploymentStatus) -> str | None:
    """Why the controller would ignore this request given the status just read, or None when it may act."""
    canary = status.canary if status.canary is not None and status.canary.revision is not None else None
    running = canary is not None and not canary.aborted and not canary.rollback
    if request.command in (COMMAND_PROMOTE, COMMAND_ABORT, COMMAND_PAUSE) and not running:
        if canary is not None and canary.aborted and request.command == COMMAND_PROMOTE:
            return f"canary {canary.revision} was aborted; use retry to start it again"
        return "no canary in progress"
    if request.command == COMMAND_RETRY and (canary is None or not canary.aborted):
        return "no aborted canary to retry"
    if request.command == COMMAND_RESUME and not running:
        return "no canary in progress"
    if request.command == COMMAND_UNDO:
        return _undo_refusal(request.value, status)
    return None


def _undo_refusal(wanted: str, status: ModelDeploymentStatus) -> str | None:
    stable = status.stable.revision if status.stable is not None else None
    if stable is None:
        return "nothing deployed yet"
    candidates = undo_candidates(status)
    known = f" (can go back to: {', '.join(candidates)})" if candidates else " (no earlier revision to go back to)"
    if not wanted:
        return None if candidates else "no earlier revision with a known model in history"
    if wanted == stable:
        return f"{wanted} is already stable (to stop a canary, use abort){known}"
    if wanted in candidates:
        return None
    entries = [e for e in status.history if e.revision == wanted]
    if not entries:
        return f"no revision {wanted} in history{known}"
    last = entries[-1]
    if last.outcome not in DEPLOYED_OUTCOMES:
        return f"revision {wanted} never served at full strength (last outcome: {last.outcome}){known}"
    return f"revision {wanted} has no model recorded in history{known}"
