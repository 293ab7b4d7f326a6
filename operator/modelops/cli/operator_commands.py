"""`modelops run` (the operator) and `modelops crd` (the generated CRD)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--namespace", "-n", action="append", default=[], help="watch only these namespaces")
    run.add_argument("--liveness", default=None, help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=_run)

    crd = commands.add_parser("crd", help="print the ModelDeployment CRD generated from the API models")
    crd.add_argument("--output", "-o", type=Path, default=None, help="write to this file instead of stdout")
    crd.set_defaults(func=_crd)


def _run(args: argparse.Namespace) -> int:
    from modelops.controller.runner import run_operator

    return run_operator(namespaces=list(args.namespace), liveness=args.liveness, verbose=args.verbose)


def _crd(args: argparse.Namespace) -> int:
    from modelops.api.crd import crd_yaml

    text = crd_yaml()
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text)
    return 0
