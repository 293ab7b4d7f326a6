"""Fixtures of the end-to-end scenarios: trained models on a claim, a real node, Prometheus, and the
operator installed by its Helm chart (two replicas, one leader, the chart's RBAC, its pods from the
operator image), once per test module.

Every test namespace enforces the restricted Pod Security Standard, so the API server refuses any pod
the operator builds that the standard forbids, and binds two claims: `models` (the trained models,
read-only for the servers) and `data` (the test's own tmp_path: datasets, retraining output, the
request log).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.scenario import DATA_CLAIM, MODELS_CLAIM, TrainedModel, share, train_demo_models
from devcluster import claims, localcluster, realnode
from devcluster.chart import ChartOperator
from devcluster.localcluster import Cluster
from devcluster.prometheus import Prometheus
from tests.conftest import wait_for
from tests.gitops import rbac

RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    root = tmp_path_factory.mktemp("models")
    share(root, MODELS_CLAIM)
    trained = train_demo_models(root)
    claims.prepare(root)
    return trained


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> realnode.NodeSet:
    """The cluster's real node(s); the `cluster` fixture started one, with the images of dist/."""
    if not localcluster.image_archives():
        pytest.fail("no image archives in dist/: run `make image` (make test does)")
    wait_for(lambda: localcluster.real_nodes_ready(cluster, 1), "a real node Ready", timeout=90)
    return localcluster.node_set(cluster)


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster, real_node: realnode.NodeSet) -> Iterator[Prometheus]:
    prom = Prometheus(str(cluster.kubeconfig), cluster.port_base + 90)
    prom.start()
    yield prom
    prom.stop()


@pytest.fixture(scope="module")
def installed_operator(cluster: Cluster, real_node: realnode.NodeSet,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartOperator]:
    log_dir = tmp_path_factory.mktemp("operator")
    chart = ChartOperator(cluster, log_dir, prometheus_allow=(realnode.host_ip(),)).install()
    yield chart
    chart.uninstall()
    sys.stdout.write(f"\noperator logs: {log_dir}\n")


@pytest.fixture
def operator(installed_operator: ChartOperator) -> Iterator[ChartOperator]:
    yield installed_operator
    paths = installed_operator.save_logs()
    # A scenario that passed after a retry still shows a refusal here: the chart must grant it.
    if denied := rbac.refusals(paths):
        pytest.fail("the chart's RBAC refused the operator:\n" + "\n".join(denied[:5]))


@pytest.fixture
def e2e_log_dir(tmp_path: Path) -> Path:
    os.environ.setdefault("MODELOPS_E2E", "1")
    return tmp_path


@pytest.fixture
def namespace(cluster: Cluster, models: dict[str, TrainedModel], tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh restricted namespace per test with the `models` and `data` claims, deleted afterwards."""
    name = f"e-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, RESTRICTED)
    models_root = next(iter(models.values())).directory.parent
    claims.provision(cluster, name, MODELS_CLAIM, models_root)
    share(tmp_path, DATA_CLAIM)
    claims.provision(cluster, name, DATA_CLAIM, tmp_path)
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, "-o", "name", check=False),
             "the namespace's default service account", timeout=60)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    claims.release(cluster, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
