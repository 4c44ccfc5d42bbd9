"""``optimlab run SPEC`` — run a study described by a TOML file, then report it."""

from __future__ import annotations

import argparse

ORDER = 20


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._lab import run_and_report
    from optimlab.commands._study import prepare
    from optimlab.lab.spec import load_spec

    return run_and_report(prepare(load_spec(args.spec), args), args)


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.commands._study import add_executor_flags, add_study_flags

    p = sub.add_parser("run", help="run a study from a TOML spec (resumable) and report it",
                       description="Check SPEC and its data, run every unfinished trial of the "
                                   "study (trials already in the store are skipped; failed ones "
                                   "are tried again), print the ranking and write the HTML "
                                   "report.")
    p.add_argument("spec", help="the study spec (TOML); see examples/")
    p.add_argument("--report", "-o", default="report.html",
                   help="HTML report to write ('' for none; default report.html)")
    add_study_flags(p)
    add_executor_flags(p)
    p.set_defaults(func=run)
