"""``optimlab report`` — one self-contained HTML report of a study, from its store."""

from __future__ import annotations

import argparse
from pathlib import Path

ORDER = 30


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._study import check_output_file
    from optimlab.viz.report import write_report

    db = Path(args.db)
    if not db.is_file():
        raise FileNotFoundError(f"no store at {db}; give the .db file a study wrote (optimlab "
                                "compare or optimlab run SPEC)")
    check_output_file(args.output, "-o")
    if _is_search(db, args.study):  # a hyperparameter search has its own report
        from optimlab.errors import UserError
        from optimlab.viz.search_report import write_search_report

        extra = [flag for flag, given in (("--smooth", args.smooth is not None),
                                          ("--only", bool(args.only)),
                                          ("--landscape", args.landscape)) if given]
        if extra:
            raise UserError(f"{', '.join(extra)} applies to a study's report; {args.study!r} "
                            "is a hyperparameter search (its confirmation study takes them)")
        print(write_search_report(db, args.study, out=args.output, png_dir=args.png))
        return 0
    path = write_report(db, args.study, out=args.output, png_dir=args.png, smooth=args.smooth,
                        landscape=args.landscape, only=args.only)
    print(path)
    return 0


def _is_search(db: Path, study: str | None) -> bool:
    """Whether ``study`` (the latest study when None) of the store is a search."""
    from optimlab.lab.store import Store
    from optimlab.tune.store import is_search

    with Store(db, create=False) as store:
        return is_search(store, store.study(study)[0])


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write a study's HTML report (one self-contained file)",
        description="Write the report of a study as one self-contained HTML file (plots "
                    "inline, no network needed): the winner and how sure, the ranking with "
                    "intervals, paired comparisons with the baseline, learning curves, learning "
                    "rate, final metric, time to target, gradient norms, the spec and the "
                    "environment. A hyperparameter search (optimlab tune) gets the search's "
                    "report: the best value over trials, parameter importances, slices, the "
                    "pruned trials, the confirmation's ranking.")
    p.add_argument("db", metavar="DB", help="the study's store (SQLite file)")
    p.add_argument("--study", metavar="NAME", default=None,
                   help="which study of the store (default: the latest)")
    p.add_argument("-o", "--output", metavar="FILE", default="report.html",
                   help="the HTML file to write (default: report.html)")
    p.add_argument("--png", metavar="DIR", default=None,
                   help="also write each plot as a PNG into DIR")
    p.add_argument("--smooth", metavar="BETA", type=float, default=None,
                   help="smooth curves with an EWA of this β in [0, 1), e.g. 0.6")
    p.add_argument("--only", nargs="+", metavar="LABEL", default=None,
                   help="draw only these configurations in the curve plots (default: all, or "
                        "with more than 10 the best-ranked and the baseline); the tables "
                        "always list every configuration")
    p.add_argument("--landscape", action="store_true",
                   help="add the loss landscape of the top-ranked configuration (trains one "
                        "trial again from the store)")
    p.set_defaults(func=run)
