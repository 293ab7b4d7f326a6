"""The install manifests (kustomize base: namespace, CRD, least-privilege RBAC, operator
Deployment under the restricted Pod Security Standard) are accepted by the real API server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cluster.localcluster import Cluster

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("overlay", ["base", "overlays/kind"])
def test_install_manifests_apply_cleanly(cluster: Cluster, overlay: str) -> None:
    rendered = cluster.kubectl("kustomize", str(ROOT / "manifests" / overlay))
    assert "kind: ClusterRole" in rendered and "kind: CustomResourceDefinition" in rendered
    # A server-side dry run cannot create the namespace its other objects go into; make it for real.
    cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "namespace.yaml"))
    proc = subprocess.run([str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply",
                           "--dry-run=server", "-f", "-"], input=rendered, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # No warning about the restricted Pod Security Standard for the operator's pods.
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr
