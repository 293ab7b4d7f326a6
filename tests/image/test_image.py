"""The images from `make image`, run the way a restricted pod runs them (`make test-image`).

Each OCI archive in dist/ is unpacked with umoci and run with runc (image/run.py) from the image's
own root filesystem, as its own user 65532, with a read-only root and a tmpfs /tmp. The trainer
image trains a model, the server image serves it and answers one inference, the operator image
prints `modelops --help` and the operator's `--help` and carries no scikit-learn or pandas.
Needs root (runc) and the archives: `make test-image` builds them first; without them every test
here errors with the command to run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "image" / "run.py")]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ROLES = ("operator", "server", "trainer")


def archive(role: str) -> Path:
    return ROOT / "dist" / f"modelops-{role}-{VERSION}.oci.tar"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each role's archive unpacked (layout + root filesystem), once for this module."""
    missing = [str(archive(r)) for r in ROLES if not archive(r).is_file()]
    if missing:
        pytest.fail(f"no image archive {', '.join(missing)}: run `make image` (or `make test-image`) first")
    unpacked = {}
    for role in ROLES:
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
