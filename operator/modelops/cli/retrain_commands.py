"""`modelops evaluate` and `modelops retrain-job`: the retraining Job's tools.

Registered on the `modelops` command by modelops.cli.main. `evaluate` scores a candidate and the
current model on one holdout and exits 1 when the gate rejects the candidate (0 when it passes, 2 on
errors), printing both numbers. `retrain-job` is the Job's entry point (modelops.training.retrain_job);
its arguments are built by modelops.resources.jobs.retrain_args.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_REJECTED = 1
EXIT_ERROR = 2


def register(commands: Any) -> None:
    _register_evaluate(commands)
    _register_retrain_job(commands)


def _gate_flags(p: argparse.ArgumentParser, metric_flag: str, required: bool) -> None:
    p.add_argument(metric_flag, dest="gate_metric", choices=["accuracy", "f1", "r2", "mae"], required=required,
                   default=None, help="the metric both models are scored on")
    p.add_argument("--min-value", type=float, default=None, help="accuracy/f1/r2: the candidate must reach this")
    p.add_argument("--max-value", type=float, default=None, help="mae: the candidate must stay at or below this")
    p.add_argument("--min-improvement", type=float, default=0.0,
                   help="how much better than current the candidate must be (lower for mae)")


def _download_flags(p: argparse.ArgumentParser) -> None:
    from modelops.artifacts.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS

    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                   help="largest file downloaded (dataset, holdout, model), in bytes")
    p.add_argument("--max-time", type=float, default=DEFAULT_MAX_SECONDS,
                   help="seconds each download may take, retries included")


def _register_evaluate(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "evaluate",
        help="score a candidate and the current model on one holdout; exit 1 when the gate rejects",
        description="Score --candidate and --current on the same --holdout; exit 0 when the candidate passes, "
        "1 when rejected, 2 on errors.",
    )
    p.add_argument("--candidate", required=True,
                   help="model directory, or model file URI (file://, pvc://, s3://, http(s)://)")
    p.add_argument("--candidate-sha256", default=None, help="expected digest (default: the directory's model.sha256)")
    p.add_argument("--current", default=None, help="the model to beat (omit: judge the candidate alone)")
    p.add_argument("--current-sha256", default=None)
    p.add_argument("--holdout", required=True, help="CSV or Parquet (path or URI)")
    p.add_argument("--target", default=None, help="label column of the holdout (default: the last column)")
    p.add_argument("--pvc-root", type=Path, default=Path("/mnt/pvc"))
    _download_flags(p)
    _gate_flags(p, "--metric", required=True)
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from modelops.artifacts.errors import ArtifactError
    from modelops.artifacts.store import ArtifactStore
    from modelops.training.evaluation import EvaluationError, GateRule, evaluate, load_model

    store = ArtifactStore(pvc_root=args.pvc_root, max_bytes=args.max_bytes, max_seconds=args.max_time)
    try:
        rule = GateRule(args.gate_metric, args.min_value, args.max_value, args.min_improvement)
        holdout = store.local_copy(args.holdout, Path("/tmp/modelops-eval")) if "://" in args.holdout \
            else Path(args.holdout)
        candidate = load_model(args.candidate, args.candidate_sha256, args.pvc_root, args.max_bytes, args.max_time)
        current = (load_model(args.current, args.current_sha256, args.pvc_root, args.max_bytes, args.max_time)
                   if args.current else None)
        outcome = evaluate(candidate, current, holdout, args.target, rule)
    except (EvaluationError, ArtifactError, ValueError, OSError) as error:
        print(f"modelops evaluate: {error}", file=sys.stderr)
        return EXIT_ERROR
    current_text = f"{outcome.current:.6g}" if outcome.current is not None else "-"
    verdict = "PASSED" if outcome.passed else "REJECTED"
    print(f"{rule.metric}: candidate {outcome.candidate:.6g}, current {current_text}: {verdict} ({outcome.message})")
    return 0 if outcome.passed else EXIT_REJECTED


def _register_retrain_job(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "retrain-job",
        help="what a retraining Job runs: train, gate, report through the termination message",
        description="Train on --dataset (or the servers' logs, --from-serving), gate against --current on "
        "--holdout, write the result JSON to --termination-log. Arguments after `--` go to `modelops train`.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", default=None, help="CSV/Parquet URI (file://, pvc://, s3://, http(s)://)")
    source.add_argument("--from-serving", default=None, metavar="URI",
                        help="folder of the servers' logged requests and feedback labels (Parquet)")
    p.add_argument("--target", default=None, help="label column (default: the last; `label` for --from-serving)")
    p.add_argument("--dataset-sha256", default=None, help="fail unless the dataset has this digest")
    p.add_argument("--skip-if-dataset-sha256", default=None, metavar="SHA256",
                   help="the current model's dataset: the same digest ends the run as NoNewData")
    p.add_argument("--holdout", default=None)
    p.add_argument("--holdout-sha256", default=None)
    p.add_argument("--current", default=None, help="URI of the model serving now (the one to beat)")
    p.add_argument("--current-sha256", default=None)
    p.add_argument("--output", required=True, help="directory URI to write the model into (file://, pvc://, s3://)")
    p.add_argument("--format", choices=["joblib", "skops"], default="joblib")
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--trigger", default="{}", help="the trigger's evidence, JSON (recorded in metadata.json)")
    p.add_argument("--image", default=None, help="the image this runs in (recorded in metadata.json)")
    p.add_argument("--pvc-root", type=Path, default=Path("/mnt/pvc"))
    p.add_argument("--scratch", type=Path, default=Path("/tmp/modelops-retrain"))
    _download_flags(p)
    p.add_argument("--termination-log", type=Path, default=Path("/dev/termination-log"))
    _gate_flags(p, "--gate-metric", required=False)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="`-- --estimator forest ...`: modelops train flags")
    p.set_defaults(func=_retrain_job)


def _retrain_job(args: argparse.Namespace) -> int:
    from modelops.artifacts.errors import ArtifactError
    from modelops.retraining.result import ResultError
    from modelops.training.evaluation import EvaluationError, GateRule
    from modelops.training.retrain_job import RetrainJobError, RetrainJobOptions, run

    extra = list(args.train_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    try:
        trigger = json.loads(args.trigger)
        if not isinstance(trigger, dict):
            raise ValueError("--trigger must be a JSON object")
        gate = None
        if args.gate_metric is not None:
            gate = GateRule(args.gate_metric, args.min_value, args.max_value, args.min_improvement)
        result = run(RetrainJobOptions(
            output=args.output, name=args.name, version=args.version, format=args.format, dataset=args.dataset,
            from_serving=args.from_serving, target=args.target, dataset_sha256=args.dataset_sha256,
            holdout=args.holdout, holdout_sha256=args.holdout_sha256, current=args.current,
            current_sha256=args.current_sha256, gate=gate, skip_if_dataset_sha256=args.skip_if_dataset_sha256,
            trigger=trigger, image=args.image, train_args=extra, pvc_root=args.pvc_root, scratch=args.scratch,
            termination_log=args.termination_log, max_bytes=args.max_bytes, max_seconds=args.max_time,
        ))
    except (RetrainJobError, EvaluationError, ArtifactError, ResultError, ValueError, OSError) as error:
        print(f"modelops retrain-job: {error}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as exit_:  # a bad `modelops train` flag in spec.retraining.job.args
        print("modelops retrain-job: spec.retraining.job.args holds a flag `modelops train` does not take",
              file=sys.stderr)
        return int(exit_.code or EXIT_ERROR)
    print(f"modelops retrain-job: {result.outcome}", file=sys.stderr)
    return 0
