"""The rollout's commands: annotations `kubectl modelops` writes (promote, abort, pause, resume,
retry, undo), parsed and handled at the start of a tick.

The annotation format and `Command` are shared with retraining (`modelops.api.commands`); each
command is handled once per nonce, and stopping wins over moving on when several are new in one tick.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelops.api.commands import Command, parse_command_annotations
from modelops.api.spec import ModelSource
from modelops.api.status import CanaryStatus, PinnedRevision
from modelops.api.timefmt import format_time, parse_time
from modelops.rollout.abort import abort
from modelops.rollout.conditions import REASON_ABORTED_BY_USER
from modelops.rollout.context import Target, Tick
from modelops.rollout.events import EVENT_COMMAND, EVENT_COMMAND_IGNORED

COMMAND_PROMOTE = "promote"
COMMAND_ABORT = "abort"
COMMAND_PAUSE = "pause"
COMMAND_RESUME = "resume"
COMMAND_RETRY = "retry"
COMMAND_UNDO = "undo"
# Handled in this order when several are new in one tick: stopping wins over moving on.
COMMANDS = (COMMAND_ABORT, COMMAND_UNDO, COMMAND_RETRY, COMMAND_PAUSE, COMMAND_RESUME, COMMAND_PROMOTE)
PROMOTE_STEP = "step"
PROMOTE_FULL = "full"

ABORTED_BY_USER = "aborted by user"


def parse_commands(annotations: Mapping[str, str]) -> tuple[Command, ...]:
    """Commands from `modelops.dev/<command>` annotations (format: `modelops.api.commands`)."""
    return parse_command_annotations(annotations, COMMANDS)


def apply_commands(tick: Tick) -> None:
    """Handle each new command once (by nonce), in COMMANDS order; a refused one is a Warning Event."""
    order = {name: i for i, name in enumerate(COMMANDS)}
    for command in sorted(tick.observed.commands, key=lambda c: order.get(c.name, len(order))):
        if command.name not in order or tick.handled.get(command.name) == command.nonce:
            continue
        tick.handled[command.name] = command.nonce
        refusal = _HANDLERS[command.name](tick, command)
        if refusal is None:
            value = f" {command.value}" if command.value else ""
            tick.event(EVENT_COMMAND, f"{command.name}{value} (request {command.nonce})")
        else:
            tick.event(EVENT_COMMAND_IGNORED, f"{command.name} ignored: {refusal}", warning=True)


def _running_canary(tick: Tick) -> CanaryStatus | None:
    canary = tick.canary
    if canary is None or canary.aborted or canary.rollback:
        return None
    return canary


def _command_abort(tick: Tick, command: Command) -> str | None:
    if _running_canary(tick) is None:
        return "no canary in progress"
    abort(tick, ABORTED_BY_USER, REASON_ABORTED_BY_USER)
    return None


def _command_retry(tick: Tick, command: Command) -> str | None:
    canary = tick.canary
    if canary is None or not canary.aborted:
        return "no aborted canary to retry"
    tick.canary = canary.model_copy(
        update={"aborted": False, "abort_reason": None, "step_index": 0, "step_started_at": tick.now_text,
                "weight": 0, "paused": False, "analysis_step_successes": 0}
    )
    tick.analysis = None
    return None


def _command_pause(tick: Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress"
    if not canary.paused:
        tick.canary = canary.model_copy(update={"paused": True, "paused_at": tick.now_text})
    return None


def _command_resume(tick: Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress"
    steps = tick.spec.rollout.steps
    at_open_pause = (
        canary.step_index < len(steps)
        and steps[canary.step_index].pause is not None
        and not steps[canary.step_index].pause.duration  # type: ignore[union-attr]
    )
    stalled = tick.analysis is not None and tick.analysis.consecutive_inconclusives > 0
    if not (canary.paused or at_open_pause or stalled):
        return "nothing is paused"
    update: dict[str, object] = {"paused": False, "paused_at": None}
    if canary.paused and canary.paused_at and canary.step_started_at:
        # The step's clock stood still while paused: a timed pause keeps the time it had left.
        held = tick.now - parse_time(canary.paused_at)
        update["step_started_at"] = format_time(parse_time(canary.step_started_at) + held)
    if at_open_pause and not canary.paused:
        update.update(step_index=canary.step_index + 1, step_started_at=tick.now_text, analysis_step_successes=0)
    tick.canary = canary.model_copy(update=update)
    if stalled and tick.analysis is not None:
        tick.analysis = tick.analysis.model_copy(update={"consecutive_inconclusives": 0})
    return None


def _command_promote(tick: Tick, command: Command) -> str | None:
    canary = _running_canary(tick)
    if canary is None:
        return "no canary in progress (after an abort, use retry)"
    steps = len(tick.spec.rollout.steps)
    index = steps if command.value == PROMOTE_FULL else min(canary.step_index + 1, steps)
    tick.canary = canary.model_copy(
        update={"step_index": index, "step_started_at": tick.now_text, "paused": False,
                "analysis_step_successes": 0}
    )
    return None


def _command_undo(tick: Tick, command: Command) -> str | None:
    stable = tick.stable
    if stable is None or stable.revision is None:
        return "nothing deployed yet"
    wanted = command.value.strip()
    found = _undo_target(tick, wanted, stable.revision)
    if found is None:
        return f"no earlier revision {wanted or ''} with a known model in history".replace("  ", " ")
    if found.revision == stable.revision:
        return f"{found.revision} is already stable (to stop a canary, use abort)"
    tick.pinned = PinnedRevision(revision=found.revision, model_version=found.model_version, model=found.model,
                                 replaces=tick.observed.desired.revision)
    return None


def _undo_target(tick: Tick, wanted: str, stable_revision: str) -> Target | None:
    previous = tick.previous
    if previous is not None and wanted in ("", previous.revision):
        return Target(previous.revision, previous.model_version, previous.model)
    for entry in reversed(tick.history):
        if entry.outcome not in ("Promoted", "Deployed") or entry.uri is None:
            continue
        if (wanted and entry.revision != wanted) or (not wanted and entry.revision == stable_revision):
            continue
        model = ModelSource(
            name=tick.spec.model.name,
            version=entry.model_version,
            uri=entry.uri,
            sha256=entry.sha256,
            format="skops" if entry.format == "skops" else "joblib",
        )
        return Target(entry.revision, entry.model_version, model)
    return None


_HANDLERS = {
    COMMAND_ABORT: _command_abort,
    COMMAND_UNDO: _command_undo,
    COMMAND_RETRY: _command_retry,
    COMMAND_PAUSE: _command_pause,
    COMMAND_RESUME: _command_resume,
    COMMAND_PROMOTE: _command_promote,
}
