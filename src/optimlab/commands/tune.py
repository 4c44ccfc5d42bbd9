"""``optimlab tune SPEC`` — search hyperparameters, confirm the best over fresh seeds, report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

ORDER = 22


def run(args: argparse.Namespace) -> int:
    from optimlab.commands._study import check_output_file, executor_options
    from optimlab.lab.store import Store
    from optimlab.tune.results import load_search
    from optimlab.tune.search import run_search
    from optimlab.tune.spec import SearchSpec, load_search_spec

    check_output_file(args.db, "--db")
    if args.report:
        check_output_file(args.report, "--report")
    where = executor_options(args)
    spec = load_search_spec(args.spec).with_options(
        trials=args.trials, timeout=args.timeout, sampler=args.sampler, pruner=args.pruner,
        seed=args.seed, startup=args.startup, confirm=args.confirm, confirm_seeds=args.seeds)
    if args.device:
        spec = SearchSpec(spec.study.model_copy(update={"device": args.device}), spec.space,
                          spec.options)
    quiet = args.json
    from optimlab.lab.runner import executor_for
    from optimlab.lab.words import is_proportion_metric, metric_words
    from optimlab.tune.search import plan_search

    remote = where["executor"] == "ray"
    if remote:  # without Ray: the install command, before the data is loaded
        where["executor"] = executor_for(spec.study, "ray", address=where["address"],
                                         num_cpus=where["num_cpus"],
                                         num_gpus=where["num_gpus"])
    plan = plan_search(spec, args.device, remote=remote)  # the data's task decides the metric
    monitor = plan.monitor
    percent = is_proportion_metric(monitor)
    if not quiet:
        print(f"searching {spec.name!r}: {plan.trials} trials, sampler "
              f"{spec.options.sampler}, pruner {spec.options.pruner}"
              f"{' on ray' if remote else ''} → {args.db}",
              file=sys.stderr, flush=True)

    def on_trial(t: Any) -> None:
        if not quiet:
            print(_trial_line(t, metric_words(monitor), percent), file=sys.stderr, flush=True)

    def on_confirm(row: Any, status: str) -> None:
        if not quiet:
            print(f"  confirmation: {row.label} (seed {row.seed}): {status}", file=sys.stderr,
                  flush=True)

    outcome = run_search(spec, args.db, workers=args.workers, threads=args.threads,
                         device=args.device, on_trial=on_trial, on_confirm_trial=on_confirm,
                         plan=plan, **where)
    with Store(args.db, create=False) as store:
        results = load_search(store, spec.name)
    report = None
    if args.report:
        from optimlab.viz.search_report import write_search_report

        report = write_search_report(args.db, spec.name, out=args.report)
    if args.json:
        print(_summary_json(results, report))
    else:
        _print_summary(results, report, args.db)
    failed = outcome.failed + (outcome.confirmation_outcome.failed
                               if outcome.confirmation_outcome is not None else 0)
    return 1 if failed else 0


def _trial_line(t: Any, metric: str, percent: bool) -> str:
    from optimlab.commands._study import visible
    from optimlab.lab import words

    value = words.num(t.value, percent) + ("%" if percent and t.value is not None else "")
    what = {"complete": f"{metric} {value}",
            "pruned": f"pruned after {words.plural(t.epochs or 0, 'epoch')} at {metric} {value}",
            "diverged": "diverged", "failed": f"FAILED: {(t.error or '').strip()[:160]}"}
    if "same_as" in t.user_attrs:
        what[t.state] += f" (the configuration of trial {t.user_attrs['same_as']}: its result)"
    params = ", ".join(f"{k} = {words.short(round(v, 4) if isinstance(v, float) else v)}"
                       for k, v in t.params.items())
    return visible(f"  trial {t.number}: {what.get(t.state, t.state)} · {params}")


def _print_summary(results: Any, report: Any, db: str) -> None:
    from rich.table import Table

    from optimlab.commands._lab import console, print_results
    from optimlab.commands._study import markup_safe as safe
    from optimlab.lab import words

    out = console()
    unit = " (%)" if results.percent else ""
    table = Table(title=f"{safe(results.name)}: the best trials (final "
                        f"{words.metric_words(results.monitor)}, one seed each)")
    for col, justify in (("rank", "right"), ("trial", "right"), (f"value{unit}", "right"),
                         ("epochs", "right"), ("parameters", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for i, t in enumerate(results.ranked[:5], start=1):
        table.add_row(str(i), str(t.number), results.num(t.value), str(t.epochs or ""),
                      safe(results.param_text(t)))
    out.print(table)
    out.print()
    for sentence in results.search_sentences():
        out.print(safe(sentence))
    if results.confirmation is not None:
        out.print()
        print_results(results.confirmation, out)
    where = f"\nstore: {safe(db)}"
    if report is not None:
        where = f"\nreport: {safe(report)}   store: {safe(db)}"
    out.print(where)


def _summary_json(results: Any, report: Any) -> str:
    from optimlab.lab import words

    def trial(t: Any) -> dict[str, Any]:
        return {"number": t.number, "state": t.state, "value": t.value, "epochs": t.epochs,
                "params": t.params, "error": t.error}

    data: dict[str, Any] = {
        "search": results.name, "monitor": results.monitor, "direction": results.direction,
        "sampler": results.sampler, "pruner": results.pruner, "counts": results.counts,
        "best": trial(results.best) if results.best is not None else None,
        "top": [trial(t) for t in results.ranked[:10]],
        "epochs_trained": results.epochs_trained, "epochs_full": results.epochs_full,
        "answer": results.answer(), "trials": [trial(t) for t in results.trials],
        "confirmation": None, "report": str(report) if report else None}
    if results.confirmation is not None:
        from optimlab.commands._lab import summary_json

        data["confirmation"] = json.loads(summary_json(results.confirmation, None, None))
    return json.dumps(words.clean(data), indent=2)


def register(sub: argparse._SubParsersAction) -> None:
    from optimlab.commands._study import (
        add_executor_flags,
        nonnegative_int,
        positive_int,
        positive_seconds,
    )

    p = sub.add_parser(
        "tune", help="search hyperparameters (grid, random, TPE, GP; Hyperband), then confirm "
                     "the best over seeds",
        description="Run the hyperparameter search SPEC describes ([search]: the space; [tune]: "
                    "the strategy; flags override it), every trial in the store, resumable "
                    "(finished trials are kept, an interrupted one continues from its last "
                    "epoch). Then re-run the best K configurations and the [train] baseline "
                    "over S fresh seeds as a study, rank them with the lab's statistics, and "
                    "write the report. With --executor ray this process asks the sampler, "
                    "prunes and records; each trial trains as a Ray task.")
    p.add_argument("spec", help="the search spec (TOML with a [search] table); see "
                                "examples/tuning/")
    p.add_argument("--trials", type=positive_int, default=None,
                   help="trials in the search (default: [tune] trials, else every grid point "
                        "or 20); a rerun with more adds trials")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="S",
                   help="start no new trial after S seconds")
    p.add_argument("--sampler", choices=("tpe", "gp", "random", "grid"), default=None,
                   help="how trials are drawn (default: [tune] sampler, else tpe)")
    p.add_argument("--pruner", choices=("hyperband", "halving", "median", "none"),
                   default=None, help="how trials are stopped early, epochs as the budget "
                                      "(default: [tune] pruner, else none)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="the sampler's seed (default: [tune] seed, else 0)")
    p.add_argument("--startup", type=nonnegative_int, default=None,
                   help="random trials before TPE or GP model the rest (default 10)")
    p.add_argument("--confirm", type=nonnegative_int, default=None, metavar="K",
                   help="re-run the best K configurations with the baseline over fresh seeds "
                        "(default: [tune] confirm, else 3; 0 for none)")
    p.add_argument("--seeds", type=positive_int, default=None, metavar="S",
                   help="seeds of the confirmation (default: [tune] confirm_seeds, else 5)")
    p.add_argument("--report", "-o", default="report.html",
                   help="HTML report to write ('' for none; default report.html)")
    p.add_argument("--db", default="optimlab.db", help="the store file (default optimlab.db)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="run trials in this many processes (default 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per process (default: 1 for small models)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where trials train (default: the spec's device, else cpu)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_executor_flags(p)
    p.set_defaults(func=run)
