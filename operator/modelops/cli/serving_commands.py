"""`modelops train`, `modelops fetch` and `modelops serve`: the tools that run in serving pods."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Add the serving subcommands (being written under the serving issue)."""
