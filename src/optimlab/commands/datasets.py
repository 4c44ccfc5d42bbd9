"""``optimlab datasets`` — the datasets optimlab can load without a network."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

ORDER = 70


def run(args: argparse.Namespace) -> int:
    from optimlab.data import available

    names = available()
    if args.json:
        print(json.dumps(names, indent=2, default=str))
        return 0
    table = Table(title="optimlab datasets")
    for col in ("name", "task", "shape", "classes", "description"):
        table.add_column(col)
    for name, info in names.items():
        table.add_row(name, str(info.get("task", "")), str(info.get("shape", "")),
                      str(info.get("n_classes") or ""), str(info.get("description", "")))
    Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the datasets (bundled, synthetic, file loaders)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
