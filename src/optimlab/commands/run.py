"""``optimlab run SPEC`` — run a study described by a TOML file, then report it."""

from __future__ import annotations

import argparse

ORDER = 20


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._lab import (
        console,
        print_results,
        run_with_progress,
        summary_json,
        write_report_if_possible,
    )
    from optimlab.lab.analysis import analyze
    from optimlab.lab.spec import load_spec
    from optimlab.lab.store import Store

    spec = load_spec(args.spec)
    outcome = run_with_progress(spec, args.db, args.workers, quiet=args.json,
                                threads=args.threads)
    with Store(args.db, create=False) as store:
        analysis = analyze(store, spec.name)
    report = write_report_if_possible(args.db, spec.name, args.report)
    if args.json:
        print(summary_json(analysis, outcome, report))
    else:
        out = console()
        print_results(analysis, out)
        if report is not None:
            out.print(f"\nreport: {report}   store: {args.db}")
    return 1 if outcome.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.commands.compare import add_study_flags

    p = sub.add_parser("run", help="run a study from a TOML spec (resumable) and report it",
                       description="Run every unfinished trial of the study in SPEC (trials "
                                   "already in the store are skipped), print the ranking and "
                                   "write the HTML report.")
    p.add_argument("spec", help="the study spec (TOML); see examples/")
    p.add_argument("--report", "-o", default="report.html",
                   help="HTML report to write ('' for none; default report.html)")
    add_study_flags(p)
    p.set_defaults(func=run)
