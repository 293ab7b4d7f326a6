"""Fixtures of the end-to-end scenarios: trained models, the node whose pods really run (a
network namespace per pod, `modelops serve` inside), Prometheus, and a fresh operator per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.scenario import REAL_NODE, TrainedModel, train_demo_models
from devcluster.localcluster import Cluster
from devcluster.netkubelet import NetKubelet, real_cidr
from devcluster.prometheus import Prometheus


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    return train_demo_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[NetKubelet]:
    kubelet = NetKubelet(str(cluster.kubeconfig), REAL_NODE, real_cidr(0))
    kubelet.start()
    yield kubelet
    kubelet.stop()


@pytest.fixture(scope="session")
def prometheus(cluster: Cluster) -> Iterator[Prometheus]:
    port = cluster.port_base + 90
    prom = Prometheus(str(cluster.kubeconfig), port)
    prom.start()
    yield prom
    prom.stop()


@pytest.fixture
def e2e_log_dir(tmp_path: Path) -> Path:
    os.environ.setdefault("MODELOPS_E2E", "1")
    return tmp_path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
