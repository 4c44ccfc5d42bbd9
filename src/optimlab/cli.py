"""The ``optimlab`` command.

Exit codes: 0 success; 2 a mistake in what the user asked for — a message that names the
problem and the fix, never a traceback; 1 a failure: a study with failed trials, or an
unexpected exception, which is a bug in optimlab: its traceback is saved to a log file named in
the message (see :mod:`optimlab.errors` for which errors are the user's). Each subcommand lives
in ``optimlab.commands``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from optimlab.errors import UserError

__all__ = ["UserError", "build_parser", "main"]


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
    except KeyboardInterrupt:
        print(f"optimlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        return _failed(args.command, err)


def _failed(command: str, err: Exception) -> int:
    from optimlab.errors import is_user_error, one_line, save_traceback

    if is_user_error(err):
        text = str(err) if not isinstance(err, OSError) or not err.filename else \
            f"{err.strerror}: {err.filename}"
        print(f"optimlab {command}: {text}", file=sys.stderr)
        return 2
    log = save_traceback(err, context=f"optimlab {command}")
    where = (f"the traceback is in {log}; please report it with that file" if log else
             "no log file could be written")
    print(f"optimlab {command}: unexpected error — a bug in optimlab, not in your input: "
          f"{one_line(err)}\n  {where}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
