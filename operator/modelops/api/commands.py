"""Annotations as commands: how `kubectl modelops` asks the operator for an imperative action.

The plugin writes `modelops.dev/<command>` with JSON `{"value": "...", "nonce": "..."}`; a plain
string is taken as a nonce with an empty value, so `kubectl annotate mdep/x modelops.dev/abort=$(date +%s)`
works too. A nonce already recorded in status.handledCommands is not run again. Each state machine
names its own commands (`modelops.rollout.commands`, `modelops.retraining.observed`) and parses them
with `parse_command_annotations`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ANNOTATION_PREFIX = "modelops.dev/"


@dataclass(frozen=True)
class Command:
    """One imperative request; a nonce already recorded in status.handledCommands is not re-run."""

    name: str
    value: str
    nonce: str


def parse_command_annotations(annotations: Mapping[str, str], names: Iterable[str]) -> tuple[Command, ...]:
    """The commands among `names` found in `annotations`, in the order of `names`; no nonce, no command."""
    commands: list[Command] = []
    for name in names:
        raw = annotations.get(ANNOTATION_PREFIX + name)
        if raw is None:
            continue
        value, nonce = "", raw
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            value = str(parsed.get("value", "") or "")
            nonce = str(parsed.get("nonce", "") or "")
        if nonce:
            commands.append(Command(name=name, value=value, nonce=nonce))
    return tuple(commands)
