"""Run the operator as its own ServiceAccount with the shipped RBAC, not as cluster admin.

`operator_kubeconfig(cluster, path, watch_namespace=None)` applies the RBAC objects of the install
(cluster-wide from manifests/base, or namespaced from manifests/overlays/namespaced retargeted at
`watch_namespace`), mints a token for `modelops-operator` in `modelops-system` and writes a kubeconfig
that uses it. A permission the install forgot then fails a test instead of a user's install.
Used by tests/integration/test_manifests.py; the e2e fixtures may start the operator with it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from devcluster.localcluster import Cluster
from tests.gitops import render

SERVICE_ACCOUNT = "modelops-operator"
OPERATOR_NAMESPACE = "modelops-system"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def rbac_objects(watch_namespace: str | None = None) -> list[dict[str, Any]]:
    """The install's RBAC objects (namespaced mode: the Role and RoleBinding moved to `watch_namespace`)."""
    overlay = "base" if watch_namespace is None else "overlays/namespaced"
    out = []
    for obj in render.objects(render.kustomize(overlay)):
        if obj["kind"] not in RBAC_KINDS:
            continue
        meta = obj["metadata"]
        if watch_namespace is not None and meta.get("namespace") == "models":
            meta["namespace"] = watch_namespace
        out.append(obj)
    return out


def apply_rbac(cluster: Cluster, watch_namespace: str | None = None) -> list[dict[str, Any]]:
    cluster.kubectl("apply", "--server-side", "-f", str(render.MANIFESTS / "base" / "namespace.yaml"))
    objs = rbac_objects(watch_namespace)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                    input="\n---\n".join(json.dumps(o) for o in objs))
    return objs


def remove_rbac(cluster: Cluster, objs: list[dict[str, Any]]) -> None:
    for obj in reversed(objs):
        meta = obj["metadata"]
        args = ["delete", obj["kind"], meta["name"], "--ignore-not-found", "--wait=false"]
        if meta.get("namespace"):
            args += ["-n", meta["namespace"]]
        cluster.kubectl(*args, check=False)


def operator_kubeconfig(cluster: Cluster, path: Path, watch_namespace: str | None = None) -> Path:
    """Apply the shipped RBAC and write a kubeconfig authenticating as the operator's ServiceAccount."""
    apply_rbac(cluster, watch_namespace)
    token = cluster.kubectl("create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--duration=2h").strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": SERVICE_ACCOUNT,
                                                      "namespace": OPERATOR_NAMESPACE}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def refusals(logs: list[Path]) -> list[str]:
    """Lines of operator logs in which the shipped RBAC refused one of the operator's requests."""
    marker = f'forbidden: User "system:serviceaccount:{OPERATOR_NAMESPACE}:'
    return [line for log in logs for line in log.read_text(errors="replace").splitlines() if marker in line]
