"""`kubectl-modelops` argument handling and kubeconfig defaults, without an API server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from modelops.cli.kubectl import _context_namespace, build_parser, main


def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "c", "user": "u", "namespace": "ml-prod"}},
            {"name": "bare", "context": {"cluster": "c", "user": "u"}},
        ],
    }))
    return path


def test_namespace_defaults_to_the_context_namespace_then_default(tmp_path: Path) -> None:
    path = str(kubeconfig(tmp_path))
    assert _context_namespace(path, None) == "ml-prod"
    assert _context_namespace(path, "bare") == "default"


def test_commands_parse_into_the_request_values() -> None:
    parser = build_parser()
    args = parser.parse_args(["undo", "iris", "--to-revision", "b7c1e0f2d4", "-n", "ml", "--wait"])
    assert (args.name, args.namespace, args.to_revision, args.wait) == ("iris", "ml", "b7c1e0f2d4", True)
    assert parser.parse_args(["promote", "iris", "--full"]).full
    assert parser.parse_args(["status", "iris", "-w"]).watch


def test_a_missing_name_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status"])
    assert exited.value.code == 2


def test_an_unreadable_kubeconfig_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["status", "iris", "--kubeconfig", str(missing)]) == 1
    assert f"cannot load kubeconfig from {missing}" in capsys.readouterr().err


def test_an_unreachable_api_server_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 on loopback refuses at once; the client's retries end in an error we report.
    assert main(["history", "iris", "--kubeconfig", str(kubeconfig(tmp_path))]) == 1
    assert "error: cannot reach the API server" in capsys.readouterr().err
