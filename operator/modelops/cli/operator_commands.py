"""`modelops run` (the operator) and `modelops crd` (the generated CRD)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--namespace", "-n", action="append", default=[],
                     help="watch only these namespaces (repeat the flag); default: the whole cluster")
    run.add_argument("--workers", type=int, default=16, help="reconciles running at once (default 16)")
    run.add_argument("--metrics-port", type=int, default=8080,
                     help="serve /metrics, /healthz and /readyz on this port (0: off; default 8080)")
    run.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                     help="take a coordination.k8s.io Lease before acting, so one replica acts at a time")
    run.add_argument("--lease-namespace", default=None,
                     help="namespace of the Lease (default: $POD_NAMESPACE, else the first --namespace, else default)")
    run.add_argument("--lease-name", default="modelops-operator")
    run.add_argument("--lease-duration", type=float, default=15.0,
                     help="seconds a Lease holds without renewal; renew deadline and retry follow from it")
    run.add_argument("--resync", type=float, default=300.0,
                     help="seconds between re-queues of every cached object (no API calls)")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    crd = commands.add_parser("crd", help="print the ModelDeployment CRD generated from the API models")
    crd.add_argument("--output", "-o", type=Path, default=None, help="write to this file instead of stdout")
    crd.set_defaults(func=_crd)


def _run(args: argparse.Namespace) -> int:
    from modelops.controller.runner import OperatorConfig, run_operator

    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, not {args.workers}")
    config = OperatorConfig(
        namespaces=list(args.namespace), workers=args.workers,
        metrics_port=args.metrics_port or None, leader_elect=args.leader_elect,
        lease_namespace=args.lease_namespace, lease_name=args.lease_name,
        lease_duration=args.lease_duration, resync_seconds=args.resync)
    return run_operator(config, verbose=args.verbose)


def _crd(args: argparse.Namespace) -> int:
    from modelops.api.crd import crd_yaml

    text = crd_yaml()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text)
    return 0
