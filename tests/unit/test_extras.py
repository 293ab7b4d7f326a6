"""The roles' dependency extras (README "Images") match what each role's code imports.

The operator image installs only the base dependencies and the `operator` extra, so neither may
name scikit-learn, pandas, pyarrow, joblib or skops, and the operator's import path must not import
them. scipy (and the numpy under it) is the operator's own: the retraining drift trigger's derived
threshold is a chi-squared quantile. It is imported when a threshold is first derived, not at start:
scipy.stats is about 60 MiB of the operator's memory, which a fleet with no drift trigger never needs.
Test-only models live in tests/models, never in the product package.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HEAVY = {"scikit-learn", "sklearn", "pandas", "pyarrow", "joblib", "skops"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_operator_role_depends_on_nothing_heavy() -> None:
    operator = _names(PROJECT["dependencies"]) | _names(PROJECT["optional-dependencies"]["operator"])
    assert not operator & HEAVY, operator & HEAVY


def test_dev_extra_pulls_every_role() -> None:
    dev = PROJECT["optional-dependencies"]["dev"]
    assert "modelops-operator[operator,server,trainer]" in dev


def test_operator_import_path_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import modelops.cli.main, modelops.controller.runner, modelops.controller.retraining\n"
        "import modelops.controller.reconcile, modelops.api.crd\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not set(out.stdout.split()) & HEAVY, set(out.stdout.split()) & HEAVY
    assert "scipy" not in out.stdout.split(), "scipy is imported at start (retraining/threshold.py imports it lazily)"


def test_test_only_models_are_not_in_the_product() -> None:
    assert importlib.util.find_spec("modelops.training.wrappers") is None
    assert not list((ROOT / "operator").rglob("*wrappers*.py"))


# Importable only with the server or trainer extra: the operator image has none of them.
NOT_IN_OPERATOR_IMAGE = ("sklearn", "joblib", "skops", "httptools", "orjson", "uvloop", "pyarrow", "boto3",
                         "grpc", "grpc_health", "google.protobuf", "threadpoolctl", "pandas")


def test_the_operator_images_commands_work_without_the_server_and_trainer_extras() -> None:
    # `modelops --help` builds every subcommand's parser: a flag defined next to server code once
    # imported orjson there and broke the operator image at build time (found by `make image`).
    code = (
        "import sys, importlib.abc\n"
        f"BLOCKED = {NOT_IN_OPERATOR_IMAGE!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if any(name == b or name.startswith(b + '.') for b in BLOCKED):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not in the operator image)')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        "from modelops.cli.main import main\n"
        "for argv in (['--help'], ['run', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (argv, exit.code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "usage: modelops" in out.stdout
