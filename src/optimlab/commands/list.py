"""``optimlab list DB`` — the studies in a store, or the trials of one."""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.table import Table

ORDER = 35


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._study import markup_safe as safe
    from optimlab.lab.store import Store

    with Store(args.db, create=False) as store:
        if args.study is None:
            studies = store.studies()
            if args.json:
                print(json.dumps(studies, indent=2))
                return 0
            table = Table(title=f"studies in {safe(args.db)}")
            for col in ("study", "trials", "status", "updated"):
                table.add_column(col)
            for s in studies:
                status = ", ".join(f"{n} {k}" for k, n in sorted(s["by_status"].items()))
                table.add_row(safe(s["name"]), str(s["trials"]), status,
                              time.strftime("%Y-%m-%d %H:%M", time.localtime(s["updated"])))
            Console().print(table)
            return 0
        study_id, name, _ = store.study(args.study)
        rows = store.trials(study_id)
        if args.json:
            print(json.dumps([{"label": r.label, "seed": r.seed, "status": r.status,
                               "epochs": len(store.epochs(r.id)), "steps": r.steps,
                               "stop_step": r.stop_step, "reason": r.reason,
                               "wall_time": r.wall_time, "final": r.final, "best": r.best,
                               "device": r.device, "error": r.error, "traceback": r.traceback,
                               "warnings": r.warnings, "fold": r.fold, "restart": r.restart}
                              for r in rows],
                             indent=2, default=str))
            return 0
        table = Table(title=f"trials of {safe(name)}")
        folds = any(r.fold is not None for r in rows)  # k-fold and restarts: their columns
        restarts = any(r.restart is not None for r in rows)
        for col in ("configuration", *(["fold"] if folds else []), "seed",
                    *(["restart"] if restarts else []), "status", "epochs", "steps", "time",
                    "note"):
            table.add_column(col)
        for r in rows:
            note = r.error or r.reason or ""
            table.add_row(safe(r.label), *([str(r.fold)] if folds else []), str(r.seed),
                          *([str(r.restart) if r.restart is not None else ""] if restarts
                            else []), r.status,
                          str(len(store.epochs(r.id)) or ""), str(r.steps or ""),
                          f"{r.wall_time:.1f}s" if r.wall_time else "", safe(note))
        Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the studies in a store (or one study's trials)")
    p.add_argument("db", nargs="?", default="optimlab.db", help="the store (default optimlab.db)")
    p.add_argument("--study", help="list the trials of this study")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
