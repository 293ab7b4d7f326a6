"""`modelops retrain-job`: what a retraining Job runs. Train, gate, and report through the
termination message.

Run in the Job the controller builds (modelops.resources.jobs). Steps: bring the dataset (a URI, or
the servers' logged requests joined with their feedback labels) through the artifact store
(modelops.artifacts.store: file://, pvc://, s3:// or http(s)://, within its size and time caps),
hash it and stop early with NoNewData when it is the data the current model was trained on; train
into the output directory with lineage in metadata.json (a scratch folder copied up to an s3://
output); score candidate and current model on the frozen holdout (modelops.training.evaluation);
write the result JSON (modelops.retraining.result) to the termination log. A rejection is a result,
not a failure: the process exits 0 so the Job does not retry; errors exit non-zero and their message
reaches the pod status through FallbackToLogsOnError.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.artifacts import uri as uris
from modelops.artifacts.digest import sha256_path
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.model_dir import MODEL_FILES, publish_order
from modelops.artifacts.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, ArtifactStore
from modelops.retraining.result import JobResult
from modelops.training.evaluation import GateRule, evaluate, load_model

LABEL_COLUMN = "label"


@dataclass
class RetrainJobOptions:
    output: str
    name: str
    version: str
    format: str = "joblib"
    dataset: str | None = None
    from_serving: str | None = None
    target: str | None = None
    dataset_sha256: str | None = None
    holdout: str | None = None
    holdout_sha256: str | None = None
    current: str | None = None
    current_sha256: str | None = None
    gate: GateRule | None = None
    skip_if_dataset_sha256: str | None = None
    trigger: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    train_args: list[str] = field(default_factory=list)
    pvc_root: Path = Path("/mnt/pvc")
    scratch: Path = Path("/tmp/modelops-retrain")
    termination_log: Path = Path("/dev/termination-log")
    max_bytes: int = DEFAULT_MAX_BYTES  # each download: dataset, holdout, current model
    max_seconds: float = DEFAULT_MAX_SECONDS

    def store(self) -> ArtifactStore:
        return ArtifactStore(pvc_root=self.pvc_root, max_bytes=self.max_bytes, max_seconds=self.max_seconds)


class RetrainJobError(Exception):
    """The run cannot finish; the message says what to fix."""


def served_dataset(location: str, store: ArtifactStore, scratch: Path) -> Path:
    """The servers' request log under `location` joined with its feedback labels, as one Parquet file.

    The log is what `modelops serve --log-requests-to` writes (`requests/` and `labels/`); the join is
    `modelops dataset build`'s (by request id and row; unlabelled rows left out), so a Job trains on
    exactly the set a person would build by hand. A pvc:// location is read under the store's pvc root.
    """
    from modelops.training.served_data import DatasetError, build_dataset

    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / "served.parquet"
    try:
        build_dataset(location, out.as_uri(), target=LABEL_COLUMN, store=store)
    except (DatasetError, ArtifactError) as exc:
        raise RetrainJobError(f"--from-serving {location}: {exc}") from None
    return out


def output_dir(uri: str, store: ArtifactStore, scratch: Path) -> Path:
    """Where the trainer writes: the folder itself for file:// and pvc://, a scratch folder for s3://
    (copied up by `publish` once the model is complete)."""
    if uris.scheme(uri) not in uris.WRITABLE_SCHEMES:
        raise RetrainJobError(f"--output {uri}: must be file://, pvc:// or s3:// (http is read-only)")
    path = store.local_path(uri)
    if path is None:
        path = scratch / "output"
        if path.exists():
            shutil.rmtree(path)  # a previous attempt's files must not be published with this one's
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish(directory: Path, uri: str, store: ArtifactStore) -> None:
    """Copy a trained model directory to a remote output, metadata.json last (a reader that finds it
    finds the model it describes). A local output is the directory already."""
    if store.is_local(uri):
        return
    for file in publish_order(directory):
        store.upload(file, uris.join(uri, file.name))


def run(opts: RetrainJobOptions) -> JobResult:
    """One run; the result is also written to `opts.termination_log`."""
    from modelops.training.train_args import train_options_from_args

    store = opts.store()
    target: str | None
    if opts.from_serving:
        data_path = served_dataset(opts.from_serving, store, opts.scratch)
        data_uri, target = opts.from_serving, LABEL_COLUMN
    elif opts.dataset:
        data_path = store.local_copy(opts.dataset, opts.scratch / "dataset")
        data_uri, target = opts.dataset, opts.target
    else:
        raise RetrainJobError("give --dataset or --from-serving")
    dataset_sha = sha256_path(data_path)
    if opts.dataset_sha256 and opts.dataset_sha256 != dataset_sha:
        raise RetrainJobError(f"dataset {data_uri}: sha256 {dataset_sha} is not the expected {opts.dataset_sha256}")
    if opts.skip_if_dataset_sha256 and opts.skip_if_dataset_sha256 == dataset_sha:
        result = JobResult(outcome="NoNewData", dataset_sha256=dataset_sha)
        write_result(result, opts.termination_log)
        return result
    holdout_path = store.local_copy(opts.holdout, opts.scratch / "holdout") if opts.holdout else None
    holdout_sha = sha256_path(holdout_path) if holdout_path else None
    if opts.holdout_sha256 and opts.holdout_sha256 != holdout_sha:
        raise RetrainJobError(f"holdout {opts.holdout}: sha256 {holdout_sha} is not the expected {opts.holdout_sha256}")

    model_dir = output_dir(opts.output, store, opts.scratch)
    lineage = {
        "dataset": {"uri": data_uri, "sha256": dataset_sha},
        "holdout": {"uri": opts.holdout, "sha256": holdout_sha} if opts.holdout else None,
        "image": opts.image,
        "args": list(opts.train_args),
        "trigger": opts.trigger,
        "parent": {"uri": opts.current, "sha256": opts.current_sha256} if opts.current else None,
    }
    train_opts = train_options_from_args(
        opts.train_args, dataset=str(data_path), output=model_dir, format=opts.format, target=target,
        version=opts.version, name=opts.name)
    train_opts.lineage = {k: v for k, v in lineage.items() if v is not None}
    from modelops.training.trainer import train

    meta = train(train_opts)
    gate = None
    if opts.gate is not None:
        if holdout_path is None:
            raise RetrainJobError("a gate needs --holdout")
        candidate = load_model(str(model_dir), meta.sha256, opts.pvc_root)
        current = (load_model(opts.current, opts.current_sha256, opts.pvc_root, opts.max_bytes, opts.max_seconds)
                   if opts.current else None)
        gate = evaluate(candidate, current, holdout_path, target, opts.gate)
    # Published whether or not the gate passed: a rejected candidate stays there to be looked at.
    publish(model_dir, opts.output, store)
    model_uri = uris.join(opts.output, MODEL_FILES[meta.format])
    result = JobResult(
        outcome="Rejected" if gate is not None and not gate.passed else "Trained",
        dataset_sha256=dataset_sha, uri=model_uri, sha256=meta.sha256, format=meta.format, version=meta.version,
        rows=int(meta.lineage.get("rows", 0)) or None, holdout_sha256=holdout_sha, gate=gate,
    )
    write_result(result, opts.termination_log)
    return result


def write_result(result: JobResult, path: Path) -> None:
    """The result where the kubelet reads the termination message (a plain write: it is a file there)."""
    try:
        path.write_text(result.to_json())
    except OSError as error:
        # Outside a pod /dev/termination-log does not exist; the result is on stdout too.
        print(f"modelops retrain-job: cannot write {path}: {error}", file=sys.stderr)
    print(json.dumps(json.loads(result.to_json()), indent=None))
    sys.stdout.flush()
