"""PersistentVolumes the harness provisions for models and data: a hostPath PV bound to a claim.

A claim's directory is created as a dynamic provisioner with `fsGroup` support leaves a new volume:
owned by root, group 65532 (the pods' fsGroup) with the setgid bit, group-writable. hostPath volumes
get no fsGroup treatment from the kubelet, so the harness gives the directory what a CSI volume gets
(docs/install.md "Storage" says what the product needs: fsGroup-aware volumes, or this ownership).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from devcluster.localcluster import Cluster

STORAGE_CLASS = "modelops-local"
POD_GROUP = 65532


def prepare(directory: Path) -> Path:
    """Make `directory` (and what is in it) look like a freshly provisioned volume written by the pods'
    group: root-owned, group 65532, setgid directories, group-writable."""
    directory.mkdir(parents=True, exist_ok=True)
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, "."]:
            path = Path(root) / name
            os.chown(path, 0, POD_GROUP)
            path.chmod(0o2775)
        for name in files:
            path = Path(root) / name
            os.chown(path, 0, POD_GROUP)
            path.chmod(0o664)
    # A hostPath's parents must be traversable by the pods' user.
    for parent in directory.resolve().parents:
        if parent.stat().st_mode & 0o001 == 0:
            parent.chmod(parent.stat().st_mode | 0o001)
    return directory


def provision(cluster: Cluster, namespace: str, claim: str, directory: Path | None = None, *,
              size: str = "1Gi") -> Path:
    """A PV on `directory` (default: `.cluster/claims/<namespace>/<claim>`) and the claim
    `namespace/claim` bound to it; returns the directory."""
    directory = directory or cluster.state / "claims" / namespace / claim
    prepare(directory)
    pv = f"{namespace}-{claim}"[:253]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "PersistentVolume",
         "metadata": {"name": pv, "labels": {"modelops.dev/test-namespace": namespace}},
         "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteMany"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                  "hostPath": {"path": str(directory.resolve()), "type": "Directory"},
                  "claimRef": {"namespace": namespace, "name": claim}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": STORAGE_CLASS, "volumeName": pv,
                  "resources": {"requests": {"storage": size}}}},
    ]}))
    return directory


def release(cluster: Cluster, namespace: str) -> None:
    """Delete the PVs made for `namespace` (the claims go with the namespace)."""
    cluster.kubectl("delete", "pv", "-l", f"modelops.dev/test-namespace={namespace}", "--wait=false", check=False)
