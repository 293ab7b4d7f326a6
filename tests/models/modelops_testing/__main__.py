"""`python -m modelops_testing train ARGS`: `modelops train` plus the test-only model flags.

Accepts every `modelops train` flag and ``--slow-ms``, ``--fail-above``, ``--fail-feature``. Run by
demo/scenario.py, the harness tests and benchmarks/controller (through tests.models).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from modelops.cli.main import build_parser
from modelops.cli.serving_commands import run_train
from modelops.training.train_args import train_options
from modelops_testing import bad_options


def main(argv: Sequence[str] | None = None) -> int:
    bad = argparse.ArgumentParser(prog="modelops_testing train", add_help=False)
    bad.add_argument("command", choices=["train"])
    bad.add_argument("--slow-ms", type=float, default=0.0, help="sleep this many ms in every predict call")
    bad.add_argument("--fail-above", type=float, help="raise on rows whose --fail-feature exceeds this value")
    bad.add_argument("--fail-feature", type=int, default=0, help="feature index checked by --fail-above")
    ours, rest = bad.parse_known_args(argv)
    args = build_parser().parse_args(["train", *rest])
    fields = {f.name: getattr(opts, f.name) for opts in [train_options(args)] for f in dataclasses.fields(opts)}
    return run_train(
        bad_options(slow_ms=ours.slow_ms, fail_above=ours.fail_above, fail_feature=ours.fail_feature, **fields)
    )


if __name__ == "__main__":
    sys.exit(main())
