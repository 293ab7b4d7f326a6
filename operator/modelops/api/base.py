"""The base classes of the API models: `Model` for spec (strict) and `StatusModel` for status (tolerant).

Every model in `modelops.api` derives from one of them: frozen, camelCase on the wire through aliases,
with its `cross_field_rules` (`modelops.api.validation`) as CEL rules in the generated CRD; a
`CheckedModel` also has pydantic check the rules that have a Python twin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modelops.api.validation import CrossFieldRule, cel_rules


class Model(BaseModel):
    """Base for every API model: frozen, camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid", json_schema_extra=cel_rules
    )

    # The rules across this model's fields: CEL in the CRD, and pydantic checks for those with `holds`.
    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A rule with a Python twin is only checked on a CheckedModel: say so at import, not never.
        if any(rule.holds is not None for rule in cls.cross_field_rules) and not issubclass(cls, CheckedModel):
            raise TypeError(f"{cls.__name__} has cross-field rules with `holds`: derive it from CheckedModel")

    def wire(self) -> dict[str, Any]:
        """The object as it appears in the Kubernetes API (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class CheckedModel(Model):
    """A spec model whose cross-field rules pydantic checks too (those with `holds`).

    Apart from `Model` so that the many models without such rules pay nothing for the check (a
    validator per object costs about 1 us, and status parses dozens of objects on every tick).
    """

    @model_validator(mode="after")
    def _cross_field_rules_hold(self) -> Any:
        for rule in self.cross_field_rules:
            rule.check(self)
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs before pydantic collects the class's validators: a rule on one field gets a field
        # validator of that field alone (its error names the field, among the object's other errors).
        super().__init_subclass__(**kwargs)
        for rule in cls.__dict__.get("cross_field_rules", ()):
            if rule.on_field and rule.holds is not None and rule.field_path:
                name = next(n for n in cls.__annotations__ if to_camel(n) == rule.field_path.lstrip("."))
                setattr(cls, f"_rule_on_{name}", field_validator(name)(classmethod(rule.field_check)))


class StatusModel(Model):
    """Base for every status model: unknown fields are ignored, not refused.

    Status is written by the operator itself, so a field this version does not know was written by a
    newer one (an upgrade rolled back, two versions during a rollout of the operator). Refusing it
    would stall the object for good; ignoring it lets this version carry on with what it knows.
    Spec models stay strict (`Model`): there an unknown field is a user's typo.
    """

    model_config = ConfigDict(extra="ignore")


def known_fields_only(model: type[BaseModel]) -> BeforeValidator:
    """Drop keys `model` does not know before validating: a strict spec model embedded in status."""
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k in known}
        return value

    return BeforeValidator(drop)
