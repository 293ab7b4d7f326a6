"""Each cross-field rule is declared once (modelops.api.validation.CrossFieldRule): the CRD carries its
CEL rule, and the operator's parse refuses the same objects with the same message."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelops.api.base import Model
from modelops.api.crd import crd
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.validation import CrossFieldRule
from pydantic import ValidationError

BASE: dict[str, Any] = {
    "model": {"name": "iris", "version": "1", "uri": "file:///m.joblib", "sha256": "a" * 64},
    "retraining": {
        "triggers": {"schedule": "0 3 * * 0"},
        "job": {"dataset": {"uri": "pvc://d/x.csv"}, "holdout": {"uri": "pvc://d/h.csv"},
                "output": {"uri": "pvc://m/o"}},
        "gate": {"metric": "accuracy", "minValue": 0.8},
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return spec


# (case, spec, where the operator's error is, the rule's message)
BROKEN = [
    ("autoscaling-bounds", _with("serving.autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
     ("serving", "autoscaling"), "minReplicas must not exceed maxReplicas"),
    ("quality-accuracy-above", _with("retraining.triggers.quality", {"metric": "accuracy", "above": 0.5}),
     ("retraining", "triggers", "quality"), "quality: accuracy takes `below`, mae takes `above`"),
    ("no-trigger", _with("retraining.triggers", {}),
     ("retraining", "triggers"), "retraining.triggers: set at least one of drift, quality, promql, schedule"),
    ("dataset-both", _with("retraining.job.dataset", {"uri": "pvc://d/x.csv", "fromServing": True}),
     ("retraining", "job", "dataset"), "retraining.job.dataset: set exactly one of uri, fromServing: true"),
    ("cooldown-short", _with("retraining.guardrails", {"cooldown": "30s"}),
     ("retraining", "guardrails", "cooldown"), "retraining.guardrails.cooldown must be at least 1m"),
    ("gate-mae-min", _with("retraining.gate", {"metric": "mae", "minValue": 1}),
     ("retraining", "gate"), "retraining.gate: mae takes maxValue, accuracy/f1/r2 take minValue"),
    ("gate-without-holdout", _with("retraining.job.holdout", None),
     ("retraining",), "retraining.job.holdout is required when a gate is set"),
]


def _cel_messages(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        found |= {r["message"] for r in node.get("x-kubernetes-validations", [])}
        for value in node.values():
            found |= _cel_messages(value)
    elif isinstance(node, list):
        for value in node:
            found |= _cel_messages(value)
    return found


def test_base_spec_is_valid() -> None:
    ModelDeploymentSpec.model_validate(BASE)


@pytest.mark.parametrize(("case", "spec", "loc", "message"), BROKEN, ids=[c[0] for c in BROKEN])
def test_the_operator_refuses_what_the_cel_rule_refuses(case: str, spec: dict[str, Any], loc: tuple[str, ...],
                                                         message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ModelDeploymentSpec.model_validate(spec)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(loc, f"Value error, {message}")]
    assert message in _cel_messages(crd()), "the same message is the CRD's CEL rule"


def test_a_rule_with_a_python_twin_needs_a_checked_model() -> None:
    with pytest.raises(TypeError, match="CheckedModel"):
        class Unchecked(Model):
            cross_field_rules = (CrossFieldRule("self.a > 0", "a must be above 0", ".a", holds=lambda m: m.a > 0),)
            a: int = 1


def test_a_rule_on_one_field_is_reported_with_the_objects_other_errors() -> None:
    # Checked as a field validator (on_field), as the cooldown check was before it was declared once.
    spec = _with("retraining.guardrails", {"cooldown": "30s", "maxRunsPerDay": 0})
    with pytest.raises(ValidationError) as caught:
        ModelDeploymentSpec.model_validate(spec)
    assert [e["loc"] for e in caught.value.errors()] == [("retraining", "guardrails", "cooldown"),
                                                         ("retraining", "guardrails", "maxRunsPerDay")]
