"""From the store to answers: per-configuration statistics across seeds, every pair of
configurations compared seed by seed, each against the baseline in steps to target, one Holm
correction over all of these comparisons, and the ranking that follows from them.

Seconds to target are summarized (median and its interval) but not tested: wall-clock seconds
depend on the machine's load while each trial ran, and the trials of one configuration run one
after the other, so a paired test on seconds would test the load as much as the recipe (two
runs of the same default study on a busy machine gave different "slower" verdicts).

Everything is computed from the store alone, so a report can be rebuilt at any time. A seed
counts once it has finished (completed, stopped early, diverged) or failed: a diverged or
failed seed is the worst value in every comparison; a pending or running one is left out (the
report says the study is incomplete).

With k-fold cross-validation the unit of every statistic is a (fold, seed) pair instead of a
seed — the comparisons pair configurations by fold and seed — and with restarts a unit's value
is that of its restart with the best validation value (:mod:`optimlab.lab.units`).

>>> with Store("optimlab.db", create=False) as store:
...     analysis = analyze(store)
>>> [(e.label, e.rank) for e in analysis.ranking]
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab import stats, units
from optimlab.lab.runner import expand
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.stacked import summary as seeds_summary
from optimlab.lab.store import FINISHED, Store, TrialRow
from optimlab.lab.words import is_proportion_metric
from optimlab.train.callbacks.monitoring import metric_mode

#: trial statuses that count as a seed of a configuration (failed = worst value)
COUNTED = (*FINISHED, "failed")


@dataclass
class ConfigResult:
    """One configuration across its seeds. ``final``, ``best`` and ``test`` map each counted
    seed (finished or failed) to its value, NaN where it diverged or failed — each counted unit,
    with k-fold ((fold, seed) pairs: :func:`optimlab.lab.units.unit_id`), and the value of the
    restart kept, with restarts (:attr:`units`, :attr:`restarts`)."""

    label: str
    settings: dict[str, Any]
    trials: list[TrialRow]
    final: dict[int, float]
    best: dict[int, float]
    test: dict[int, float]
    summary_final: stats.Summary
    summary_best: stats.Summary
    summary_test: stats.Summary
    diverged: int
    failed: int
    unfinished: int
    failures: list[tuple[int, str]] = field(default_factory=list)
    steps_to_target: stats.TargetSummary | None = None
    seconds_to_target: stats.TargetSummary | None = None
    wall_time: float = 0.0
    #: the (fold, seed) units (seeds without k-fold), each with its restarts and the one kept
    units: dict[int, units.Unit] = field(default_factory=dict)
    #: what restarts did (None without restarts)
    restarts: units.RestartSummary | None = None
    #: the learning-rate range tests of a configuration with lr = "find", per trial id
    lr_finds: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Units of this configuration in the study (seeds; (fold, seed) pairs with k-fold),
        finished or not."""
        return len(self.units) if self.units else len(self.trials)

    @property
    def n_done(self) -> int:
        """Units that count: finished (completed, stopped early, diverged) or failed (every
        restart of it)."""
        if self.units:
            return sum(u.done for u in self.units.values())
        return sum(r.status in COUNTED for r in self.trials)

    @property
    def time_per_seed(self) -> float:
        """Mean wall-clock seconds of a finished unit (all its restarts; NaN when none has a
        time)."""
        times = [sum(r.wall_time or 0.0 for r in u.rows) for u in self.units.values()
                 if all(r.status in FINISHED and r.wall_time is not None for r in u.rows)]
        return sum(times) / len(times) if times else math.nan

    @property
    def lrs_found(self) -> list[float]:
        """The lr each trial of lr = "find" trained with (its range test's suggestion)."""
        return [float(f["lr"]) for f in self.lr_finds.values()
                if isinstance(f.get("lr"), int | float)]


@dataclass
class Analysis:
    """A whole study, analysed once: configurations, the comparisons (``pairwise`` on the
    monitored metric, ``comparisons`` = those against the baseline, ``target_comparisons``
    by unit: "steps"), all corrected together over ``family`` comparisons, and the
    ranking."""

    study: str
    spec: StudySpec
    monitor: str
    mode: str
    baseline: str
    configs: list[ConfigResult]
    pairwise: list[stats.Comparison]
    comparisons: dict[str, stats.Comparison]
    target_comparisons: dict[str, dict[str, stats.Comparison]]
    ranking: list[stats.RankedEntry]
    family: int
    seeds_needed: int
    alpha: float = stats.ALPHA
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(c.unfinished == 0 for c in self.configs)

    @property
    def n_seeds(self) -> int:
        """Units per configuration in the study (the most any configuration has): seeds, or
        (fold, seed) pairs with k-fold."""
        return max((c.n for c in self.configs), default=0)

    @property
    def kfold(self) -> bool:
        """Whether the study cross-validates (``[data] split = "kfold"``)."""
        return getattr(self.spec.data, "split", "holdout") == "kfold"

    @property
    def pair(self) -> str:
        """What one unit of the statistics is called: "seed" or "(fold, seed) pair"."""
        return "(fold, seed) pair" if self.kfold else "seed"

    @property
    def folds(self) -> int:
        """Folds × repeats of a k-fold study (0 without k-fold)."""
        return len(self.spec.data.fold_ids) if self.kfold else 0

    @property
    def n_restarts(self) -> int:
        """The most restarts any configuration makes (1 without restarts)."""
        return max((c.restarts.restarts for c in self.configs if c.restarts), default=1)

    @property
    def percent(self) -> bool:
        """Whether the monitored metric is written in percent."""
        values = [v for c in self.configs for v in (*c.final.values(), *c.best.values())]
        return is_proportion_metric(self.monitor, values)

    @property
    def resplit(self) -> bool:
        """Whether each seed re-draws the train/validation split (``[data] resplit``)."""
        return bool(getattr(self.spec.data, "resplit", False))

    def config(self, label: str) -> ConfigResult:
        return next(c for c in self.configs if c.label == label)

    def beaten_by(self, label: str) -> list[str]:
        """The configurations that ``label`` is clearly better than (corrected verdicts)."""
        out = []
        for c in self.pairwise:
            if c.verdict == "better" and c.candidate_label == label:
                out.append(c.baseline_label)
            elif c.verdict == "worse" and c.baseline_label == label:
                out.append(c.candidate_label)
        return sorted(out)

    def rank_of(self, label: str) -> int | None:
        return next((e.rank for e in self.ranking if e.label == label), None)


def _value(row: TrialRow, key: str) -> float:
    if row.status not in FINISHED or not row.final:
        return math.nan
    v = row.final.get(key, math.nan)
    return float(v) if isinstance(v, int | float) else math.nan


def _best(row: TrialRow, key: str) -> float:
    entry = (row.best or {}).get(key) if row.status in FINISHED else None
    return float(entry["value"]) if entry else math.nan


def _to_target(row: TrialRow, key: str) -> float | None:
    t = row.target or {}
    if row.status not in FINISHED or t.get("reached") is not True:
        return None
    v = t.get(key)
    return float(v) if isinstance(v, int | float) else None


def _monitor(spec: StudySpec, rows: list[TrialRow], monitor: str | None) -> str:
    if monitor is None:
        monitor = spec.train.monitor
    if monitor is None:
        finished = [r for r in rows if r.final]
        has_acc = any("val_accuracy" in r.final for r in finished)  # type: ignore[operator]
        monitor = "val_accuracy" if has_acc or not finished else "val_loss"
    return monitor


def _config_result(label: str, trials: list[TrialRow], monitor: str,
                   spec: StudySpec) -> ConfigResult:
    test_key = "test_" + monitor.removeprefix("val_")
    mode = metric_mode(monitor)
    grouped = units.group(trials, lambda r: _value(r, monitor), lambda r: _value(r, test_key),
                          mode)
    kept = {uid: u.chosen for uid, u in grouped.items() if u.chosen is not None}
    final = {uid: _value(r, monitor) for uid, r in kept.items()}
    test = {uid: _value(r, test_key) for uid, r in kept.items()}
    best = {uid: _best(r, monitor) for uid, r in kept.items()}
    diverged = stats.divergence_count({uid: r.status for uid, r in kept.items()})
    result = ConfigResult(
        label=label, settings=trials[0].config, trials=trials, final=final, best=best,
        test=test, summary_final=stats.summarize(final), summary_best=stats.summarize(best),
        summary_test=stats.summarize(test), diverged=diverged,
        failed=sum(r.status == "failed" for r in kept.values()),
        unfinished=sum(not u.done for u in grouped.values()),
        failures=[(r.seed, _where(r) + (r.error or "no reason recorded").strip().splitlines()[-1])
                  for r in trials if r.status == "failed"],
        wall_time=sum(r.wall_time or 0.0 for r in trials), units=grouped,
        restarts=units.restart_summary(grouped, mode))
    if spec.target is not None:
        kw = {"target": spec.target.value, "metric": spec.target.metric, "diverged": diverged}
        result.steps_to_target = stats.to_target(
            {uid: _to_target(r, "step") for uid, r in kept.items()}, unit="steps", **kw)
        result.seconds_to_target = stats.to_target(
            {uid: _to_target(r, "seconds") for uid, r in kept.items()}, unit="seconds", **kw)
    return result


def _where(row: TrialRow) -> str:
    """``fold 2, restart 1: `` before a failure's reason (nothing for an ordinary trial; the
    seed is said with it)."""
    parts = [f"fold {row.fold}"] if row.fold is not None else []
    if row.restart:
        parts.append(f"restart {row.restart}")
    return ", ".join(parts) + ": " if parts else ""


def analyze(store: Store, study: str | None = None, *, monitor: str | None = None,
            alpha: float = stats.ALPHA) -> Analysis:
    """Analyse the study ``study`` (the latest when None) of ``store``, ranking by ``monitor``
    (default: the spec's ``train.monitor``, else val accuracy when recorded, else val loss).

    The family corrected together (Holm, level ``alpha``): every pair of configurations on the
    monitored metric, and — with a ``[target]`` — each configuration against the baseline in
    optimizer steps to the target (a seed that never reached it is the slowest).
    """
    study_id, name, spec_data = store.study(study)
    spec = parse_spec(spec_data)
    keys = [t.key for t in expand(spec)]
    rows = store.trials(study_id, keys)
    monitor = _monitor(spec, rows, monitor)
    mode = metric_mode(monitor)
    by_label: dict[str, list[TrialRow]] = {}
    for r in rows:
        by_label.setdefault(r.label, []).append(r)
    configs = [_config_result(label, trials, monitor, spec) for label, trials in by_label.items()]
    baseline = spec.baseline or (configs[0].label if configs else "")
    percent = is_proportion_metric(
        monitor, [v for c in configs for v in (*c.final.values(), *c.best.values())])

    for c in configs:
        if c.settings.get("lr") == "find":
            c.lr_finds = {r.id: found for r in c.trials if r.status in FINISHED
                          and (found := store.lr_find(r.id)) is not None}
    pair = "(fold, seed) pair" if spec.data.split == "kfold" else "seed"
    with_seeds = {c.label: c.final for c in configs if c.final}
    family = [dataclasses.replace(c, pair=pair) for c in
              stats.pairwise(with_seeds, mode=mode, metric=monitor, percent=percent)]  # type: ignore[arg-type]
    target_raw: list[tuple[str, str, stats.Comparison]] = []
    base = next((c for c in configs if c.label == baseline), None)
    if spec.target is not None and base is not None:
        for unit in ("steps",):
            attr = f"{unit}_to_target"
            base_t = getattr(base, attr)
            for c in configs:
                t = getattr(c, attr)
                if c.label == baseline or t is None or base_t is None:
                    continue
                cand_v = dict(zip(c.final, t.values, strict=True))
                base_v = dict(zip(base.final, base_t.values, strict=True))
                target_raw.append((unit, c.label, dataclasses.replace(stats.paired(
                    cand_v, base_v, mode="min", metric=f"{unit} to {t.goal}",
                    candidate_label=c.label, baseline_label=baseline, unit=unit,
                    failure="never reached", percent=False), pair=pair)))
    corrected = stats.correct([*family, *(c for _, _, c in target_raw)], alpha=alpha)
    pairs, target_done = corrected[:len(family)], corrected[len(family):]
    comparisons = {}
    for c in pairs:  # against the baseline, with the baseline as the reference
        if c.baseline_label == baseline:
            comparisons[c.candidate_label] = c
        elif c.candidate_label == baseline:
            comparisons[c.baseline_label] = _swap(c)
    comparisons = {c.label: comparisons[c.label] for c in configs if c.label in comparisons}
    target_comparisons: dict[str, dict[str, stats.Comparison]] = {"steps": {}}
    for (unit, label, _), c in zip(target_raw, target_done, strict=True):
        target_comparisons[unit][label] = c
    summaries = {c.label: c.summary_final for c in configs}
    ranking = stats.rank(summaries, pairs, mode=mode)  # type: ignore[arg-type]
    m = sum(1 for c in corrected if math.isfinite(c.p_value))
    env = dict(next((r.env for r in rows if r.env), {}) or {})
    trained = seeds_summary([r.env for r in rows])  # together, or one at a time and why
    if trained is not None:
        env["seeds"] = trained
    shared = next((r.env["time"] for r in rows if r.env and "time" in r.env), None)
    env.pop("time", None)
    if shared is not None:  # some seeds trained together: what their times mean
        env["time"] = shared
    return Analysis(study=name, spec=spec, monitor=monitor, mode=mode, baseline=baseline,
                    configs=configs, pairwise=pairs, comparisons=comparisons,
                    target_comparisons=target_comparisons, ranking=ranking, family=max(1, m),
                    seeds_needed=stats.seeds_needed(m, alpha), alpha=alpha, environment=env)


def _swap(c: stats.Comparison) -> stats.Comparison:
    """The same comparison seen from the other side (candidate ↔ baseline): the test, its
    correction and the tie counts are symmetric; directions, wins and P(better) flip."""
    flip = {"better": "worse", "worse": "better"}
    ties = c.ties
    prob_low = 1.0 - c.prob_high
    prob_high = 1.0 - c.prob_low
    swapped = dataclasses.replace(
        c, candidate_label=c.baseline_label, baseline_label=c.candidate_label,
        improvements=tuple(-v for v in c.improvements),
        candidate_failed=c.baseline_failed, baseline_failed=c.candidate_failed,
        mean_diff=-c.mean_diff, ci_low=-c.ci_high, ci_high=-c.ci_low, wins=c.losses,
        losses=c.wins, ties=ties, prob=1.0 - c.prob, prob_low=prob_low, prob_high=prob_high,
        direction=-c.direction, verdict=flip.get(c.verdict, c.verdict))  # type: ignore[arg-type]
    return dataclasses.replace(swapped, statement=stats.comparison_sentence(swapped))


def seed_curves(store: Store, result: ConfigResult) -> dict[int, dict[str, Any]]:
    """Per seed (per unit, with k-fold): the epoch records and the step rows of a
    configuration's finished trials (the restart kept, with restarts)."""
    out = {}
    rows = ([u.chosen for u in result.units.values() if u.chosen is not None]
            if result.units else result.trials)
    for r in rows:
        if r.status in FINISHED:
            out[units.unit_id(r.fold, r.seed)] = {"epochs": store.epochs(r.id),
                                                  "steps": store.steps(r.id)}
    return out
