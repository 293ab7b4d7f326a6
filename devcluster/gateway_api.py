"""Install the Gateway API CRDs (standard channel) into the local control plane.

The CRD files come from the released `sigs.k8s.io/gateway-api` Go module (fetched through the Go
module proxy into the module cache, pinned in versions.env), so the `GatewayAPI` router is tested
against the real HTTPRoute schema. Called by `localcluster.up()`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from devcluster import build


def crd_dir() -> Path:
    """The module's config/crd/standard directory, downloaded once into the Go module cache."""
    version = build.versions()["GATEWAY_API_VERSION"]
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/gateway-api@v{version}"],
                              cwd=empty, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"cannot download sigs.k8s.io/gateway-api v{version}: {proc.stdout}{proc.stderr}")
    return Path(json.loads(proc.stdout)["Dir"]) / "config" / "crd" / "standard"


def manifests() -> list[Path]:
    return sorted(crd_dir().glob("gateway.networking.k8s.io_*.yaml"))
