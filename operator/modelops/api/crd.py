"""Generate the ModelDeployment CRD from the pydantic models.

`modelops crd` prints this; `crds/modeldeployments.modelops.dev.yaml` is its committed output and a
unit test fails when the two differ. The conversion turns pydantic's JSON Schema into a Kubernetes
structural schema: references inlined, optionals flattened, literals as enums.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelops.api.kind import GROUP, KIND, PLURAL, SHORT_NAME, SINGULAR, VERSION
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus

_DROP = {"title"}
MAX_NAME_LENGTH = 42

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable.modelVersion"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary.modelVersion"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canary.weight"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    # Why not ready, at a glance: a rollout step, or an error the operator cannot fix (Forbidden, ...).
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and rewrite pydantic-isms into what a structural schema accepts."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _structural(defs[node["$ref"].split("/")[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_structural(extra, defs)}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union {node['anyOf']} structurally")
        merged = {**_structural(options[0], defs)}
        for key, value in node.items():
            if key != "anyOf" and key not in _DROP:
                merged[key] = _structural(value, defs)
        if merged.get("default", 0) is None:
            del merged["default"]
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "additionalProperties" and value is False:
            continue  # unknown fields are pruned by the API server already
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
            continue
        out[key] = _structural(value, defs)
    if out.get("default", 0) is None:
        del out["default"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def schema_of(model: type[Any]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


def _status_schema() -> dict[str, Any]:
    schema = schema_of(ModelDeploymentStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    spec = schema_of(ModelDeploymentSpec)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "modelops", "app.kubernetes.io/part-of": "modelops"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": ["all", "modelops"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A model served by pods, rolled out to new versions as a canary.",
                            "required": ["spec"],
                            "x-kubernetes-validations": [{
                                "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                                "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters: "
                                           "child objects add an 11-character revision suffix",
                            }],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML committed under crds/."""
    header = "# Generated by `modelops crd` from the models in operator/modelops/api/. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)
