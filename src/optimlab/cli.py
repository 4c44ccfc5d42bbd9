"""The ``optimlab`` command.

Exit codes: 0 success, 1 failure, 2 bad input (a message that names the problem, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


class UserError(Exception):
    """A mistake in what the user asked for: printed without a traceback, exit code 2."""


def _cmd_optimizers(args: argparse.Namespace) -> int:
    from optimlab.optim import available

    names = available()
    if args.json:
        print(json.dumps(names, indent=2, default=list))
        return 0
    table = Table(title="optimlab optimizers", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("defaults")
    table.add_column("what it does")
    for name, info in names.items():
        defaults = ", ".join(f"{k}={v}" for k, v in info["defaults"].items())
        table.add_row(name, defaults, info["summary"])
    Console().print(table)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    print("optimlab compare: not yet available — the lab (studies, store, report) is not built "
          "yet. Meanwhile `optimlab optimizers` lists the optimizers you can use in your own "
          "PyTorch loop.", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="Train neural networks well, and see why: optimizers, schedules and a lab "
                    "of fair experiments on PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("compare", help="compare optimizers on a dataset over several seeds "
                                       "(the main job)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("optimizers", help="list the named optimizers with their defaults")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_optimizers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except UserError as err:
        print(f"optimlab: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
