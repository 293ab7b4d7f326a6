"""The committed CRD is what the API models generate, and the schema is structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from modelops.api.crd import crd, crd_yaml

CRD_FILE = Path(__file__).resolve().parents[3] / "crds" / "modeldeployments.modelops.dev.yaml"


def test_committed_crd_is_up_to_date() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ is stale: run `make crd` and commit the result"


def _walk(node: Any, path: str) -> list[str]:
    problems: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node or "anyOf" in node or "allOf" in node:
            problems.append(f"{path}: not structural ({sorted(node)})")
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node and "format" not in node:
            problems.append(f"{path}: string without maxLength")
        if node.get("type") == "array" and "maxItems" not in node:
            problems.append(f"{path}: list without maxItems")
        if "properties" in node and node.get("type") != "object":
            problems.append(f"{path}: properties without type object")
        for key, value in node.get("properties", {}).items():
            problems += _walk(value, f"{path}.{key}")
        if "items" in node:
            problems += _walk(node["items"], f"{path}[]")
    return problems


def test_spec_schema_is_structural_and_bounded() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema["properties"]["spec"], "spec") == []


def test_crd_names_and_columns() -> None:
    doc = yaml.safe_load(CRD_FILE.read_text())
    assert doc["spec"]["names"]["shortNames"] == ["mdep"]
    columns = [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:8] == ["Model", "Stable", "Canary", "Weight", "Phase", "Ready", "Reason", "Age"]
    assert doc["spec"]["versions"][0]["subresources"] == {"status": {}}
