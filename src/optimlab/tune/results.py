"""A search read back from the store, and said in words: the best value over trials, each
parameter's importance (Optuna's fANOVA evaluator), the pruned trials and the epochs they
saved, and the confirmation's answer (:mod:`optimlab.lab.answer`).

Everything is computed from the store alone, so ``optimlab report`` rebuilds it at any time.
Epochs are counted per configuration trained: a trial that drew a configuration trained before
took its result and trained nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optimlab.lab import answer, words
from optimlab.lab.spec import StudySpec, parse_spec
from optimlab.lab.store import Store, StoreError
from optimlab.tune import store as tstore
from optimlab.tune.confirm import top_trials
from optimlab.tune.strategies import PRUNER_WORDS, SAMPLER_WORDS, optuna_study

__all__ = ["SearchResults", "load_search"]


@dataclass
class SearchResults:
    """A search as stored: its trials, settings, and the confirmation's analysis."""

    name: str
    spec: StudySpec
    settings: dict[str, Any]
    trials: list[tstore.SearchTrial]
    budgets: dict[int, int]
    confirmation: Any = None
    confirmation_name: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    # -- what was asked ------------------------------------------------------------------------
    @property
    def monitor(self) -> str:
        return str(self.settings["monitor"])

    @property
    def direction(self) -> str:
        return str(self.settings["direction"])

    @property
    def sampler(self) -> str:
        return str(self.settings["sampler"])

    @property
    def pruner(self) -> str:
        return str(self.settings["pruner"])

    @property
    def percent(self) -> bool:
        return words.is_proportion_metric(self.monitor, [t.value for t in self.trials
                                                         if t.value is not None])

    def num(self, value: float | None) -> str:
        """A value of the monitored metric as a table cell (percent for accuracies)."""
        return words.num(value, self.percent)

    # -- what happened ---------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    @property
    def ranked(self) -> list[tstore.SearchTrial]:
        return top_trials(self.trials, self.direction)

    @property
    def best(self) -> tstore.SearchTrial | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    def history(self) -> list[tuple[int, float | None, str, float | None]]:
        """(number, value, state, best complete value so far) for every trial."""
        sign = 1.0 if self.direction == "maximize" else -1.0
        best: float | None = None
        out = []
        for t in self.trials:
            if t.state == "complete" and t.value is not None and math.isfinite(t.value) and \
                    (best is None or sign * t.value > sign * best):
                best = t.value
            out.append((t.number, t.value, t.state, best))
        return out

    def trained(self, t: tstore.SearchTrial) -> int:
        """Epochs trial ``t`` trained itself (0 when it took an earlier trial's result)."""
        return 0 if "same_as" in t.user_attrs else int(t.epochs or 0)

    @property
    def epochs_trained(self) -> int:
        return sum(self.trained(t) for t in self.trials)

    @property
    def epochs_full(self) -> int:
        """The epochs the same trials would have trained had each run to its end."""
        return sum(self.budgets.get(t.number, 0) for t in self.trials
                   if "same_as" not in t.user_attrs and t.key is not None)

    @property
    def pruned(self) -> list[tstore.SearchTrial]:
        return [t for t in self.trials if t.state == "pruned"]

    @property
    def saved_by_pruning(self) -> int:
        return sum(max(0, self.budgets.get(t.number, 0) - self.trained(t)) for t in self.pruned
                   if "same_as" not in t.user_attrs)

    @property
    def repeats(self) -> list[tstore.SearchTrial]:
        return [t for t in self.trials if "same_as" in t.user_attrs]

    def param_text(self, t: tstore.SearchTrial, limit: int | None = None) -> str:
        """``lr = 0.0123, optimizer = adam``: a trial's parameters, in the space's order."""
        items = list(t.params.items())[:limit]
        text = ", ".join(f"{k} = {_value(v)}" for k, v in items)
        if limit is not None and len(t.params) > limit:
            text += ", …"
        return text

    # -- importances -----------------------------------------------------------------------------
    def importances(self) -> tuple[dict[str, float], str]:
        """Each parameter's share of the variance of the value over the complete trials
        (Optuna's fANOVA evaluator, seeded), and a note on what was assessed."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None
                and math.isfinite(t.value)]
        if len(done) < 3:
            return {}, (f"Importances need at least 3 complete trials; this search has "
                        f"{len(done)}.")
        common = set(done[0].params)
        for t in done[1:]:
            common &= set(t.params)
        varied = [k for k in done[0].params if k in common
                  and len({repr(t.params[k]) for t in done}) > 1]
        if not varied:
            return {}, "No parameter took more than one value in every complete trial."
        if len({t.value for t in done}) == 1:
            same = self._value_words(done[0].value)
            return {}, (f"Every complete trial reached the same value ({same}), so no "
                        "parameter explains any variation: there is none.")
        import optuna

        study = optuna_study(self.name, self.direction, self.trials)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        try:
            values = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                             params=varied, normalize=True)
        except RuntimeError as err:  # fANOVA's forest found no variance to split
            return {}, f"fANOVA could not attribute the variation: {err}"
        left_out = [k for k in self._all_params() if k not in varied]
        note = (f"fANOVA (Hutter et al., 2014, Optuna's evaluator, seed 0) over the "
                f"{len(done)} complete trials: each parameter's share of the variance of the "
                f"final {words.metric_words(self.monitor)} that a random forest fitted to the "
                "trials attributes to it alone. Pruned and failed trials are not used.")
        if left_out:
            note += (f" Not assessed (absent from some complete trials, as conditional "
                     f"parameters are, or constant): {', '.join(left_out)}.")
        return {k: float(v) for k, v in values.items()}, note

    def _all_params(self) -> list[str]:
        out: list[str] = []
        for t in self.trials:
            for k in t.params:
                if k not in out:
                    out.append(k)
        return out

    def distributions(self) -> dict[str, Any]:
        """Each parameter's Optuna distribution (from the first trial that has it)."""
        from optuna.distributions import json_to_distribution

        out: dict[str, Any] = {}
        for t in self.trials:
            for k, d in t.distributions.items():
                out.setdefault(k, json_to_distribution(d))
        return out

    # -- words -------------------------------------------------------------------------------------
    def answer(self) -> list[str]:
        """The search in a few sentences: what ran, the best trial, what pruning saved, and the
        confirmation's answer (or why there is none)."""
        out = self.search_sentences()
        a = self.confirmation
        if a is None or self.best is None:
            return out
        return [*out[:-1], *answer.answer(a), out[-1]] if self._curse() else \
            [*out, *answer.answer(a)]

    def search_sentences(self) -> list[str]:
        """What ran, the best trial, what pruning saved, whether a confirmation ran, and (with
        one) how the best trial fared over the fresh seeds — without the confirmation's own
        answer (:func:`optimlab.lab.answer.answer` says it)."""
        out: list[str] = []
        counts = self.counts
        n = len(self.trials)
        states = ", ".join(f"{counts[s]} {s}" for s in tstore.STATES if counts.get(s))
        metric = words.metric_words(self.monitor)
        out.append(f"The search ran {words.plural(n, 'trial')} of "
                   f"{SAMPLER_WORDS[self.sampler]} with {PRUNER_WORDS[self.pruner]}, each on "
                   f"seed {self.spec.seed_list[0]}: {states or 'none finished'}.")
        best = self.best
        if best is None:
            out.append(f"No trial completed with a finite final {metric}, so there is no best "
                       "configuration yet.")
            return out
        out.append(f"The best search trial is trial {best.number}: final {metric} "
                   f"{self._value_words(best.value)} ({self.param_text(best)}).")
        if self.pruned:
            full, trained = self.epochs_full, self.epochs_trained
            share = 1 - trained / full if full else 0.0
            out.append(f"Pruning stopped {words.plural(len(self.pruned), 'trial')} early: the "
                       f"search trained {trained} epochs where running every trial to its end "
                       f"would have taken {full} ({share:.0%} saved).")
        if self.repeats:
            out.append(f"{words.plural(len(self.repeats), 'trial')} drew a configuration an "
                       "earlier trial had trained and took its result without training again.")
        a = self.confirmation
        if a is None:
            out.append(f"No confirmation was run: {self._value_words(best.value)} is one "
                       f"seed's value, the best of {words.plural(n, 'trial')}, so it overstates "
                       "what the configuration gives on another seed. `optimlab tune SPEC "
                       "--confirm 3 --seeds 5` re-runs the best over fresh seeds.")
            return out
        labels = [c.label for c in a.configs if c.label != a.baseline]
        out.append(f"Confirmation: {words.names(labels)} and the baseline {a.baseline} were "
                   f"run again over {words.plural(a.n_seeds, 'seed')} the search did not use, "
                   f"as the study {self.confirmation_name!r}.")
        curse = self._curse()
        if curse:
            out.append(curse)
        return out

    def _curse(self) -> str:
        """How the best search trial fares over the confirmation's seeds ("" if not there)."""
        a, best = self.confirmation, self.best
        if a is None or best is None:
            return ""
        label = f"trial {best.number}"
        if label not in [c.label for c in a.configs]:
            return ""
        s = a.config(label).summary_final
        if s.n_finite < 2:
            return ""
        value, low, high = words.estimate(s.mean, s.ci_low, s.ci_high,
                                          scale=100.0 if a.percent else 1.0)
        unit = "%" if a.percent else ""
        return (f"The best search value, {self._value_words(best.value)}, was one seed's and "
                f"the best of {len(self.trials)} draws; over the fresh seeds trial "
                f"{best.number} averages {value}{unit}, 95% CI [{low}, {high}].")

    def _value_words(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return words.DASH
        return f"{value * 100:.1f}%" if self.percent else f"{value:.4g}"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return words.short(v)


def load_search(store: Store, name: str | None = None) -> SearchResults:
    """The search named ``name`` (the latest search when None) of ``store``."""
    from optimlab.lab.analysis import analyze

    if name is None:
        row = store.conn.execute("SELECT s.name FROM searches x JOIN studies s ON s.id = "
                                 "x.study_id ORDER BY x.updated DESC LIMIT 1").fetchone()
        if row is None:
            raise StoreError(f"{store.path} holds no search; run one with optimlab tune SPEC")
        name = str(row[0])
    study_id, name, spec_data = store.study(name)
    search = tstore.search_row(store, study_id)
    if search is None:
        raise StoreError(f"study {name!r} in {store.path} is not a search")
    trials = tstore.read_trials(store, search["id"])
    configs = {r.key: r for r in store.trials(study_id)}
    budgets = {}
    environment: dict[str, Any] = {}
    for t in trials:
        lab = configs.get(t.key) if t.key else None
        if lab is None:
            continue
        budgets[t.number] = int(lab.config.get("epochs") or t.epochs or 0)
        if not environment and lab.env:
            environment = lab.env
    confirmation = None
    conf_name = None
    if search["confirmation_id"] is not None:
        conf = store.conn.execute("SELECT name FROM studies WHERE id = ?",
                                  (search["confirmation_id"],)).fetchone()
        if conf is not None:
            conf_name = str(conf[0])
            confirmation = analyze(store, conf_name)
    return SearchResults(name=name, spec=parse_spec(spec_data), settings=search["settings"],
                         trials=trials, budgets=budgets, confirmation=confirmation,
                         confirmation_name=conf_name, environment=environment)
