"""Run the Argo CD health check (manifests/argocd/health-modeldeployment.lua) in a real Lua 5.1.

Argo CD evaluates health scripts in gopher-lua (Lua 5.1) with the object as the global `obj` and the
script's return value as the health; this does the same with Debian's lua5.1: the object becomes a
Lua table constructor, the script is loaded as a chunk and called. Used by tests/unit/test_gitops_health.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HEALTH_SCRIPT = REPO / "manifests" / "argocd" / "health-modeldeployment.lua"


class LuaMissing(Exception):
    """No Lua 5.1 interpreter on PATH."""


def interpreter() -> str:
    found = shutil.which("lua5.1")
    if found is None:
        raise LuaMissing("lua5.1 not found: `make system-deps` installs Debian's lua5.1")
    return found


def _string(text: str) -> str:
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte}")  # Lua 5.1 decimal escape, any byte
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua expression for a JSON value (null becomes nil, as in Argo CD's conversion)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_string(k)}] = {to_lua(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def health(obj: dict[str, Any], script: Path = HEALTH_SCRIPT) -> tuple[str, str]:
    """(status, message) as Argo CD would compute them."""
    program = (
        f"obj = {to_lua(obj)}\n"
        f"local check = assert(loadfile({_string(str(script))}))\n"
        "local hs = check()\n"
        "io.write(tostring(hs.status), '\\n', tostring(hs.message or ''))\n"
    )
    proc = subprocess.run([interpreter(), "-"], input=program, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"lua5.1 failed: {proc.stderr}")
    status, _, message = proc.stdout.partition("\n")
    return status, message
