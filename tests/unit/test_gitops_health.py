"""GitOps tools read a ModelDeployment's health right in every phase: Argo CD's health check run by a
real Lua 5.1 and Flux's kstatus (the cli-utils Go library) on objects whose status the real state
machine wrote (tests/gitops/fixtures.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitops import fixtures, kstatus_probe, lua

FIXTURES = fixtures.fixtures()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_argocd_health(name: str) -> None:
    obj = FIXTURES[name]
    status, message = lua.health(obj)
    assert status == fixtures.EXPECTED[name][0], f"{name} ({obj['status']['phase']}): {status} {message}"
    if name != "healthy-unobserved-generation":
        assert message == obj["status"]["message"]




@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_flux_kstatus(name: str) -> None:
    result = kstatus_probe.compute(FIXTURES[name])
    assert result["status"] == fixtures.EXPECTED[name][1], f"{name}: {result}"


def test_argocd_health_without_status_is_progressing() -> None:
    obj: dict[str, Any] = {**FIXTURES["healthy"]}
    del obj["status"]
    assert lua.health(obj)[0] == "Progressing"
    # kstatus cannot tell a resource without conditions from a finished one (documented in
    # docs/gitops.md: Flux users add a health check expression).
    assert kstatus_probe.compute(obj)["status"] == "Current"


def test_lua_sees_every_byte_of_a_message() -> None:
    obj: dict[str, Any] = {**FIXTURES["aborted"]}
    obj["status"] = {**obj["status"], "message": 'quote " backslash \\ newline \n ünïcode'}
    assert lua.health(obj) == ("Degraded", 'quote " backslash \\ newline \n ünïcode')
