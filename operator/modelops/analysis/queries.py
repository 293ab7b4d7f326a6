"""PromQL for the builtin metrics and variable substitution in custom queries (pure).

Used by `prometheus.py` (and `provider.analysis_window` for the window). Builtins read the model
server's metrics, selected by the `model` and `revision` labels the server puts on every series (the
revision is the Deployment's, so the canary and stable tracks are told apart without relying on
Prometheus' target labels):

- errorRate: server errors (5xx) / all requests. 4xx are the client's fault (bad input) and do not
  count against a model; a model that rejects valid input shows up in 5xx or in its own metric.
- latencyP99: `histogram_quantile(0.99, ...)` of request duration, in seconds.
- predictionDrift / featureDrift: the highest PSI the pods report (prediction; any feature).
"""

from __future__ import annotations

import re
from datetime import timedelta

from modelops.api.spec import SCRAPES_PER_WINDOW

REQUESTS = "modelops_requests_total"
DURATION_BUCKET = "modelops_request_duration_seconds_bucket"
PREDICTION_DRIFT = "modelops_prediction_drift_psi"
FEATURE_DRIFT = "modelops_feature_drift_psi"

_VARIABLE = re.compile(r"\$(revision|track|namespace|name|interval|model)\b")


def query_window(interval: timedelta, scrape_interval: timedelta) -> timedelta:
    """The range of every PromQL query of a measurement: the analysis interval, but at least
    `SCRAPES_PER_WINDOW` scrape intervals, so that `rate()` and `increase()` see enough samples
    (a window of one scrape interval is empty about half the time, and analysis never concludes)."""
    return max(interval, SCRAPES_PER_WINDOW * scrape_interval)


def promql_duration(window: timedelta) -> str:
    return f"{max(1, round(window.total_seconds()))}s"


def selector(model: str, revision: str) -> str:
    return f'model="{_escape(model)}",revision="{_escape(revision)}"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def builtin_query(builtin: str, model: str, revision: str, window: timedelta) -> str:
    sel, w = selector(model, revision), promql_duration(window)
    if builtin == "errorRate":
        # `or vector(0)`: no 5xx series at all means zero errors, not "no data".
        return (
            f'(sum(rate({REQUESTS}{{{sel},code=~"5.."}}[{w}])) or vector(0))'
            f" / sum(rate({REQUESTS}{{{sel}}}[{w}]))"
        )
    if builtin == "latencyP99":
        return f"histogram_quantile(0.99, sum by (le) (rate({DURATION_BUCKET}{{{sel}}}[{w}])))"
    if builtin == "predictionDrift":
        return f"max({PREDICTION_DRIFT}{{{sel}}})"
    if builtin == "featureDrift":
        return f"max({FEATURE_DRIFT}{{{sel}}})"
    raise ValueError(f"unknown builtin metric {builtin!r}")


def requests_query(model: str, revision: str, window: timedelta) -> str:
    """Requests served in the window: the evidence `minRequests` asks for."""
    return f"sum(increase({REQUESTS}{{{selector(model, revision)}}}[{promql_duration(window)}]))"


def substitute(query: str, *, revision: str, track: str, namespace: str, name: str, model: str,
               window: timedelta) -> str:
    """A custom query with $revision, $track, $namespace, $name, $model and $interval filled in."""
    values = {"revision": revision, "track": track, "namespace": namespace, "name": name, "model": model,
              "interval": promql_duration(window)}
    return _VARIABLE.sub(lambda m: values[m.group(1)], query)
