"""``optimlab explain [TOPIC]`` — the course's worked examples, computed step by step.

Without a topic it lists the topics. With one it computes the example (see
:mod:`optimlab.viz.explain`), prints its tables, what the numbers show and where they differ from
the numbers printed in the notes, and saves the figure as a PNG in ``--out`` (default ".").
``--json`` prints the same as JSON. An unknown topic is bad input (exit code 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ORDER = 60


def _cell(x: Any) -> str:
    from optimlab.viz.explain.base import fmt

    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return fmt(x, 6)
    return str(x)


def _list_topics(as_json: bool) -> int:
    from rich.console import Console
    from rich.table import Table

    from optimlab.viz.explain import available

    topics = available()
    if as_json:
        print(json.dumps(topics, indent=2, ensure_ascii=False))
        return 0
    table = Table(title="optimlab explain TOPIC — the course's worked examples")
    table.add_column("topic", style="bold")
    table.add_column("what it computes")
    for name, line in topics.items():
        table.add_row(name, line)
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    from optimlab.viz import explain

    if args.topic is None:
        return _list_topics(args.json)
    if args.topic.lower() not in explain.available():
        raise ValueError(f"unknown topic {args.topic!r}; topics: "
                         f"{', '.join(explain.available())} (run `optimlab explain` to see "
                         "what each shows)")
    result = explain.run(args.topic, Path(args.out))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a file or a pipe: no need to fold the tables at 80 columns
        console = Console(width=160)
    console.rule(f"[bold]{escape(result.title)}")
    for t in result.tables():
        table = Table(title=escape(t.title))
        for c in t.columns:
            table.add_column(escape(c), justify="right", overflow="fold")
        for row in t.rows:
            table.add_row(*(escape(_cell(x)) for x in row))
        console.print(table)
    if result.findings:
        console.print("[bold]What the numbers show[/bold]")
        for line in result.findings:
            console.print(f"  • {escape(line)}", highlight=False)
    console.print("[bold]Where the notes' printed numbers differ from the computed ones[/bold]")
    if result.notes_differences:
        for line in result.notes_differences:
            console.print(f"  • {escape(line)}", highlight=False)
    else:
        console.print("  none found")
    for path in result.figures:
        console.print(f"figure: {escape(str(path))}", highlight=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="compute a worked example of the course, step by step, "
                                       "with a plot",
                       description="Compute one of the course's worked examples step by step: "
                                   "print the table, save the plot, and say where the notes' "
                                   "printed numbers differ. Without TOPIC, list the topics.")
    p.add_argument("topic", nargs="?", default=None, metavar="TOPIC",
                   help="the topic (omit to list them)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="folder for the PNG figure (default: the current folder)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)
