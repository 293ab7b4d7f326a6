"""`modelops dataset build`: a training set from what the servers served and the labels clients sent.

Reads the request log that ``modelops serve --log-requests-to URI`` writes (modelops.artifacts.log_layout:
``URI/requests/*.parquet`` and ``URI/labels/*.parquet``), joins each logged row with its label by
(request id, row) — the latest label wins when a row was labelled twice; unlabelled rows are left out —
and writes the model's feature columns plus the target column as CSV or Parquet (by the output's
suffix). Rows are ordered by request time, id and row, so the same log gives the same bytes and the
same sha256: a retraining Job that finds the digest unchanged knows there is no new data.

Run in retraining Jobs (and by hand); prints ``rows=<n> sha256=<hex> out=<URI>``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from typing import Any

from modelops.artifacts import uri as uris
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.log_layout import FEATURES_KEY, LABELS_DIR, REQUESTS_DIR
from modelops.artifacts.store import ArtifactStore


class DatasetError(Exception):
    """The request log cannot make a training set; the message says why."""


@dataclass(frozen=True)
class BuiltDataset:
    uri: str
    rows: int
    sha256: str
    features: list[str]
    request_files: int
    label_files: int


def _read_tables(store: ArtifactStore, files: list[str]) -> list[Any]:
    import pyarrow.parquet as pq

    tables = []
    for uri in files:
        try:
            tables.append(pq.read_table(io.BytesIO(store.read_bytes(uri))))
        except ArtifactError:
            raise
        except Exception as exc:  # a corrupt file names itself
            raise DatasetError(f"{uri}: not a readable Parquet file: {exc}") from None
    return tables


def build_dataset(source: str, out: str, target: str = "target", model: str | None = None,
                  store: ArtifactStore | None = None) -> BuiltDataset:
    """Join the request log under ``source`` with its labels and write the training set to ``out``."""
    import pandas as pd

    store = store or ArtifactStore()
    fmt = "csv" if out.endswith(".csv") else "parquet" if out.endswith((".parquet", ".pq")) else None
    if fmt is None:
        raise DatasetError(f"--out {out}: must end in .csv or .parquet")
    request_uris = store.list_files(uris.join(source, REQUESTS_DIR), ".parquet")
    label_uris = store.list_files(uris.join(source, LABELS_DIR), ".parquet")
    if not request_uris:
        raise DatasetError(f"{source}: no logged requests under {uris.join(source, REQUESTS_DIR)}")
    if not label_uris:
        raise DatasetError(f"{source}: no labels under {uris.join(source, LABELS_DIR)}")
    request_tables = _read_tables(store, request_uris)
    features: list[str] | None = None
    frames = []
    for uri, table in zip(request_uris, request_tables, strict=True):
        raw = (table.schema.metadata or {}).get(FEATURES_KEY)
        names = json.loads(raw) if raw else None
        if names is None:
            raise DatasetError(f"{uri}: no {FEATURES_KEY.decode()} metadata (not written by the request log)")
        frame = table.to_pandas()
        if model is not None:
            frame = frame[frame["_model"] == model]
        if frame.empty:
            continue
        if features is None:
            features = names
        elif names != features:
            raise DatasetError(f"{uri}: features {names} differ from {features} in earlier files "
                               "(log a model with other inputs under another URI)")
        frames.append(frame)
    if features is None or not frames:
        raise DatasetError(f"{source}: no logged requests" + (f" of model {model!r}" if model else ""))
    if target in features or target.startswith("_"):
        raise DatasetError(f"--target {target!r} collides with a feature or log column name")
    requests = pd.concat(frames, ignore_index=True)
    # A request logged twice (a retried write) counts once.
    requests = requests.drop_duplicates(subset=["_id", "_row"], keep="last")
    labels = pd.concat([t.to_pandas() for t in _read_tables(store, label_uris)], ignore_index=True)
    labels = labels.sort_values(["_time"], kind="stable").drop_duplicates(subset=["_id", "_row"], keep="last")
    labels[target] = [json.loads(v) for v in labels["_label"]]
    joined = requests.merge(labels[["_id", "_row", target]], on=["_id", "_row"], how="inner")
    if joined.empty:
        raise DatasetError(f"{source}: no logged request has a label yet ({len(requests)} requests, "
                           f"{len(labels)} labels)")
    joined = joined.sort_values(["_time", "_id", "_row"], kind="stable")
    dataset = joined[[*features, target]].reset_index(drop=True)
    buf = io.BytesIO()
    if fmt == "csv":
        buf.write(dataset.to_csv(index=False, lineterminator="\n").encode())
    else:
        dataset.to_parquet(buf, index=False)
    data = buf.getvalue()
    store.write_bytes(out, data)
    return BuiltDataset(out, len(dataset), hashlib.sha256(data).hexdigest(), features, len(request_uris),
                        len(label_uris))


def register(commands: Any) -> None:
    """Add `modelops dataset build` to the `modelops` argparse subparsers."""
    p: argparse.ArgumentParser = commands.add_parser(
        "dataset", help="build a training set from the servers' request log and feedback labels")
    sub = p.add_subparsers(dest="dataset_command", required=True)
    b = sub.add_parser("build", help="join logged requests with their labels into a CSV / Parquet training set",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    b.add_argument("--from", dest="source", required=True, metavar="URI",
                   help="the --log-requests-to directory (file://, pvc://<claim>/<path> or s3://)")
    b.add_argument("--out", required=True, metavar="URI", help="training set to write (.csv or .parquet)")
    b.add_argument("--target", default="target", help="name of the label column (default: target)")
    b.add_argument("--model", help="only rows served by this model name")
    b.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    try:
        built = build_dataset(args.source, args.out, args.target, args.model)
    except (DatasetError, ArtifactError, OSError) as exc:
        print(f"modelops dataset build: {exc}", file=sys.stderr)
        return 2
    print(f"rows={built.rows} sha256={built.sha256} out={built.uri} "
          f"(features: {', '.join(built.features)}; target: {args.target})")
    return 0
