"""What the lab's commands share: running with progress, the ranking table, JSON summaries."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimlab.commands._study import markup_safe as safe
from optimlab.lab import answer, words
from optimlab.lab.runner import Outcome, expand, run_study
from optimlab.lab.spec import StudySpec

FINISHED_WORDS = {"completed": "completed", "early_stopped": "stopped early",
                  "diverged": "diverged", "failed": "FAILED"}


def console() -> Console:
    """Standard output: the terminal's width, or 120 columns when piped (logs, CI)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=120)


def run_with_progress(spec: StudySpec, db: str, workers: int, quiet: bool,
                      threads: int | None = None, **options: Any) -> Outcome:
    """Run the study, showing a progress bar on a terminal and one line per trial otherwise.
    ``options`` go to ``run_study`` (the executor and its settings; ``together=False``: each
    seed on its own, ``--one-at-a-time``)."""
    total = len(expand(spec))
    err = Console(stderr=True)
    if quiet:
        return run_study(spec, db, workers=workers, threads=threads, **options)
    if not err.is_terminal:
        def line(row: Any, status: str) -> None:
            print(f"  {row.label} (seed {row.seed}): {FINISHED_WORDS.get(status, status)}",
                  file=sys.stderr, flush=True)

        where = f" on {options['executor']}" if options.get("executor", "local") != "local" \
            else ""
        print(f"running study {spec.name!r}{where}: {total} trials → {db}", file=sys.stderr,
              flush=True)
        return run_study(spec, db, workers=workers, threads=threads, on_trial=line, **options)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(safe(spec.name), total=total, last="")

        def advance(row: Any, status: str) -> None:
            bar.update(task, advance=1,
                       last=f"{safe(row.label)} seed {row.seed}: "
                            f"{FINISHED_WORDS.get(status, status)}")

        def epoch(row: Any, number: int, logs: dict[str, float]) -> None:
            bar.update(task, last=f"{safe(row.label)} seed {row.seed}: epoch {number + 1}")

        def poll(counts: dict[str, int]) -> None:
            done = sum(v for k, v in counts.items() if k in FINISHED_WORDS)
            bar.update(task, completed=done)

        from optimlab.lab.store import Store

        with Store(db) as store:  # trials finished by an earlier run count as done
            rows = store.trials(store.study(spec.name)[0]) if _has_study(store, spec) else []
        bar.update(task, completed=sum(r.status in FINISHED_WORDS for r in rows
                                       if r.status != "failed"))
        return run_study(spec, db, workers=workers, threads=threads, on_trial=advance,
                         on_report=epoch, on_poll=poll, **options)


def _has_study(store: Any, spec: StudySpec) -> bool:
    return any(s["name"] == spec.name for s in store.studies())


def ranking_table(analysis: Any) -> Table:
    """Rank, configuration, final metric with its 95% interval, best, test, seeds, trouble and
    time per seed — the columns and words of the report's ranking table."""
    percent = analysis.percent
    metric = words.metric_words(analysis.monitor)
    unit = " (%)" if percent else ""
    table = Table(title=f"{safe(analysis.study)}: final {metric} across {analysis.pair}s "
                        f"({'higher' if analysis.mode == 'max' else 'lower'} is better)")
    for col, justify in (("rank", "right"), ("configuration", "left"),
                         (f"final{unit}", "right"), ("95% CI", "right"),
                         (f"best{unit}", "right"), (f"test{unit}", "right"),
                         ("folds × seeds" if analysis.kfold else "seeds", "right"),
                         ("notes", "left"),
                         ("time / " + ("pair" if analysis.kfold else "seed"), "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for entry in analysis.ranking:
        c = analysis.config(entry.label)
        s = c.summary_final
        notes = []
        if c.label == analysis.baseline:
            notes.append("baseline")
        for count, word in ((c.diverged, "diverged"), (c.failed, "failed"),
                            (c.unfinished - c.failed, "unfinished")):
            if count:
                notes.append(f"{count} {word}")
        if entry.rank is None:
            notes.append(f"no rank: < 2 finite {analysis.pair}s")
        if c.restarts is not None:
            notes.append(f"best of {c.restarts.restarts} restarts")
        if c.lrs_found:
            found = sorted(c.lrs_found)
            notes.append(f"lr found {found[len(found) // 2]:.2g}")
        table.add_row(str(entry.rank) if entry.rank is not None else words.DASH,
                      safe(c.label), words.num(s.mean, percent),
                      words.interval(s.ci_low, s.ci_high, percent),
                      words.num(c.summary_best.mean, percent),
                      words.num(c.summary_test.mean, percent), f"{s.n_finite}/{s.n}",
                      ", ".join(notes), words.seconds(c.time_per_seed))
    return table


def print_results(analysis: Any, console: Console) -> None:
    """The ranking table, the answer in words, each comparison with the baseline, time to
    target, and the reason of every failed trial."""
    console.print(ranking_table(analysis))
    console.print()
    for sentence in answer.answer(analysis):
        console.print(safe(sentence))
    if analysis.comparisons:
        console.print(f"\nAgainst the baseline ({safe(analysis.baseline)}), paired by "
                      f"{analysis.pair.removesuffix(' pair')}:")
        for comparison in analysis.comparisons.values():
            console.print(f"  • {safe(comparison.statement)}")
    for c in analysis.configs:
        if c.steps_to_target is not None:
            console.print(f"  {safe(c.label)}: {safe(c.steps_to_target.statement)}")
    failures = [(c.label, seed, reason) for c in analysis.configs for seed, reason in c.failures]
    if failures:
        console.print("\nFailed trials:")
        for label, seed, reason in failures:
            console.print(f"  • {safe(label)} (seed {seed}): {safe(reason)}")
    note = rmsprop_note(analysis)
    if note:
        console.print(f"\n[dim]{safe(note)}[/dim]")
    console.print(f"\n[dim]{safe(answer.variance(analysis))}[/dim]")


def rmsprop_note(analysis: Any) -> str:
    """Why RMSprop with the course's β = 0.999 and no bias correction starts fast — said when
    such a configuration ranks first or is the fastest to the target."""
    def uncorrected(c: Any) -> bool:
        s = c.settings
        kw = s.get("optimizer_kwargs") or {}
        return (s.get("optimizer") == "rmsprop" and not kw.get("bias_correction")
                and kw.get("alpha", 0.99) >= 0.99)

    ranked = [e for e in analysis.ranking if e.rank == 1]
    lead = {e.label for e in ranked[:1]}
    fastest = [c for c in analysis.configs if c.steps_to_target is not None
               and c.steps_to_target.reached]
    if fastest:
        lead.add(min(fastest, key=lambda c: c.steps_to_target.median).label)
    hits = [c.label for c in analysis.configs if c.label in lead and uncorrected(c)]
    if not hits:
        return ""
    return (f"Why {words.names(hits)} starts fast: RMSprop's second moment s starts at 0 "
            "and, with β = 0.999 and no bias correction, is about (1 − β^t)·g² early on, so "
            "the step lr·g/√s is up to 1/√(1 − β) ≈ 32 times larger in the first step "
            "than with bias correction (Adam's is about lr). Its early lead comes from these "
            "large steps, not from per-weight step sizes alone: compare "
            "rmsprop:bias_correction=true.")


def summary_json(analysis: Any, outcome: Outcome | None, report: Path | None) -> str:
    def s(summary: Any) -> dict[str, float | int]:
        return {k: getattr(summary, k) for k in ("mean", "std", "median", "ci_low", "ci_high",
                                                  "n", "n_finite")}

    def comparison(label: str, c: Any) -> dict[str, Any]:
        return {"label": label, "statement": c.statement, "verdict": c.verdict,
                "mean_diff": c.mean_diff, "ci_low": c.ci_low, "ci_high": c.ci_high,
                "p_value": c.p_value, "p_adjusted": c.p_adjusted, "wins": c.wins,
                "ties": c.ties, "n_pairs": c.n_pairs, "prob_better": c.prob,
                "prob_low": c.prob_low, "prob_high": c.prob_high,
                "candidate_failed": c.candidate_failed, "baseline_failed": c.baseline_failed}

    data = {
        "study": analysis.study, "monitor": analysis.monitor, "mode": analysis.mode,
        "baseline": analysis.baseline, "family": analysis.family,
        "seeds_needed": analysis.seeds_needed, "answer": answer.answer(analysis),
        "ranking": [{"rank": e.rank, "label": e.label,
                     "final": s(analysis.config(e.label).summary_final),
                     "best": s(analysis.config(e.label).summary_best),
                     "test": s(analysis.config(e.label).summary_test),
                     "diverged": analysis.config(e.label).diverged,
                     "failed": analysis.config(e.label).failed,
                     "failures": [{"seed": seed, "reason": reason} for seed, reason
                                  in analysis.config(e.label).failures],
                     "time_per_seed": analysis.config(e.label).time_per_seed,
                     "restarts": _restarts_json(analysis.config(e.label).restarts),
                     "lrs_found": analysis.config(e.label).lrs_found}
                    for e in analysis.ranking],
        "units": {"pair": analysis.pair, "folds": analysis.folds,
                  "seeds": len(analysis.spec.seed_list), "restarts": analysis.n_restarts},
        "comparisons": [comparison(k, c) for k, c in analysis.comparisons.items()],
        "target_comparisons": {unit: [comparison(k, c) for k, c in comps.items()]
                               for unit, comps in analysis.target_comparisons.items()},
        "counts": outcome.counts if outcome else None,
        "report": str(report) if report else None,
    }
    return json.dumps(words.clean(data), indent=2)


def _restarts_json(r: Any) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"restarts": r.restarts, "spread": r.spread, "diverged": r.diverged,
            "gain_val": {k: getattr(r.gain_val, k) for k in ("mean", "ci_low", "ci_high",
                                                              "n_finite")},
            "gain_test": {k: getattr(r.gain_test, k) for k in ("mean", "ci_low", "ci_high",
                                                                "n_finite")}}


def write_report_if_possible(db: str, study: str, out: str | None,
                             analysis: Any = None) -> Path | None:
    """Write the HTML report unless disabled (from ``analysis`` when given, so the study is
    analysed once); None when there is no report to write."""
    if not out:
        return None
    from optimlab.viz.report import write_report

    return write_report(db, study=study, out=out, analysis=analysis)


def run_and_report(spec: StudySpec, args: Any) -> int:
    """What ``compare`` and ``run`` do with a validated spec: run the unfinished trials, analyse,
    write the report, print the ranking (or JSON). Exit 1 if a trial failed, else 0."""
    from optimlab.commands._study import executor_options
    from optimlab.lab.analysis import analyze
    from optimlab.lab.store import Store

    outcome = run_with_progress(spec, args.db, args.workers, quiet=args.json,
                                threads=args.threads,
                                together=False if getattr(args, "one_at_a_time", False)
                                else None, **executor_options(args))
    with Store(args.db, create=False) as store:
        analysis = analyze(store, spec.name)
    report = write_report_if_possible(args.db, spec.name, args.report, analysis)
    if args.json:
        print(summary_json(analysis, outcome, report))
    else:
        out = console()
        print_results(analysis, out)
        if report is not None:
            out.print(f"\nreport: {safe(report)}   store: {safe(args.db)}")
    return 1 if outcome.failed else 0
