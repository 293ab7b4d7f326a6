"""Timestamps in status: one format, written and read back exactly (the state machines compare them).

Shared by `modelops.rollout`, `modelops.retraining`, the controller and the CLI. Time is an input of
the pure core: the controller passes `now` (from `utc_now`, or a fake clock in tests); nothing in
`rollout/` or `retraining/` reads the system clock itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock, for the controller to pass in as `now`."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime; naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC; microseconds kept when present so that a value read back compares equal."""
    moment = as_utc(moment)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The inverse of `format_time` (also accepts any RFC 3339 time Kubernetes writes)."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
