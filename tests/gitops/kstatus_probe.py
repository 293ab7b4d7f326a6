"""Run Flux's readiness computation (kstatus, sigs.k8s.io/cli-utils) on one object.

The Go probe in tests/gitops/kstatus is built and cached by devcluster/build.py (`make tools`).
Used by tests/unit/test_gitops_health.py.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from devcluster import build


def compute(obj: dict[str, Any]) -> dict[str, Any]:
    """{"status": Current|InProgress|Failed|..., "message": ..., "conditions": [...]}."""
    binary = build.ensure_binaries(group="tools") / "kstatus"
    proc = subprocess.run([str(binary)], input=json.dumps(obj), capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"kstatus probe failed: {proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
