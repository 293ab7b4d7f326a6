"""Shared fixtures: the real local control plane (session-wide) and a running operator.

The control plane is built and started by devcluster; when it cannot start, every test that
needs it errors (it never skips). A control plane already running from this checkout (`make
cluster-up`) is reused and left running.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devcluster import localcluster
from devcluster.operator import CRD_FILE, OperatorProcess
from tests import models
from tests.gitops import rbac

# The deliberately bad models (tests/models/modelops_testing) for this process and its children.
models.install()

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 60, interval: float = 0.2) -> T:
    """Poll until `check` returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


@pytest.fixture(scope="session")
def cluster() -> Iterator[localcluster.Cluster]:
    c = localcluster.default()
    was_running = localcluster.healthy(c)
    c = localcluster.up(c)  # raises ClusterError: the test errors, never skips
    localcluster.apply_crd(c, CRD_FILE, "modeldeployments.modelops.dev")
    yield c
    if not was_running and not os.environ.get("MODELOPS_KEEP_CLUSTER"):
        localcluster.down(c, quiet=True)


@pytest.fixture
def operator(cluster: localcluster.Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    # The operator's own ServiceAccount under the shipped RBAC, not the admin kubeconfig: a permission
    # the install forgot fails the scenario that needs it.
    kubeconfig = rbac.operator_kubeconfig(cluster, tmp_path / "operator.kubeconfig")
    op = OperatorProcess(cluster, tmp_path / "operator.log", kubeconfig=kubeconfig,
                         pod_namespace=rbac.OPERATOR_NAMESPACE)
    op.start()
    yield op
    exited = op.stop()
    sys.stdout.write(f"\noperator log: {op.log}\n")
    if not exited:  # a pod would be SIGKILLed with its Lease held: the standby waits a lease duration
        pytest.fail("the operator did not exit within 20 s of SIGTERM")
    # A scenario that passed after a retry still shows a refusal here: the install must grant it.
    if denied := rbac.refusals([op.log]):
        pytest.fail("the shipped RBAC refused the operator:\n" + "\n".join(denied[:5]))


@pytest.fixture
def namespace(cluster: localcluster.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted (without waiting) afterwards."""
    name = f"t-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, "-o", "name", check=False),
             "the namespace's default service account", timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
