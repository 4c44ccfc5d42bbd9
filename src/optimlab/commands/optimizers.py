"""``optimlab optimizers`` — list the named optimizers with their defaults."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

ORDER = 80


def run(args: argparse.Namespace) -> int:
    from optimlab.optim import available

    names = available()
    if args.json:
        print(json.dumps(names, indent=2, default=list))
        return 0
    table = Table(title="optimlab optimizers")
    table.add_column("name", style="bold")
    table.add_column("defaults")
    table.add_column("what it does")
    for name, info in names.items():
        defaults = ", ".join(f"{k}={v}" for k, v in info["defaults"].items())
        table.add_row(name, defaults, info["summary"])
    Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimizers", help="list the named optimizers with their defaults",
                       description="List the named optimizers of optimlab.optim with their "
                                   "default hyperparameters.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
