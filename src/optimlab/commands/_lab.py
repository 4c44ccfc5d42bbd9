"""What the lab's commands share: running with progress, the ranking table, JSON summaries."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimlab.commands._study import markup_safe as safe
from optimlab.lab.runner import Outcome, expand, run_study
from optimlab.lab.spec import StudySpec
from optimlab.lab.stats import metric_words

FINISHED_WORDS = {"completed": "completed", "early_stopped": "stopped early",
                  "diverged": "diverged", "failed": "FAILED"}


def console() -> Console:
    """Standard output: the terminal's width, or 120 columns when piped (logs, CI)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=120)


def run_with_progress(spec: StudySpec, db: str, workers: int, quiet: bool,
                      threads: int | None = None) -> Outcome:
    """Run the study, showing a progress bar on a terminal and one line per trial otherwise."""
    total = len(expand(spec))
    err = Console(stderr=True)
    if quiet:
        return run_study(spec, db, workers=workers, threads=threads)
    if not err.is_terminal:
        def line(row: Any, status: str) -> None:
            print(f"  {row.label} (seed {row.seed}): {FINISHED_WORDS.get(status, status)}",
                  file=sys.stderr, flush=True)

        print(f"running study {spec.name!r}: {total} trials → {db}", file=sys.stderr, flush=True)
        return run_study(spec, db, workers=workers, threads=threads, on_trial=line)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(safe(spec.name), total=total, last="")

        def advance(row: Any, status: str) -> None:
            bar.update(task, advance=1,
                       last=f"{safe(row.label)} seed {row.seed}: "
                            f"{FINISHED_WORDS.get(status, status)}")

        def poll(counts: dict[str, int]) -> None:
            done = sum(v for k, v in counts.items() if k in FINISHED_WORDS)
            bar.update(task, completed=done)

        from optimlab.lab.store import Store

        with Store(db) as store:  # trials finished by an earlier run count as done
            rows = store.trials(store.study(spec.name)[0]) if _has_study(store, spec) else []
        bar.update(task, completed=sum(r.status in FINISHED_WORDS for r in rows
                                       if r.status != "failed"))
        return run_study(spec, db, workers=workers, threads=threads, on_trial=advance,
                         on_poll=poll)


def _has_study(store: Any, spec: StudySpec) -> bool:
    return any(s["name"] == spec.name for s in store.studies())


def _fmt(x: float, proportion: bool) -> str:
    if not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    return f"{100 * x:.1f}%" if proportion else f"{x:.4g}"


def ranking_table(analysis: Any) -> Table:
    """Rank, configuration, final metric with its 95% interval, best, test, trouble, time."""
    proportion = not analysis.monitor.endswith(("loss", "mse", "mae", "rmse"))
    words = metric_words(analysis.monitor)
    table = Table(title=f"{safe(analysis.study)}: final {words} across seeds "
                        f"({'higher' if analysis.mode == 'max' else 'lower'} is better)")
    for col, justify in (("rank", "right"), ("configuration", "left"), ("mean", "right"),
                         ("95% CI", "right"), ("best", "right"), ("test", "right"),
                         ("seeds", "right"), ("notes", "left"), ("time", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for entry in analysis.ranking:
        c = analysis.config(entry.label)
        s = c.summary_final
        ci = f"[{_fmt(s.ci_low, proportion)}, {_fmt(s.ci_high, proportion)}]"
        notes = []
        if c.label == analysis.baseline:
            notes.append("baseline")
        for count, word in ((c.diverged, "diverged"), (c.failed, "failed"),
                            (c.unfinished - c.failed, "unfinished")):
            if count:
                notes.append(f"{count} {word}")
        table.add_row(str(entry.rank), safe(c.label), _fmt(s.mean, proportion), ci,
                      _fmt(c.summary_best.mean, proportion), _fmt(c.summary_test.mean, proportion),
                      f"{s.n_finite}/{s.n}", ", ".join(notes), f"{c.wall_time:.1f}s")
    return table


def print_results(analysis: Any, console: Console) -> None:
    console.print(ranking_table(analysis))
    if analysis.comparisons:
        console.print(f"\nAgainst the baseline ({safe(analysis.baseline)}), paired by seed:")
        for comparison in analysis.comparisons.values():
            console.print(f"  • {safe(comparison.statement)}")
    for c in analysis.configs:
        if c.steps_to_target is not None:
            console.print(f"  {safe(c.label)}: {safe(c.steps_to_target.statement)}")
    n = min((c.n for c in analysis.configs), default=0)
    if n and n < 6:
        console.print(f"\n[dim]With {n} seeds a paired Wilcoxon test cannot reach p < 0.05 "
                      "(its smallest two-sided p is 2/2ⁿ); read the intervals, and add seeds for "
                      "a firmer answer.[/dim]")


def summary_json(analysis: Any, outcome: Outcome | None, report: Path | None) -> str:
    def s(summary: Any) -> dict[str, float | int]:
        return {k: getattr(summary, k) for k in ("mean", "std", "median", "ci_low", "ci_high",
                                                  "n", "n_finite")}

    data = {
        "study": analysis.study, "monitor": analysis.monitor, "mode": analysis.mode,
        "baseline": analysis.baseline,
        "ranking": [{"rank": e.rank, "label": e.label,
                     "final": s(analysis.config(e.label).summary_final),
                     "best": s(analysis.config(e.label).summary_best),
                     "test": s(analysis.config(e.label).summary_test),
                     "diverged": analysis.config(e.label).diverged,
                     "failed": analysis.config(e.label).failed} for e in analysis.ranking],
        "comparisons": [{"label": k, "statement": c.statement, "mean_diff": c.mean_diff,
                         "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value,
                         "wins": c.wins, "n_pairs": c.n_pairs}
                        for k, c in analysis.comparisons.items()],
        "counts": outcome.counts if outcome else None,
        "report": str(report) if report else None,
    }
    return json.dumps(_clean(data), indent=2)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def write_report_if_possible(db: str, study: str, out: str | None) -> Path | None:
    """Write the HTML report unless disabled; None when there is no report to write."""
    if not out:
        return None
    from optimlab.viz.report import write_report

    return write_report(db, study=study, out=out)


def run_and_report(spec: StudySpec, args: Any) -> int:
    """What ``compare`` and ``run`` do with a validated spec: run the unfinished trials, analyse,
    write the report, print the ranking (or JSON). Exit 1 if a trial failed, else 0."""
    from optimlab.lab.analysis import analyze
    from optimlab.lab.store import Store

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
