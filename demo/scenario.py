"""Building blocks of the end-to-end scenarios and of `make demo`: trained models, ModelDeployment
manifests pinned onto the real nodes, and waiting on observable status.

Models and data reach the pods as a cluster gives them: on PersistentVolumeClaims (devcluster/claims.py
binds a host directory to a claim). `share(directory, claim)` records which claim a host directory is;
`uri_for(path)` turns a host path under it into the `pvc://<claim>/<path>` a ModelDeployment names.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sklearn.datasets import load_iris

from devcluster import claims, realnode
from devcluster.localcluster import Cluster
from tests import models

MODELS_CLAIM = "models"
DATA_CLAIM = "data"
SERVER_IMAGE = "modelops-server:0.1.0"
# The server image plus the deliberately slow or failing test models' package (make image).
TESTING_IMAGE = "modelops-server-testing:0.1.0"
_SHARED: dict[Path, str] = {}


def share(directory: Path, claim: str) -> None:
    """Record that `directory` is what claim `claim` holds (in every test namespace that binds it)."""
    _SHARED[directory.resolve()] = claim


def uri_for(path: Path) -> str:
    """The pvc:// URI of a host path under a shared directory."""
    resolved = path.resolve()
    for root, claim in sorted(_SHARED.items(), key=lambda item: len(item[0].parts), reverse=True):
        if resolved == root or root in resolved.parents:
            rel = resolved.relative_to(root)
            return f"pvc://{claim}/{rel}" if rel.parts else f"pvc://{claim}/"
    raise ValueError(f"{path} is not under a directory shared as a claim ({sorted(map(str, _SHARED))})")


@dataclass(frozen=True)
class TrainedModel:
    directory: Path
    version: str
    sha256: str
    format: str = "joblib"
    # The image that can load it: the test models need their own package (TESTING_IMAGE).
    image: str = SERVER_IMAGE

    @property
    def uri(self) -> str:
        return uri_for(self.directory / ("model." + self.format))


def train(root: Path, label: str, version: str, *extra: str, image: str = SERVER_IMAGE) -> TrainedModel:
    """Train an iris model (once: a directory already written is reused)."""
    out = root / label
    if not (out / "model.sha256").exists():
        # The test trainer: `modelops train` plus --slow-ms / --fail-above (tests/models).
        subprocess.run(models.train_command("--dataset", "iris", "--output", str(out), "--version", version,
                                            "--name", "iris", *extra), check=True, capture_output=True)
    sha = (out / "model.sha256").read_text().split()[0]
    return TrainedModel(out, version, sha, image=image)


def train_demo_models(root: Path) -> dict[str, TrainedModel]:
    """v1 and v2 are good; `failing` raises on a share of inputs; `slow` sleeps in every predict."""
    return {
        "v1": train(root, "v1", "1"),
        "v2": train(root, "v2", "2", "--seed", "2"),
        "failing": train(root, "failing", "3", "--fail-above", "8.0", "--fail-feature", "0", image=TESTING_IMAGE),
        "slow": train(root, "slow", "4", "--slow-ms", "40", image=TESTING_IMAGE),
    }


def manifest(name: str, model: TrainedModel, *, replicas: int = 2, steps: list[dict[str, Any]] | None = None,
             metrics: list[dict[str, Any]] | None = None, interval: str = "2s", prometheus_url: str | None = None,
             sha256: str | None = None, min_requests: int = 10, failure_limit: int = 0,
             bake_time: str = "0s") -> dict[str, Any]:
    """A ModelDeployment whose pods land on the real nodes."""
    spec: dict[str, Any] = {
        "model": {"name": "iris", "version": model.version, "uri": model.uri,
                  "sha256": sha256 or model.sha256, "format": model.format},
        "serving": {"replicas": replicas, "workers": 1, "image": model.image, **realnode.placement(),
                    "batching": {"maxBatchSize": 32, "maxLatencyMs": 1}},
        "rollout": {
            "steps": steps if steps is not None else [
                {"setWeight": 10}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}}],
            "analysis": {"interval": interval, "minRequests": min_requests, "failureLimit": failure_limit,
                         "metrics": metrics if metrics is not None else [
                             {"name": "errors", "builtin": "errorRate", "max": 0.02}]},
            "bakeTime": bake_time,
        },
    }
    if prometheus_url:
        # The test Prometheus scrapes every second (devcluster/prometheus.py): windows of 4s.
        spec["monitoring"] = {"prometheusUrl": prometheus_url, "scrapeInterval": "1s"}
    return {"apiVersion": "modelops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": spec}


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def get(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any]:
    out = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return dict(get(cluster, namespace, "mdep", name).get("status") or {})


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def wait_status(cluster: Cluster, namespace: str, name: str, check: Callable[[dict[str, Any]], bool], what: str,
                timeout: float = 120, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Poll the status until `check` holds; `seen` collects every distinct status on the way."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        st = status(cluster, namespace, name)
        if seen is not None and st and (not seen or seen[-1] != st):
            seen.append(st)
        if st and check(st):
            return st
        last = st
        time.sleep(0.25)
    analysis = json.dumps(last.get("analysis"), default=str)[:1500]
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last phase "
                         f"{last.get('phase')!r}: {last.get('message')!r}; analysis: {analysis}")


def deployments(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return list(get(cluster, namespace, "deployments", "-l", f"app.kubernetes.io/instance={name}").get("items", []))


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    items = get(cluster, namespace, "events", "--field-selector", f"involvedObject.name={name}").get("items", [])
    # eventTime has microseconds (the operator sets it); lastTimestamp only seconds.
    return sorted(items, key=lambda e: e.get("eventTime") or e.get("lastTimestamp") or "")


# ---------------------------------------------------------------- retraining: a world that moved

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]  # the models' names
SHIFT = 3.0  # added to feature 0 (sepal length) of everything the world now sends


def write_shifted_csv(path: Path, shift: float, seed: int, copies: int = 1) -> Path:
    """Iris with feature 0 shifted, jittered so that every copy is new data."""
    data = load_iris()
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*FEATURES, "label"])
        for _ in range(copies):
            for row, label in zip(data.data, data.target, strict=True):
                values = [float(v) + rng.gauss(0, 0.05) for v in row]
                values[0] += shift
                writer.writerow([f"{v:.4f}" for v in values] + [int(label)])
    return path


@lru_cache(maxsize=1)
def _iris() -> tuple[list[list[float]], list[int]]:
    data = load_iris()  # read once, not per request
    return [[float(v) for v in row] for row in data.data], [int(t) for t in data.target]


def shifted_labelled_rows(rng: random.Random) -> tuple[list[float], int]:
    """One request row of the moved world and its true class (a LoadGenerator `labelled_rows` function:
    the generator labels each answered prediction through the feedback endpoint)."""
    rows, targets = _iris()
    i = rng.randrange(len(rows))
    row = list(rows[i])
    row[0] += SHIFT
    return row, targets[i]


def iris_rows(rng: random.Random) -> list[float]:
    """One request row of the world the models were trained on (drawn from iris itself)."""
    rows, _ = _iris()
    return list(rows[rng.randrange(len(rows))])


def shifted_rows(rng: random.Random) -> list[float]:
    """One request row of the moved world (a LoadGenerator `rows` function)."""
    return shifted_labelled_rows(rng)[0]


def retraining_spec(dataset: Path, holdout: Path, output: Path, *, gate: dict[str, Any] | None,
                    cooldown: str = "10m", max_rejections: int = 3, for_duration: str = "2s") -> dict[str, Any]:
    """spec.retraining with compressed timings: drift over a 20 s window, held `for_duration`."""
    # Where the Job writes: made as a pod of the volume's group would make it (devcluster/claims.py).
    claims.prepare(output)
    spec: dict[str, Any] = {
        "triggers": {"drift": {"minSamples": 100, "forDuration": for_duration, "window": "20s"}},
        "job": {"dataset": {"uri": uri_for(dataset), "targetColumn": "label"},
                "holdout": {"uri": uri_for(holdout)},
                "output": {"uri": uri_for(output)},
                "deadline": "5m", "backoffLimit": 0},
        "guardrails": {"cooldown": cooldown, "maxRunsPerDay": 10, "requireNewData": True,
                       "maxConsecutiveRejections": max_rejections},
        "promotion": "Auto",
    }
    if gate is not None:
        spec["gate"] = gate
    return spec
