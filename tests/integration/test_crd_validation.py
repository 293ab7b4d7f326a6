"""Bad ModelDeployments are refused by the real API server at apply time, with a message that
names the offending field; every sample under manifests/samples/ is accepted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devcluster.localcluster import Cluster
from tests.integration.invalid_corpus import CASES, VALID, build

pytestmark = pytest.mark.integration
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "manifests" / "samples").glob("*.yaml"))


def _dry_run(cluster: Cluster, namespace: str, manifest: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cluster.bin / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "apply", "-n", namespace,
         "--dry-run=server", "-f", "-"],
        input=manifest, capture_output=True, text=True, timeout=60,
    )


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert len({case for case, _, _ in CASES}) == len(CASES)


def test_valid_base_is_accepted(cluster: Cluster, namespace: str) -> None:
    proc = _dry_run(cluster, namespace, json.dumps(VALID))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("change", "field"), [(c, f) for _, c, f in CASES], ids=[i for i, _, _ in CASES])
def test_invalid_object_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, change: dict[str, object], field: str
) -> None:
    proc = _dry_run(cluster, namespace, json.dumps(build(change)))
    assert proc.returncode != 0, f"accepted: {proc.stdout}"
    assert field in proc.stderr, proc.stderr


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_samples_are_accepted(cluster: Cluster, namespace: str, sample: Path) -> None:
    proc = _dry_run(cluster, namespace, sample.read_text())
    assert proc.returncode == 0, proc.stderr
