"""`modelops train`, `modelops fetch` and `modelops serve`: the tools that run in serving pods.

Registered on the `modelops` command by modelops.cli.main. Heavy imports (scikit-learn, numpy,
the server) happen inside each command so `modelops --help` and the operator stay light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.training.train_args import add_train_command, train_options

if TYPE_CHECKING:
    from modelops.training.trainer import TrainOptions


def register(commands: Any) -> None:
    """Add the serving subcommands to the `modelops` argparse subparsers."""
    add_train_command(commands, _train)
    _register_fetch(commands)
    _register_serve(commands)
    from modelops.training.served_data import register as register_dataset

    register_dataset(commands)


def _lineage(args: argparse.Namespace) -> dict[str, Any]:
    """--lineage and --trigger, plus the dataset's sha256 when it is a file."""
    from modelops.artifacts.digest import sha256_path

    if args.lineage is None and args.trigger is None:
        return {}
    lineage: dict[str, Any] = dict(args.lineage or {})
    if args.trigger is not None:
        lineage["trigger"] = args.trigger
    path = Path(args.dataset)
    if "dataset" not in lineage and path.is_file():
        lineage["dataset"] = {"uri": args.dataset, "sha256": sha256_path(path)}
    return lineage


def run_train(opts: TrainOptions) -> int:
    """Train, print one summary line, and return the exit code (2 for bad input)."""
    from modelops.training.trainer import train

    try:
        meta = train(opts)
    except (ValueError, OSError) as exc:
        print(f"modelops train: {exc}", file=sys.stderr)
        return 2
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in meta.metrics.items())
    print(
        f"wrote {opts.output} ({meta.name} v{meta.version}, {meta.format}, {meta.task}; {metrics}) sha256={meta.sha256}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    opts = train_options(args)
    opts.lineage = _lineage(args)
    return run_train(opts)


def _register_fetch(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "fetch",
        help="fetch and verify a model file (serving pod init step)",
        description="Fetch a model file (and its sibling metadata.json) into a directory, verifying sha256.",
    )
    p.add_argument("uri", help="file:///path/model.joblib | pvc://<claim>/<path> | s3://<bucket>/<key> | https://...")
    p.add_argument("--sha256", default=None,
                   help="expected hex digest of the model file (required for joblib, optional for skops)")
    p.add_argument("--output", required=True, type=Path, help="directory to write into")
    p.add_argument("--pvc-root", type=Path, default=Path("/mnt/pvc"), help="where pvc://<claim> volumes are mounted")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    p.add_argument("--retries", type=int, default=3, help="retries of a failed HTTP download")
    p.add_argument("--max-bytes", type=int, default=4 * 1024**3, help="largest model file accepted (bytes)")
    p.add_argument("--max-time", type=float, default=900.0, help="seconds for the whole download, retries included")
    p.set_defaults(func=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    from modelops.artifacts.errors import ArtifactError
    from modelops.artifacts.fetch import fetch_model

    try:
        path = fetch_model(args.uri, args.sha256, args.output, args.pvc_root, args.timeout, args.retries,
                           args.max_bytes, args.max_time)
    except (ArtifactError, OSError) as exc:
        print(f"modelops fetch: {exc}", file=sys.stderr)
        return 1
    print(f"fetched {args.uri} -> {path} (sha256 verified)")
    return 0


def _register_serve(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="serve a model directory over HTTP (OIP v2 and KServe v1)",
        description="Serve a model directory: OIP v2 REST, KServe v1, Prometheus /metrics.",
    )
    p.add_argument("model_dir", type=Path, metavar="DIR")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--name", help="model name in URLs (default: the model's own)")
    p.add_argument("--version", help="model version (default: from metadata.json)")
    p.add_argument("--revision", default="", help="revision label on metrics (default: sha256 prefix)")
    p.add_argument("--sha256", help="expected digest of the model file (default: model.sha256)")
    p.add_argument(
        "--workers", type=int, default=0, help="worker processes (default: one per CPU, capped by the cgroup CPU limit)"
    )
    p.add_argument("--max-batch-size", type=int, default=64, help="most rows merged into one predict")
    p.add_argument(
        "--max-latency-ms",
        type=float,
        default=0.0,
        help="longest a request may wait for a batch to fill (0: merge only what arrived together)",
    )
    p.add_argument("--max-rows", type=int, default=4096, help="most rows in one request")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024)
    p.add_argument("--request-timeout", type=float, default=10.0, help="seconds a client has to send a request")
    p.add_argument("--keepalive-timeout", type=float, default=75.0)
    p.add_argument("--drain-timeout", type=float, default=25.0, help="seconds to finish in-flight work on SIGTERM")
    p.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve OIP v2 over gRPC (and grpc.health.v1) on this port; 0: any free port (default: no gRPC)",
    )
    p.add_argument(
        "--predict-timeout",
        type=float,
        default=30.0,
        help="seconds a request may wait on the model before it fails (504 / DEADLINE_EXCEEDED); "
        "a worker stuck this long makes the server unready",
    )
    p.add_argument("--max-connections", type=int, default=4096, help="open HTTP connections per worker")
    p.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="serve a model trained with another scikit-learn minor / numpy major version",
    )
    p.add_argument(
        "--trust-type",
        dest="trusted_types",
        action="append",
        default=[],
        metavar="MODULE.TYPE",
        help="trust this type in a skops file besides scikit-learn's own (repeatable; loading it runs its code)",
    )
    p.add_argument(
        "--no-fast-path",
        action="store_true",
        help="always call the model's own predict (no folded linear fast path)",
    )
    nan = p.add_mutually_exclusive_group()
    nan.add_argument(
        "--allow-nan",
        dest="allow_nan",
        action="store_true",
        default=None,
        help="accept NaN/Inf inputs (default: as metadata.json says)",
    )
    nan.add_argument("--reject-nan", dest="allow_nan", action="store_false")
    p.add_argument("--drift-window", type=float, default=600.0, help="seconds of traffic compared with the baseline")
    p.add_argument("--drift-interval", type=float, default=5.0, help="seconds between PSI updates")
    p.add_argument("--drift-min-rows", type=int, default=100, help="rows needed before PSI is exported")
    _add_feedback_arguments(p)
    p.set_defaults(func=_serve)


def _add_feedback_arguments(p: Any) -> None:
    """The feedback and request-log flags of `modelops serve` (read by serving.feedback.configs_from_args).

    Here, not in serving.feedback: that module needs the server extra (orjson, numpy), and the
    operator image, which has neither, builds this parser for `modelops --help`."""
    g = p.add_argument_group("feedback and request log")
    g.add_argument("--feedback-capacity", type=int, default=65536,
                   help="prediction rows each worker remembers for joining labels (0: no feedback endpoint)")
    g.add_argument("--feedback-join-window", type=float, default=3600.0,
                   help="seconds a prediction waits for its label; later labels count as expired")
    g.add_argument("--quality-window", type=float, default=600.0,
                   help="seconds of joined labels behind the rolling accuracy / MAE gauges")
    g.add_argument("--log-requests-to", metavar="URI",
                   help="log sampled requests and all labels as Parquet under this directory "
                        "(file://, pvc://<claim>/<path> or s3://<bucket>/<prefix>)")
    g.add_argument("--log-sample-rate", type=float, default=1.0, help="share of requests logged (0-1)")
    g.add_argument("--log-max-rows", type=int, default=50_000, help="rows per Parquet file")
    g.add_argument("--log-max-seconds", type=float, default=60.0, help="seconds before a Parquet file is written")


def _serve(args: argparse.Namespace) -> int:
    import os

    # Before numpy loads its BLAS (importing the server does): later, only threadpoolctl helps.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from modelops.serving.feedback import configs_from_args
    from modelops.serving.server import ServeConfig, serve

    try:
        feedback_config, request_log_config = configs_from_args(args)
    except ValueError as exc:
        print(f"modelops serve: {exc}", file=sys.stderr)
        return 2

    for flag, value in (
        ("--workers", args.workers),
        ("--max-batch-size", args.max_batch_size - 1),
        ("--max-rows", args.max_rows - 1),
        ("--max-connections", args.max_connections - 1),
        ("--grpc-port", 0 if args.grpc_port is None else args.grpc_port),
    ):
        if value < 0:
            print(f"modelops serve: {flag} must be positive", file=sys.stderr)
            return 2
    if args.grpc_port and args.grpc_port == args.port:
        print(f"modelops serve: --grpc-port {args.grpc_port} is the HTTP port too; pick another", file=sys.stderr)
        return 2
    return serve(
        ServeConfig(
            model_dir=args.model_dir,
            host=args.host,
            port=args.port,
            name=args.name,
            version=args.version,
            revision=args.revision,
            sha256=args.sha256,
            workers=args.workers,
            max_batch_size=args.max_batch_size,
            max_latency_ms=args.max_latency_ms,
            max_rows=args.max_rows,
            max_body_bytes=args.max_body_bytes,
            request_timeout_s=args.request_timeout,
            keepalive_timeout_s=args.keepalive_timeout,
            drain_timeout_s=args.drain_timeout,
            allow_version_mismatch=args.allow_version_mismatch,
            trusted_types=tuple(args.trusted_types),
            fast_path=not args.no_fast_path,
            allow_nan=args.allow_nan,
            drift_window_s=args.drift_window,
            drift_interval_s=args.drift_interval,
            drift_min_rows=args.drift_min_rows,
            feedback=feedback_config,
            request_log=request_log_config,
            grpc_port=args.grpc_port,
            predict_timeout_s=args.predict_timeout,
            max_connections=args.max_connections,
        )
    )
