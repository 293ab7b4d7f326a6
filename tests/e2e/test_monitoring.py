"""The shipped dashboard and alerts against a real Prometheus during a real rollout.

Prometheus scrapes the serving pods (as the PodMonitor does) and the operator's /metrics under the
job name the shipped ServiceMonitor gives it (`modelops-operator-metrics`). While v1 serves traffic,
a canary of v2 pauses, a retrain asked for mid-canary is dropped, and v2 is promoted, every panel
query of manifests/monitoring/grafana/modelops.json must return a series at some point; every alert
expression must evaluate, and every metric it names must exist, so that no alert watches a series
that is never written. Then the operator is killed and ModelOpsOperatorDown's expression must fire.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.scenario import TrainedModel, apply, manifest, retraining_spec, wait_status, write_shifted_csv
from devcluster.chart import ChartOperator
from devcluster.localcluster import Cluster
from devcluster.prometheus import Prometheus
from devcluster.realnode import NodeSet
from devcluster.traffic import LoadGenerator
from tests.conftest import wait_for
from tests.gitops import monitoring

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
NAME = "iris"
OPERATOR_JOB = "modelops-operator-metrics"
# The metric names in an expression (ours all start modelops_; `up` is Prometheus' own).
_METRIC = re.compile(r"\b(modelops_[a-z_]+|up)\b")


@pytest.fixture
def scraping(cluster: Cluster, operator: ChartOperator, tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of this test's own that also scrapes the operator (the shared one scrapes pods only)."""
    prom = Prometheus(str(cluster.kubeconfig), cluster.port_base + 91, data_root=tmp_path,
                      static_jobs={OPERATOR_JOB: [operator.metrics_target()]})
    prom.start()
    yield prom
    prom.stop()


def _has_series(prom: Prometheus, expr: str) -> bool:
    return bool(prom.query(expr))


def _wanted(queries: list[monitoring.Query]) -> dict[str, str]:
    return {q.source: q.expr for q in queries}


def test_every_dashboard_query_returns_a_series_and_every_alert_evaluates_during_a_rollout(
        cluster: Cluster, namespace: str, operator: ChartOperator, real_node: NodeSet,
        scraping: Prometheus, models: dict[str, TrainedModel], tmp_path: Path) -> None:
    steps = [{"setWeight": 50}, {"pause": {"duration": "12s"}}]
    obj = manifest(NAME, models["v1"], steps=steps, min_requests=5)
    # Retraining is configured so that its panel has a series: a retrain asked for mid-canary is dropped.
    write_shifted_csv(tmp_path / "data.csv", 0.0, seed=3)
    obj["spec"]["retraining"] = retraining_spec(tmp_path / "data.csv", tmp_path / "data.csv", tmp_path, gate=None)
    apply(cluster, namespace, obj)
    wait_status(cluster, namespace, NAME, lambda st: st.get("phase") == "Healthy", "v1 Healthy", 120)
    panels = _wanted(monitoring.dashboard_queries(namespace=namespace, model="iris"))
    seen: set[str] = set()
    with LoadGenerator(str(cluster.kubeconfig), namespace, NAME, "iris", rate_per_s=30, duration_s=180):
        obj["spec"]["model"] = {**obj["spec"]["model"], "version": models["v2"].version, "uri": models["v2"].uri,
                                "sha256": models["v2"].sha256}
        apply(cluster, namespace, obj)
        wait_status(cluster, namespace, NAME, lambda s: (s.get("canary") or {}).get("stepIndex") == 1,
                    "the canary pausing at 50%", 120)
        cluster.kubectl("modelops", "retrain", NAME, "-n", namespace)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(seen) < len(panels):
            seen |= {source for source, expr in panels.items() if source not in seen and _has_series(scraping, expr)}
            time.sleep(1)
    missing = sorted(set(panels) - seen)
    assert not missing, f"dashboard queries that never returned a series: {missing}"

    # Every alert evaluates, and watches only series that exist by now.
    present = scraping.metric_names()
    for alert in monitoring.alert_queries():
        scraping.query(alert.expr)  # raises unless Prometheus evaluates it
        names = set(_METRIC.findall(alert.expr))
        assert names <= present, f"{alert.source} watches metrics nothing exports: {sorted(names - present)}"
    firing: dict[str, Any] = {a.source: scraping.query(a.expr) for a in monitoring.alert_queries()}
    assert not firing["alert ModelOpsOperatorDown"] and not firing["alert ModelOpsNoLeader"], firing

    down = next(a.expr for a in monitoring.alert_queries() if a.source == "alert ModelOpsOperatorDown")
    operator.kill()
    wait_for(lambda: _has_series(scraping, down), "ModelOpsOperatorDown's expression firing", timeout=30)
