"""Every PromQL expression modelops ships, read from the shipped files themselves.

The alerting rules (manifests/monitoring/prometheusrule.yaml) and the Grafana dashboard
(manifests/monitoring/grafana/modelops.json) are the one place each query is written; this module
lists them, with the dashboard's Grafana variables filled in so that a plain Prometheus can run them.
Used by tests/unit/test_manifests_monitoring.py (promtool parses each one) and by the e2e tests that
run each query against the test Prometheus during a rollout: every dashboard query should return a
series there; an alert expression returns one only while its condition holds, so for alerts the
useful check is that Prometheus evaluates it without error (and that the metrics it names exist).
The test Prometheus (devcluster/prometheus.py) scrapes serving pods as job `modelops-pods`; the
operator's metrics and `up{job="modelops-operator-metrics"}` need it to scrape the operator as well.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"
RULES_FILE = MONITORING / "prometheusrule.yaml"
DASHBOARD_FILE = MONITORING / "grafana" / "modelops.json"


@dataclass(frozen=True)
class Query:
    source: str  # "alert <name>" or "panel <title> <refId>"
    expr: str    # runnable PromQL (Grafana variables substituted)


def rule_groups() -> list[dict[str, Any]]:
    """The `spec.groups` of the PrometheusRule: the same shape as a Prometheus rule file's `groups`."""
    doc = yaml.safe_load(RULES_FILE.read_text())
    groups: list[dict[str, Any]] = doc["spec"]["groups"]
    return groups


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", str(rule["expr"]).strip())
            for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return data


def substitute(expr: str, *, rate_interval: str = "1m", range_: str = "1h", namespace: str = ".*",
               model: str = ".*") -> str:
    """Fill in the Grafana variables the dashboard uses; an unknown `$variable` is an error."""
    values = {"__rate_interval": rate_interval, "__range": range_, "namespace": namespace, "model": model}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"dashboard query uses unknown Grafana variable ${name}: {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def dashboard_queries(**values: str) -> list[Query]:
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append(Query(f"panel {panel['title']} {target['refId']}", substitute(target["expr"], **values)))
    return out


def all_queries(**values: str) -> list[Query]:
    return [*alert_queries(), *dashboard_queries(**values)]
