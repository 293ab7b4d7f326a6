"""A kubeconfig that authenticates as a ServiceAccount (a token from the TokenRequest API), so a
test runs the operator with exactly the permissions the shipped RBAC grants it, as in a cluster.

Used by the operator fixture in tests/conftest.py and by the namespaced-RBAC tests.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devcluster.localcluster import Cluster


def service_account_kubeconfig(cluster: Cluster, namespace: str, name: str, out: Path,
                               duration: str = "6h") -> Path:
    """Write a kubeconfig for ServiceAccount `namespace/name` to `out` and return it."""
    token = cluster.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").strip()
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": cluster.server,
                                                   "certificate-authority": str(cluster.pki / "ca.crt")}}],
        "users": [{"name": f"{namespace}-{name}", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": f"{namespace}-{name}",
                                                "namespace": namespace}}],
        "current-context": "sa",
    }
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out
