"""Go-style durations (`30s`, `1m30s`, `250ms`): the spec's one way to write a length of time.

`Duration` is the field type (its pattern goes into the CRD), `parse_duration` turns a value into a
timedelta for the state machines and builders; the CEL guard that compares durations is
`modelops.api.validation.duration_at_least`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import Field

DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[str, Field(pattern=DURATION, max_length=32)]


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration such as `90s`, `1m30s` or `250ms`; raise ValueError otherwise."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)
