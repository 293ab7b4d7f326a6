"""Validation helpers of the API models: shared patterns, CEL building blocks, and cross-field rules.

A field's own bounds are pydantic `Field` constraints (the CRD gets them as OpenAPI keywords). A rule
across fields is a `CrossFieldRule`, declared once on its model (`cross_field_rules`): the CRD gets
its CEL rule (`x-kubernetes-validations`, checked by the API server at apply time) and, when it has a
Python twin (`holds`), pydantic checks the same rule with the same message when the operator parses
an object, e.g. one stored before a CEL rule existed. `modelops.api.base` wires both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelops.api.durations import DURATION

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256 = r"^[0-9a-f]{64}$"
URI_SCHEMES = ("http", "https", "pvc", "file", "s3")


def duration_at_least(field: str, minimum: str) -> str:
    """A CEL rule: the duration in `field` (if set and well-formed) is at least `minimum`.

    The pattern check reports a malformed value by itself; the guard keeps `duration()` from failing
    on it, so the message the user reads names the pattern, not a CEL evaluation error.
    """
    pattern = DURATION.replace("\\", "\\\\")  # a CEL string literal reads `\.` as an escape
    return (f"!has(self.{field}) || !self.{field}.matches('{pattern}') || "
            f"duration(self.{field}) >= duration('{minimum}')")


@dataclass(frozen=True)
class CrossFieldRule:
    """One rule across the fields of a model, written once for the API server and for pydantic.

    `rule` is CEL over `self` (the object, camelCase names), `field_path` the field the API server's
    message names. `holds` is the same rule in Python over the parsed model; None: only the API
    server checks it (as before rules were declared here). `on_field`: a rule on the field at
    `field_path` alone (CEL only because OpenAPI cannot compare durations): `holds` takes the field's
    value, and pydantic checks it as a field validator, so its error names the field and comes with
    the object's other errors.
    """

    rule: str
    message: str
    field_path: str | None = None
    holds: Callable[[Any], bool] | None = None
    on_field: bool = False

    def cel(self) -> dict[str, Any]:
        """The `x-kubernetes-validations` entry."""
        entry: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry

    def check(self, model: Any) -> None:
        """Raise the rule's message when `model` breaks it (pydantic turns it into a ValidationError)."""
        if self.holds is not None and not self.on_field and not self.holds(model):
            raise ValueError(self.message)

    def field_check(self, _model: type[Any], value: Any) -> Any:
        """The check of a rule `on_field`, as a pydantic field validator (a classmethod) of that field."""
        if self.holds is not None and not self.holds(value):
            raise ValueError(self.message)
        return value


def cel_rules(schema: dict[str, Any], model: type[Any]) -> None:
    """pydantic's `json_schema_extra` hook: the model's cross-field rules as CEL, after its fields."""
    rules: tuple[CrossFieldRule, ...] = getattr(model, "cross_field_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.cel() for rule in rules]
