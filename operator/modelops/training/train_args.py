"""The flags of `modelops train`, parsed into the trainer's options.

One parser for the `train` command (registered by modelops.cli.serving_commands) and for the flags a
retraining Job passes through (spec.retraining.job.args, read by modelops.training.retrain_job), so a
Job accepts exactly the flags `modelops train` documents. Nothing heavy is imported here: the operator
image builds this parser for `modelops --help`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.training.trainer import TrainOptions


def add_train_command(commands: Any, func: Callable[[argparse.Namespace], int] | None = None) -> None:
    """Add `modelops train` to argparse subparsers; ``func`` runs it (None: parse only)."""
    p: argparse.ArgumentParser = commands.add_parser(
        "train",
        help="train a scikit-learn model and write a model directory",
        description="Train a scikit-learn pipeline and write model file, model.sha256 and metadata.json.",
    )
    p.add_argument("--dataset", required=True,
                   help="iris | wine | breast_cancer | diabetes | PATH or URI (file://, pvc://, s3://, http(s)://) "
                   "of a .csv or .parquet file")
    p.add_argument("--output", required=True, type=Path, help="model directory to write")
    p.add_argument("--format", choices=["joblib", "skops"], default="joblib")
    p.add_argument("--target", help="target column of a CSV/Parquet dataset (default: the last column)")
    p.add_argument("--version", default="1", help="model version recorded in metadata.json")
    p.add_argument("--name", help="model name (default: the dataset's name)")
    p.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    p.add_argument("--estimator", choices=["linear", "forest", "hgb"], default="linear")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bins", type=int, default=10, help="drift baseline bins per feature")
    p.add_argument("--lineage", type=_json_object, default=None, metavar="JSON",
                   help="lineage recorded in metadata.json (dataset URI, image, parent sha256, ...)")
    p.add_argument("--trigger", type=_json_object, default=None, metavar="JSON",
                   help="the retraining trigger's evidence (signal, value, samples, window, at)")
    p.add_argument("--shuffle-labels", action="store_true", help="train on shuffled labels: a deliberately worse model")
    if func is not None:
        p.set_defaults(func=func)


def _json_object(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def train_options_from_args(extra: list[str], **fixed: Any) -> Any:
    """TrainOptions from `modelops train` flags in `extra` (spec.retraining.job.args), with `fixed` winning.

    Used by `modelops retrain-job`, so a Job accepts exactly the flags `modelops train` documents.
    """
    from modelops.training.trainer import TrainOptions

    parser = argparse.ArgumentParser(prog="modelops train", add_help=False)
    holder = parser.add_subparsers()
    add_train_command(holder)
    train_parser = holder.choices["train"]
    args = train_parser.parse_args(["--dataset", str(fixed["dataset"]), "--output", str(fixed["output"]), *extra])
    opts = train_options(args)
    for key, value in fixed.items():
        if value is not None:
            setattr(opts, key, value)
    assert isinstance(opts, TrainOptions)
    return opts


def train_options(args: argparse.Namespace) -> TrainOptions:
    """The trainer's options from parsed `modelops train` arguments (tests extend them with wrappers)."""
    from modelops.training.trainer import TrainOptions

    return TrainOptions(
        dataset=args.dataset,
        output=args.output,
        format=args.format,
        target=args.target,
        version=args.version,
        name=args.name,
        task=args.task,
        estimator=args.estimator,
        seed=args.seed,
        bins=args.bins,
        shuffle_labels=args.shuffle_labels,
    )
