"""The shipped alerts and dashboard parse as PromQL (Prometheus' own parser, through promtool) and
name only metrics that exist: the model server's (modelops.serving.metrics) and the operator's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.gitops import monitoring

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# What the model server exports (operator/modelops/serving/metrics.py, with prometheus_client's suffixes).
SERVER_METRICS = {
    "modelops_requests_total", "modelops_request_duration_seconds_bucket", "modelops_batch_size_bucket",
    "modelops_inflight_requests", "modelops_predictions_total", "modelops_prediction_value_bucket",
    "modelops_feature_drift_psi", "modelops_prediction_drift_psi", "modelops_drift_window_rows",
}
# The operator's metrics (its /metrics on port `metrics`).
OPERATOR_METRICS = {
    "modelops_reconcile_total", "modelops_reconcile_duration_seconds_bucket", "modelops_workqueue_depth",
    "modelops_workqueue_wait_seconds_bucket", "modelops_api_requests_total", "modelops_rollouts_total",
    "modelops_analysis_verdicts_total", "modelops_leader", "modelops_modeldeployment_condition",
    "modelops_modeldeployment_phase", "modelops_retraining_runs_total",
}


def _promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool not found: `make system-deps` installs Debian's prometheus package")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": monitoring.rule_groups()}))
    proc = _promtool(["check", "rules", "rules.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(monitoring.alert_queries())} rules found" in proc.stdout


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = monitoring.dashboard_queries()
    assert len(queries) >= 20
    # promtool parses recording rules with the same parser the server uses.
    rules = [{"record": f"modelops_dashboard:query{i}", "expr": q.expr} for i, q in enumerate(queries)]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = _promtool(["check", "rules", "dashboard.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_query_is_caught(tmp_path: Path) -> None:
    """The check above can fail: promtool refuses a bad expression."""
    bad = {"groups": [{"name": "bad", "rules": [{"record": "x:y", "expr": "sum(rate(modelops_requests_total[1m]"}]}]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert _promtool(["check", "rules", "bad.yaml"], tmp_path).returncode != 0


def test_queries_name_only_known_metrics() -> None:
    known = SERVER_METRICS | OPERATOR_METRICS | {"up"}
    for query in monitoring.all_queries():
        names = set(re.findall(r"\b(modelops_[a-z_]+|up)\b(?=\s*[{\[)])", query.expr))
        assert names, f"{query.source}: no metric found in {query.expr}"
        unknown = {n for n in names if n not in known and not n.startswith("modelops_dashboard")}
        assert not unknown, f"{query.source} uses unknown metrics {unknown}: {query.expr}"


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (monitoring.REPO / "docs" / "runbooks.md").read_text()
    anchors = {"#" + re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
               for line in runbooks.splitlines() if line.startswith("## ")}
    for group in monitoring.rule_groups():
        for rule in group["rules"]:
            url = rule["annotations"]["runbook_url"]
            assert "#" + url.split("#", 1)[1] in anchors, f"{rule['alert']}: {url} has no section in docs/runbooks.md"


def test_unknown_grafana_variable_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$cluster"):
        monitoring.substitute('up{cluster="$cluster"}')
