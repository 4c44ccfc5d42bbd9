"""From the store to answers: per-configuration statistics across seeds, comparisons with the
baseline paired by seed, a ranking with ties, steps- and time-to-target.

Everything is computed from the store alone, so a report can be rebuilt at any time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab import stats
from optimlab.lab.runner import expand
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.store import FINISHED, Store, TrialRow


def metric_mode(name: str) -> str:
    """"min" for losses and errors, "max" for scores."""
    from optimlab.train.callbacks.monitoring import monitor_mode

    try:
        return monitor_mode(name)
    except ValueError:
        return "min" if name.endswith(("loss", "mse", "mae", "rmse")) else "max"


@dataclass
class ConfigResult:
    """One configuration across its seeds."""

    label: str
    settings: dict[str, Any]
    trials: list[TrialRow]
    final: dict[int, float]            # seed → final value of the monitored metric
    best: dict[int, float]             # seed → best value over epochs
    test: dict[int, float]             # seed → the same metric on the test split
    summary_final: stats.Summary
    summary_best: stats.Summary
    summary_test: stats.Summary
    diverged: int
    failed: int
    unfinished: int
    steps_to_target: stats.TargetSummary | None = None
    seconds_to_target: stats.TargetSummary | None = None
    wall_time: float = 0.0

    @property
    def n(self) -> int:
        return len(self.trials)


@dataclass
class Analysis:
    """A whole study, analysed."""

    study: str
    spec: StudySpec
    monitor: str
    mode: str
    baseline: str
    configs: list[ConfigResult]
    comparisons: dict[str, stats.Comparison]
    ranking: list[stats.RankedEntry]
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(c.unfinished == 0 for c in self.configs)

    def config(self, label: str) -> ConfigResult:
        return next(c for c in self.configs if c.label == label)


def _value(row: TrialRow, key: str) -> float:
    if row.status not in FINISHED or not row.final:
        return math.nan
    v = row.final.get(key, math.nan)
    return float(v) if isinstance(v, int | float) else math.nan


def analyze(store: Store, study: str | None = None, *, monitor: str | None = None,
            n_resamples: int = 9999) -> Analysis:
    """Analyse the study ``study`` (the latest when None) of ``store``."""
    study_id, name, spec_data = store.study(study)
    spec = parse_spec(spec_data)
    keys = [t.key for t in expand(spec)]
    rows = store.trials(study_id, keys)
    if monitor is None:
        monitor = spec.train.monitor
    if monitor is None:
        finished = [r for r in rows if r.final]
        has_acc = any("val_accuracy" in r.final for r in finished)
        monitor = "val_accuracy" if has_acc or not finished else "val_loss"
    mode = metric_mode(monitor)
    test_key = "test_" + monitor.removeprefix("val_")
    by_label: dict[str, list[TrialRow]] = {}
    for r in rows:
        by_label.setdefault(r.label, []).append(r)
    configs = []
    for label, trials in by_label.items():
        final = {r.seed: _value(r, monitor) for r in trials}
        test = {r.seed: _value(r, test_key) for r in trials}
        best = {}
        for r in trials:
            entry = (r.best or {}).get(monitor) if r.status in FINISHED else None
            best[r.seed] = float(entry["value"]) if entry else math.nan
        result = ConfigResult(
            label=label, settings=trials[0].config, trials=trials, final=final, best=best,
            test=test,
            summary_final=stats.summarize(final, n_resamples=n_resamples),
            summary_best=stats.summarize(best, n_resamples=n_resamples),
            summary_test=stats.summarize(test, n_resamples=n_resamples),
            diverged=stats.divergence_count({r.seed: r.status for r in trials}),
            failed=sum(r.status == "failed" for r in trials),
            unfinished=sum(r.status not in FINISHED for r in trials),
            wall_time=sum(r.wall_time or 0.0 for r in trials))
        if spec.target is not None:
            steps: dict[int, float | None] = {}
            secs: dict[int, float | None] = {}
            for r in trials:
                t = r.target or {}
                reached = t.get("reached") is True
                steps[r.seed] = t.get("step") if reached else None
                secs[r.seed] = t.get("seconds") if reached else None
            kw = {"target": spec.target.value, "metric": spec.target.metric,
                  "n_resamples": n_resamples}
            result.steps_to_target = stats.to_target(steps, unit="steps", **kw)
            result.seconds_to_target = stats.to_target(secs, unit="seconds", **kw)
        configs.append(result)
    baseline = spec.baseline or (configs[0].label if configs else "")
    comparisons = {}
    base = next((c for c in configs if c.label == baseline), None)
    if base is not None:
        for c in configs:
            if c.label != baseline:
                comparisons[c.label] = stats.paired(
                    c.final, base.final, mode=mode, metric=monitor, candidate_label=c.label,
                    baseline_label=baseline, n_resamples=n_resamples)
    ranking = stats.rank({c.label: c.summary_final for c in configs}, mode=mode)
    env = next((r.env for r in rows if r.env), {}) or {}
    return Analysis(study=name, spec=spec, monitor=monitor, mode=mode, baseline=baseline,
                    configs=configs, comparisons=comparisons, ranking=ranking, environment=env)


def curves(store: Store, result: ConfigResult) -> dict[int, dict[str, Any]]:
    """Per seed: the epoch records and the step rows of a configuration's finished trials."""
    out = {}
    for r in result.trials:
        if r.status in FINISHED:
            out[r.seed] = {"epochs": store.epochs(r.id), "steps": store.steps(r.id)}
    return out
