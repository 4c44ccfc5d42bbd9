"""The ``optimlab`` command.

Exit codes: 0 success, 1 failure, 2 bad input — a message that names the problem and the fix,
never a traceback. Each subcommand lives in ``optimlab.commands``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class UserError(Exception):
    """A mistake in what the user asked for: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from optimlab.commands import register_all

    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="Train neural networks well, and see why: optimizers, schedules and a lab "
                    "of fair experiments on PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (UserError, ValueError, FileNotFoundError) as err:
        print(f"optimlab {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optimlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
