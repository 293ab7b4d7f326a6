"""Invalid ModelDeployments, each as a change to a valid one, and the field its rejection names.

Used by test_crd_validation.py: each must be refused by the real API server at apply time (server-
side dry run) with a message that names the offending field.
"""

from __future__ import annotations

import copy
from typing import Any

VALID: dict[str, Any] = {
    "apiVersion": "modelops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "corpus"},
    "spec": {
        "model": {"name": "iris", "version": "1", "uri": "file:///models/iris/model.joblib",
                  "sha256": "a" * 64, "format": "joblib"},
        "serving": {"replicas": 2},
        "rollout": {"steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}]},
    },
}

# (case id, change: dotted path -> new value or DELETE, substring the API server's message must contain)
DELETE = object()
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("joblib-without-sha256", {"spec.model.sha256": DELETE}, "spec.model.sha256"),
    ("sha256-uppercase", {"spec.model.sha256": "A" * 64}, "spec.model.sha256"),
    ("sha256-too-short", {"spec.model.sha256": "abc123"}, "spec.model.sha256"),
    ("uri-scheme-ftp", {"spec.model.uri": "ftp://host/model.joblib"}, "spec.model.uri"),
    ("uri-s3-scheme", {"spec.model.uri": "s3://bucket/model.joblib"}, "spec.model.uri"),
    ("uri-empty", {"spec.model.uri": ""}, "spec.model.uri"),
    ("format-pickle", {"spec.model.format": "pickle"}, "spec.model.format"),
    ("model-name-uppercase", {"spec.model.name": "Iris"}, "spec.model.name"),
    ("model-name-too-long", {"spec.model.name": "m" * 64}, "spec.model.name"),
    ("model-missing", {"spec.model": DELETE}, "spec.model"),
    ("version-with-space", {"spec.model.version": "v 2"}, "spec.model.version"),
    ("replicas-negative", {"spec.serving.replicas": -1}, "spec.serving.replicas"),
    ("replicas-too-many", {"spec.serving.replicas": 1000}, "spec.serving.replicas"),
    ("batch-size-zero", {"spec.serving.batching": {"maxBatchSize": 0}}, "spec.serving.batching.maxBatchSize"),
    ("weight-over-100", {"spec.rollout.steps": [{"setWeight": 150}]}, "spec.rollout.steps[0].setWeight"),
    ("weight-zero", {"spec.rollout.steps": [{"setWeight": 0}]}, "spec.rollout.steps[0].setWeight"),
    ("weights-decreasing", {"spec.rollout.steps": [{"setWeight": 50}, {"setWeight": 10}]}, "spec.rollout.steps"),
    ("weights-repeated", {"spec.rollout.steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 20}]},
     "spec.rollout.steps"),
    ("step-with-two-actions", {"spec.rollout.steps": [{"setWeight": 10, "pause": {}}]}, "spec.rollout.steps[0]"),
    ("empty-step", {"spec.rollout.steps": [{}]}, "spec.rollout.steps[0]"),
    ("pause-duration-garbage", {"spec.rollout.steps": [{"pause": {"duration": "soon"}}]},
     "spec.rollout.steps[0].pause.duration"),
    ("interval-no-unit", {"spec.rollout.analysis": {"interval": "30"}}, "spec.rollout.analysis.interval"),
    ("too-many-steps", {"spec.rollout.steps": [{"pause": {}}] * 40}, "spec.rollout.steps"),
    ("gateway-without-route", {"spec.rollout.traffic": {"router": "GatewayAPI"}}, "spec.rollout.traffic.httpRoute"),
    ("router-unknown", {"spec.rollout.traffic": {"router": "Istio"}}, "spec.rollout.traffic.router"),
    ("metric-both-sources",
     {"spec.rollout.analysis": {"metrics": [{"name": "e", "builtin": "errorRate", "prometheus": {"query": "up"},
                                             "max": 1}]}}, "spec.rollout.analysis.metrics[0]"),
    ("metric-no-limit", {"spec.rollout.analysis": {"metrics": [{"name": "e", "builtin": "errorRate"}]}},
     "spec.rollout.analysis.metrics[0]"),
    ("metric-unknown-builtin", {"spec.rollout.analysis": {"metrics": [{"name": "e", "builtin": "accuracy", "max": 1}]}},
     "spec.rollout.analysis.metrics[0].builtin"),
    ("metric-min-above-max",
     {"spec.rollout.analysis": {"metrics": [{"name": "e", "builtin": "errorRate", "min": 0.5, "max": 0.1}]}},
     "spec.rollout.analysis.metrics[0].min"),
    ("metric-names-repeated",
     {"spec.rollout.analysis": {"metrics": [{"name": "e", "builtin": "errorRate", "max": 0.1},
                                            {"name": "e", "builtin": "latencyP99", "max": 0.1}]}},
     "spec.rollout.analysis.metrics"),
    ("failure-limit-negative", {"spec.rollout.analysis": {"failureLimit": -1}}, "spec.rollout.analysis.failureLimit"),
    ("no-data-pass", {"spec.rollout.analysis": {"noData": "Successful"}}, "spec.rollout.analysis.noData"),
    ("vs-stable-negative",
     {"spec.rollout.analysis": {"metrics": [{"name": "p", "builtin": "latencyP99", "vsStable": {"maxIncrease": -1}}]}},
     "spec.rollout.analysis.metrics[0].vsStable.maxIncrease"),
    ("drift-threshold-out-of-range", {"spec.monitoring": {"drift": {"threshold": 50}}},
     "spec.monitoring.drift.threshold"),
    ("prometheus-url-not-http", {"spec.monitoring": {"prometheusUrl": "prometheus:9090"}},
     "spec.monitoring.prometheusUrl"),
    ("name-too-long", {"metadata.name": "a" * 50}, "metadata.name"),
    ("port-privileged", {"spec.serving.port": 80}, "spec.serving.port"),
    ("memory-garbage", {"spec.serving.resources": {"limits": {"memory": "lots"}}},
     "spec.serving.resources.limits.memory"),
]


def _retraining(**changes: Any) -> dict[str, Any]:
    """A valid spec.retraining with top-level parts replaced."""
    body: dict[str, Any] = {
        "triggers": {"drift": {"minSamples": 100, "forDuration": "5m"}, "schedule": "0 3 * * 0"},
        "job": {"dataset": {"uri": "pvc://data/iris.csv", "targetColumn": "label"},
                "holdout": {"uri": "pvc://data/holdout.csv"}, "output": {"uri": "pvc://models/iris"}},
        "guardrails": {"cooldown": "1h"},
        "gate": {"metric": "accuracy", "minValue": 0.8, "minImprovement": 0.01},
    }
    body.update(changes)
    return body


_JOB = _retraining()["job"]
CASES += [
    ("retrain-no-trigger", {"spec.retraining": _retraining(triggers={})}, "spec.retraining.triggers"),
    ("retrain-cooldown-too-short", {"spec.retraining": _retraining(guardrails={"cooldown": "30s"})},
     "spec.retraining.guardrails.cooldown"),
    ("retrain-min-samples-too-small",
     {"spec.retraining": _retraining(triggers={"drift": {"minSamples": 10}})},
     "spec.retraining.triggers.drift.minSamples"),
    ("retrain-cron-garbage", {"spec.retraining": _retraining(triggers={"schedule": "every sunday"})},
     "spec.retraining.triggers.schedule"),
    ("retrain-cron-four-fields", {"spec.retraining": _retraining(triggers={"schedule": "0 3 * *"})},
     "spec.retraining.triggers.schedule"),
    ("retrain-dataset-two-sources",
     {"spec.retraining": _retraining(job={**_JOB, "dataset": {"uri": "pvc://d/x.csv", "fromServing": True}})},
     "spec.retraining.job.dataset"),
    ("retrain-dataset-no-source", {"spec.retraining": _retraining(job={**_JOB, "dataset": {"targetColumn": "y"}})},
     "spec.retraining.job.dataset"),
    ("retrain-gate-without-holdout",
     {"spec.retraining": _retraining(job={k: v for k, v in _JOB.items() if k != "holdout"})},
     "spec.retraining.job.holdout"),
    ("retrain-output-http", {"spec.retraining": _retraining(job={**_JOB, "output": {"uri": "http://x/y"}})},
     "spec.retraining.job.output.uri"),
    ("retrain-quality-accuracy-above",
     {"spec.retraining": _retraining(triggers={"quality": {"metric": "accuracy", "above": 0.5}})},
     "spec.retraining.triggers.quality.metric"),
    ("retrain-gate-mae-min-value", {"spec.retraining": _retraining(gate={"metric": "mae", "minValue": 1})},
     "spec.retraining.gate.metric"),
    ("retrain-promotion-unknown", {"spec.retraining": _retraining(promotion="Always")},
     "spec.retraining.promotion"),
    ("retrain-too-many-args", {"spec.retraining": _retraining(job={**_JOB, "args": ["--seed"] * 40})},
     "spec.retraining.job.args"),
]


def build(change: dict[str, Any]) -> dict[str, Any]:
    """The valid object with one change applied."""
    obj = copy.deepcopy(VALID)
    for path, value in change.items():
        parts = path.split(".")
        target = obj
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if value is DELETE:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return obj
