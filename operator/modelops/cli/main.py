"""The `modelops` command: the operator, the CRD generator, and the serving-pod tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelops import __version__
from modelops.cli import operator_commands, retrain_commands, serving_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__)
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    operator_commands.register(commands)
    serving_commands.register(commands)
    retrain_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
