"""`operator/` is a source root, not a package: the standard library's `operator` still wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_folder_does_not_shadow_stdlib_operator() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    code = (
        "import operator, modelops;"
        "assert operator.itemgetter(1)([0, 7]) == 7;"
        "assert 'site-packages' not in (operator.__file__ or '') or True;"
        "import sysconfig, os;"
        "assert os.path.dirname(operator.__file__) == sysconfig.get_paths()['stdlib'], operator.__file__;"
        "print(modelops.__file__)"
    )
    # Run from the repo root, where a package named `operator` would be found first.
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("operator/modelops/__init__.py")


def test_console_scripts_answer() -> None:
    bindir = Path(sys.executable).parent
    for script in ("modelops", "kubectl-modelops"):
        proc = subprocess.run([str(bindir / script), "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "usage" in proc.stdout.lower()
