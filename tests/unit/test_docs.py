"""docs/api.md and docs/events.md are what `make docs` generates from the code (the API models and
the Event reasons), and the generator sees every Event reason the state machine posts."""

from __future__ import annotations

from modelops.rollout import events

from tests.gitops import apidocs


def test_generated_docs_are_fresh() -> None:
    stale = [str(p.relative_to(apidocs.REPO)) for p, text in apidocs.expected().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"stale docs {stale}: run `make docs`"


def test_every_event_reason_of_the_machine_is_listed() -> None:
    listed = {reason for reason, *_ in apidocs.events()}
    constants = {v for k, v in vars(events).items() if k.startswith("EVENT_") and k not in ("EVENT_NORMAL",
                                                                                             "EVENT_WARNING")}
    assert constants and constants <= listed, constants - listed
    warnings = {reason for reason, type_, *_ in apidocs.events() if type_ == "Warning"}
    assert {events.EVENT_ABORTED, events.EVENT_ANALYSIS_FAILED} <= warnings


def test_api_reference_covers_every_spec_field() -> None:
    text = (apidocs.REPO / "docs" / "api.md").read_text()
    for model in apidocs._walk(apidocs.ModelDeploymentSpec):
        assert f"### {model.__name__}" in text
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text, f"{model.__name__}.{name}"
