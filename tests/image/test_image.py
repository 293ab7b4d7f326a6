"""The images from `make image`, run the way a restricted pod runs them (`make test-image`).

Each OCI archive in dist/ is unpacked with umoci and run with runc (image/run.py) from the image's
own root filesystem, as its own user 65532, with a read-only root and a tmpfs /tmp. The trainer
image trains a model, the server image serves it and answers one inference, the operator image
prints `modelops --help` and the operator's `--help` and carries no scikit-learn or pandas. The
project's own code is the top layer image/layer.py appends (README "Images"): it must be exactly the
source tree, compiled, opaque over what lies below; the test image modelops-server-testing is the
server image plus one layer with tests/models/modelops_testing.
Needs root (runc) and the archives: `make test-image` builds them first; without them every test
here errors with the command to run.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "image" / "run.py")]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ROLES = ("operator", "server", "trainer")
TESTING = "server-testing"
SITE = "opt/modelops/lib/python3.11/site-packages"
SOURCE = ROOT / "operator" / "modelops"


def archive(role: str) -> Path:
    return ROOT / "dist" / f"modelops-{role}-{VERSION}.oci.tar"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each role's archive unpacked (layout + root filesystem), once for this module."""
    missing = [str(archive(r)) for r in (*ROLES, TESTING) if not archive(r).is_file()]
    if missing:
        pytest.fail(f"no image archive {', '.join(missing)}: run `make image` (or `make test-image`) first")
    unpacked = {}
    for role in (*ROLES, TESTING):
        into = tmp_path_factory.mktemp(role)
        subprocess.run([*RUN, "unpack", str(archive(role)), str(into)], check=True, capture_output=True)
        unpacked[role] = into
    return unpacked


def run(image: Path, *args: str, entrypoint: str | None = None, volumes: tuple[str, ...] = (),
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [*RUN, "run", str(image)]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    for volume in volumes:
        cmd += ["--volume", volume]
    return subprocess.run([*cmd, "--", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("role", ROLES)
def test_archive_names_the_image_for_kind_and_runs_as_65532(role: str, images: dict[str, Path]) -> None:
    index = json.loads((images[role] / "layout" / "index.json").read_text())
    [manifest] = index["manifests"]
    # containerd in a kind node looks `modelops-<role>:<version>` up under this full name.
    name = manifest["annotations"]["org.opencontainers.image.ref.name"]
    assert name == f"docker.io/library/modelops-{role}:{VERSION}"
    spec = json.loads((images[role] / "bundle" / "config.json").read_text())
    assert spec["process"]["user"]["uid"] == 65532 and spec["process"]["user"]["gid"] == 65532
    labels = spec["annotations"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == f"modelops-{role}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_operator_image_runs_help_read_only_as_its_own_user(images: dict[str, Path]) -> None:
    top = run(images["operator"], "--help")
    assert top.returncode == 0, top.stderr
    assert "run the operator" in top.stdout
    operator = run(images["operator"], "run", "--help")
    assert operator.returncode == 0, operator.stderr
    assert "--leader-elect" in operator.stdout and "--prometheus-allow" in operator.stdout
    probe = run(images["operator"], "-c", "\n".join([
        "import os, errno",
        "print(os.getuid(), os.getgid())",
        "open('/tmp/ok', 'w').write('tmp is writable')",
        "try:",
        "    open('/opt/modelops/x', 'w')",
        "except OSError as e:",
        "    print(errno.errorcode[e.errno])",
        "import kubernetes, aiohttp, modelops.controller.runner",
    ]), entrypoint="python3")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["65532", "65532", "EROFS"]


def test_operator_image_carries_no_scikit_learn_or_pandas(images: dict[str, Path]) -> None:
    for module in ("sklearn", "pandas", "pyarrow", "orjson", "joblib"):
        found = run(images["operator"], "-c", f"import {module}", entrypoint="python3")
        assert found.returncode == 1 and f"No module named '{module}'" in found.stderr, (module, found.stderr)
    # scipy (and numpy under it) is the operator's: the drift trigger's derived threshold needs it.
    code = ("from modelops.retraining.threshold import derived_threshold\n"
            "print(derived_threshold(100, 10, 31, 0.01, 0.1))")
    threshold = run(images["operator"], "-c", code, entrypoint="python3")
    assert threshold.returncode == 0 and 0.1 < float(threshold.stdout) < 2.0, threshold.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def trained(images: dict[str, Path], tmp_path: Path) -> Path:
    """An iris model trained by the trainer image into a host directory."""
    out = tmp_path / "models"
    out.mkdir()
    out.chmod(0o777)  # the container writes as uid 65532
    result = run(images["trainer"], "train", "--dataset", "iris", "--output", "/out/iris", "--version", "1",
                 volumes=(f"{out}:/out",), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote /out/iris" in result.stdout
    return out


@pytest.fixture
def server(images: dict[str, Path], trained: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        # As the serving pod runs it (resources/builders.py): metrics under the writable /tmp.
        [*RUN, "run", str(images["server"]), "--volume", f"{trained}:/models:ro",
         "--env", "PROMETHEUS_MULTIPROC_DIR=/tmp/metrics", "--",
         "serve", "/models/iris", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_server_image_serves_one_inference_read_only(server: tuple[str, subprocess.Popen[str]]) -> None:
    url, proc = server
    deadline = time.monotonic() + 120
    ready = False
    while not ready:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the server exited with {proc.returncode} before it was ready:\n{out}")
        if time.monotonic() > deadline:
            pytest.fail("the server in the image was not ready within 120 s")
        try:
            ready = requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            time.sleep(0.3)
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
    answer = requests.post(f"{url}/v2/models/iris/infer", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    [output] = [o for o in answer.json()["outputs"] if o["name"] == "predict"]
    assert output["data"] == [0]  # setosa
    proc.terminate()
    assert proc.wait(timeout=60) == 0


def _layout_json(layout: Path, digest: str) -> dict[str, Any]:
    return json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text())


def _manifest(image: Path) -> dict[str, Any]:
    index = json.loads((image / "layout" / "index.json").read_text())
    return _layout_json(image / "layout", index["manifests"][0]["digest"])


def _top_layer_names(image: Path) -> list[str]:
    top = _manifest(image)["layers"][-1]["digest"].removeprefix("sha256:")
    with tarfile.open(image / "layout" / "blobs" / "sha256" / top) as layer:
        return layer.getnames()


def _site_packages_tops(names: list[str]) -> set[str]:
    """What a layer's entries put directly into site-packages."""
    return {n.removeprefix(f"{SITE}/").split("/")[0] for n in names if n.startswith(f"{SITE}/")}


def _py_files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*.py") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("role", ROLES)
def test_top_layer_is_the_current_source_compiled_and_opaque(role: str, images: dict[str, Path]) -> None:
    installed = images[role] / "bundle" / "rootfs" / SITE / "modelops"
    # Exactly the source's modules, byte for byte: nothing stale, nothing deleted lingering.
    assert _py_files(installed) == _py_files(SOURCE)
    for name in _py_files(SOURCE):
        assert (installed / name).read_bytes() == (SOURCE / name).read_bytes(), name
        pyc = installed / Path(name).parent / "__pycache__" / f"{Path(name).stem}.cpython-311.pyc"
        # PEP 552 flags 0b01: hash-based, never checked against the source (read-only root).
        assert struct.unpack("<4xI", pyc.read_bytes()[:8])[0] == 1, name
    # The layer replaces the package and its metadata wholesale (OCI opaque whiteouts) and holds
    # nothing but the project: the dependencies are in the layers below.
    names = _top_layer_names(images[role])
    assert f"{SITE}/modelops/.wh..wh..opq" in names
    assert f"{SITE}/modelops_operator-{VERSION}.dist-info/.wh..wh..opq" in names
    assert _site_packages_tops(names) == {"modelops", f"modelops_operator-{VERSION}.dist-info"}
    assert "opt/modelops/bin/modelops" in names
    config = _layout_json(images[role] / "layout", _manifest(images[role])["config"]["digest"])
    assert config["history"][-1]["created_by"].startswith("image/layer.py: modelops_operator-")
    assert len(config["rootfs"]["diff_ids"]) == len(_manifest(images[role])["layers"])
    revision = config["config"]["Labels"]["org.opencontainers.image.revision"]
    assert revision != "unknown" and not revision.startswith("dependencies-")


@pytest.mark.parametrize("role", ROLES)
def test_modelops_runs_from_bytecode_as_65532_on_a_read_only_root(role: str, images: dict[str, Path]) -> None:
    helped = run(images[role], "--help")
    assert helped.returncode == 0 and "usage: modelops" in helped.stdout, helped.stderr
    imports = {"operator": "modelops.controller.runner", "server": "modelops.serving.server, sklearn",
               "trainer": "modelops.training.trainer, sklearn, pandas"}[role]
    probe = run(images[role], "-v", "-c", f"import os, modelops.cli.main, {imports}; print(os.getuid())",
                entrypoint="python3")
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.split() == ["65532"]
    # `python -v` says "code object from <file>" for each module it loads: the .pyc, or the .py it
    # compiled at import, which with the build's clamped mtimes and a read-only root would be every
    # start, every module.
    loaded = [line.split("code object from ", 1)[1].strip("'") for line in probe.stderr.splitlines()
              if line.startswith("# code object from") and "/opt/modelops/" in line]
    assert len(loaded) > 100 and all(path.endswith(".pyc") for path in loaded), [
        path for path in loaded if not path.endswith(".pyc")][:10]


def test_a_module_deleted_from_the_source_is_gone_from_the_image(images: dict[str, Path], tmp_path: Path) -> None:
    """image/layer.py on an image that has the package: the new layer's copy wins wholesale."""
    package = tmp_path / "src" / "modelops"
    shutil.copytree(SOURCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    deleted = sorted(_py_files(package) - {"__init__.py"})[0]
    (package / deleted).unlink()
    out = tmp_path / "changed.oci.tar"
    subprocess.run([sys.executable, str(ROOT / "image" / "layer.py"), "--base", str(archive("operator")),
                    "--out", str(out), "--ref", "docker.io/library/modelops-changed:0", "--package", str(package),
                    "--created", "0"], check=True, capture_output=True)
    into = tmp_path / "changed"
    subprocess.run([*RUN, "unpack", str(out), str(into)], check=True, capture_output=True)
    installed = into / "bundle" / "rootfs" / SITE / "modelops"
    assert _py_files(installed) == _py_files(SOURCE) - {deleted}
    stem = Path(deleted)
    assert not (installed / stem.parent / "__pycache__" / f"{stem.stem}.cpython-311.pyc").exists()
    helped = run(into, "--help")
    assert helped.returncode == 0 and "usage: modelops" in helped.stdout, helped.stderr


def test_testing_image_is_the_server_image_plus_the_test_models(images: dict[str, Path]) -> None:
    index = json.loads((images[TESTING] / "layout" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == (
        f"docker.io/library/modelops-{TESTING}:{VERSION}")
    server, testing = _manifest(images["server"])["layers"], _manifest(images[TESTING])["layers"]
    assert testing[:-1] == server and len(testing) == len(server) + 1
    names = _top_layer_names(images[TESTING])
    assert f"{SITE}/modelops_testing/.wh..wh..opq" in names
    assert _site_packages_tops(names) == {"modelops_testing"}
    spec = json.loads((images[TESTING] / "bundle" / "config.json").read_text())
    assert spec["annotations"]["org.opencontainers.image.title"] == f"modelops-{TESTING}"
    assert spec["process"]["user"]["uid"] == 65532
    # No PYTHONPATH: the test models are in the image's own site-packages, next to modelops.
    probe = run(images[TESTING], "-c", "\n".join([
        "import os, modelops_testing, modelops_testing.wrappers",
        "assert 'PYTHONPATH' not in os.environ",
        "print(modelops_testing.__file__)",
        "print(' '.join(modelops_testing.TRUSTED_TYPES))",
    ]), entrypoint="python3")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [f"/{SITE}/modelops_testing/__init__.py", *(
        f"modelops_testing.wrappers.{name}" for name in ("SlowEstimator", "FailAboveEstimator"))]
    trainer = run(images[TESTING], "-m", "modelops_testing", "train", "--help", entrypoint="python3")
    assert trainer.returncode == 0 and "--dataset" in trainer.stdout, trainer.stderr
