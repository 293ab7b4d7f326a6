"""Where the test-only models live, and how a process gets at them.

tests/models holds the `modelops_testing` package (deliberately slow or failing models). It is
put on ``sys.path`` and ``PYTHONPATH`` by tests/conftest.py, and on the pods' ``PYTHONPATH`` by the
kubelet stand-in, so test model servers can load those models; the product never imports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MODELS_PATH = Path(__file__).resolve().parent


def python_path(existing: str | None = None) -> str:
    """``PYTHONPATH`` with tests/models in front of ``existing`` (default: this process's)."""
    current = os.environ.get("PYTHONPATH", "") if existing is None else existing
    parts = [str(MODELS_PATH), *(p for p in current.split(os.pathsep) if p and p != str(MODELS_PATH))]
    return os.pathsep.join(parts)


def install() -> None:
    """Make modelops_testing importable here and in every subprocess started afterwards."""
    if str(MODELS_PATH) not in sys.path:
        sys.path.insert(0, str(MODELS_PATH))
    os.environ["PYTHONPATH"] = python_path()


def train_command(*args: str) -> list[str]:
    """argv for `modelops train ARGS` that also takes --slow-ms / --fail-above / --fail-feature."""
    install()
    return [sys.executable, "-m", "modelops_testing", "train", *args]
