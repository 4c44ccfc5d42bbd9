"""A study's answer in words: which configurations are best and how sure, each against the
baseline, time to target, what failed, and how to read the numbers — the prose of the CLI and
the HTML report, built from an :class:`optimlab.lab.analysis.Analysis`. Every sentence that
rests on seeds says how many of them diverged; with k-fold cross-validation the units are
(fold, seed) pairs and the sentences say how many folds and seeds a number rests on, with
restarts how many restarts each unit chose from.
"""

from __future__ import annotations

from optimlab.lab.analysis import Analysis, ConfigResult
from optimlab.lab.stats import Summary
from optimlab.lab.words import (
    amount,
    estimate,
    failures,
    metric_words,
    names,
    plain,
    plural,
    target_words,
)


def summary_sentence(s: Summary, *, metric: str, percent: bool, diverged: int,
                     failed: int = 0, pair: str = "seed", rests_on: str = "") -> str:
    """``97.1% on average over 10 seeds, 95% CI [96.8, 97.4] (0 of 10 diverged)`` — or, with
    fewer than two finite values, no interval and why. ``pair`` names the unit ("(fold, seed)
    pair" with k-fold) and ``rests_on`` adds what the units are ("5 folds × 3 seeds")."""
    pct = "%" if percent else ""
    scale = 100.0 if percent else 1.0
    trouble = failures(diverged, s.n)
    if failed:
        trouble += f", {failures(failed, s.n, 'failed')}"
    if s.n_finite == 0:
        return f"no finite final {metric_words(metric)} ({trouble})"
    if s.n_finite < 2:
        value, _, _ = estimate(s.mean, scale=scale)
        return (f"{value}{pct} from a single {pair}: no interval and no rank, since one value "
                f"says nothing of the spread ({trouble})")
    value, low, high = estimate(s.mean, s.ci_low, s.ci_high, scale=scale)
    level = f"{plain(s.confidence * 100)}% CI"
    extra = f" ({rests_on})" if rests_on else ""
    return (f"{value}{pct} on average over {plural(s.n_finite, pair)}{extra}, {level} "
            f"[{low}, {high}] ({trouble})")


def rests_on(a: Analysis) -> str:
    """What a configuration's number rests on beyond its units: ``5 folds × 3 seeds``, and
    ``each the best of 3 restarts by val accuracy`` (empty for a plain study)."""
    parts = []
    if a.kfold:
        seeds = len(a.spec.seed_list)
        parts.append(f"{plural(a.folds, 'fold')} × {plural(seeds, 'seed')}")
    if a.n_restarts > 1:
        parts.append(f"each the best of {a.n_restarts} restarts by {metric_words(a.monitor)}")
    return "; ".join(parts)


def variance(a: Analysis) -> str:
    """The sources-of-variance sentence for this study: :func:`sources_of_variance`, or for a
    k-fold study what its intervals and tests can and cannot say (:func:`kfold_variance`)."""
    if a.kfold:
        return kfold_variance(a.spec.data.n_folds, a.folds // a.spec.data.n_folds,
                              len(a.spec.seed_list))
    return sources_of_variance(a.resplit)


def kfold_variance(folds: int, repeats: int, seeds: int) -> str:
    """What the intervals of a k-fold study include, and for what they are too narrow.

    Given the dataset, the k × S values are independent draws of the seeds (each trial has its
    own), and the differences between folds are fixed: the intervals and paired tests hold for
    the mean over these folds. For the accuracy on new data from the same source they are too
    narrow — measured by ``benchmarks/kfold_coverage.py`` (400 simulated datasets): the nominal
    95% interval of a 5-fold × 2-seed mean covered that accuracy in 82% of them, and with 6
    seeds in 54%: more seeds narrow the interval, not the uncertainty of one sample of data (a
    fixed holdout split with 10 seeds: 19%)."""
    share = f"{folds - 2}/{folds - 1}" if folds > 2 else "none"
    n = folds * repeats * seeds
    cut = (f"{folds}-fold cross-validation" +
           (f" repeated {repeats} times (a new shuffle each time)" if repeats > 1 else ""))
    return (f"Sources of variance in these intervals: each value is one (fold, seed) pair of "
            f"{cut} with {plural(seeds, 'seed')}: the fold decides which rows validate (every "
            f"row outside the test split validates once per repeat) and trains on the rest; the "
            f"seed fixes the initial weights and the batch order. Given this dataset the {n} "
            f"values are independent draws of the seeds, so the intervals and the paired tests "
            f"hold for these folds: a verdict is a difference on these folds of this dataset. "
            f"As statements about new data from the same source they are too narrow: the folds "
            f"are not independent samples (any two training sets share {share} of their rows, "
            f"and all come from one sample of data), no unbiased estimate of the variance of a "
            f"k-fold mean exists (Bengio and Grandvalet, 2004), and more seeds narrow the "
            f"intervals without narrowing that uncertainty (benchmarks/kfold_coverage.py "
            f"measures how far).")


def sources_of_variance(resplit: bool) -> str:
    """Which sources of run-to-run variance the intervals include."""
    if resplit:
        return ("Sources of variance in these intervals: each seed fixes the initial weights, "
                "the order of the batches and the train/validation split (re-drawn per seed, "
                "[data] resplit = true), so the intervals include the sampling error of the "
                "validation set.")
    return ("Sources of variance in these intervals: each seed fixes the initial weights and "
            "the order of the batches. The validation split is fixed (the same for every "
            "trial), so its sampling error is not in these intervals: a different split could "
            "move every configuration together. Set [data] resplit = true to include it.")


def _trouble(c: ConfigResult) -> str:
    parts = [failures(c.diverged, c.n_done)]
    if c.failed:
        parts.append(failures(c.failed, c.n_done, "failed"))
    return ", ".join(parts)


def answer(analysis: Analysis) -> list[str]:
    """The answer in a few sentences: which configurations are best and how sure, each against
    the baseline, time to target, and what failed. Every claim rests on the study's paired
    tests, Holm-corrected over all its comparisons."""
    a = analysis
    words = metric_words(a.monitor)
    percent = a.percent
    ranked = [e for e in a.ranking if e.rank is not None]
    out: list[str] = []
    if not ranked:
        out.append(f"No configuration has two or more seeds with a finite final {words} yet, "
                   "so nothing can be ranked: a single seed says nothing of the spread.")
    else:
        top = [e for e in ranked if e.rank == 1]
        lead = top[0]  # the rank-1 entry with the best mean (ranking order)
        lead_c = a.config(lead.label)
        lead_text = summary_sentence(lead.summary, metric=a.monitor, percent=percent,
                                     diverged=lead_c.diverged, failed=lead_c.failed,
                                     pair=a.pair, rests_on=rests_on(a))
        family = (f"paired by {a.pair.removesuffix(' pair')}, Holm-corrected over the study's "
                  f"{plural(a.family, 'comparison')}")
        if len(ranked) == 1:
            out.append(f"Only {lead.label} can be ranked: final {words} {lead_text}.")
        elif a.n_seeds < a.seeds_needed:
            out.append(f"Too few {a.pair}s to tell which configuration is best: with "
                       f"{plural(a.n_seeds, a.pair)} no difference can be significant after "
                       f"correcting for the study's {plural(a.family, 'comparison')} (the "
                       f"smallest possible p-value, 2/2^{a.n_seeds}, is above 5%/{a.family}); "
                       f"{a.seeds_needed} {a.pair}s would be needed. Highest mean final {words}: "
                       f"{lead.label}, {lead_text}. Treat every ranking here as provisional.")
        elif len(top) == 1:
            beaten = a.beaten_by(lead.label)
            others = [e.label for e in ranked if e.label != lead.label]
            if set(others) <= set(beaten):
                why = "it is clearly better than every other ranked configuration"
            else:
                why = (f"nothing is clearly better than it, and each other configuration is "
                       f"clearly worse than at least one (it beats {names(beaten) or 'none'} "
                       "itself)")
            out.append(f"{lead.label} is the best configuration on final {words}: {why} "
                       f"({family}); {lead_text}.")
        else:
            out.append(f"No single winner on final {words}: {names([e.label for e in top])} "
                       f"cannot be told apart (nothing is clearly better than any of them, "
                       f"{family}). {lead.label} has the best mean: {lead_text}.")
    unranked = [c for c in a.configs if a.rank_of(c.label) is None and c.n_done]
    if unranked and ranked:
        out.append(f"Not ranked (fewer than two {a.pair}s with a finite value): " + "; ".join(
            f"{c.label} ({_trouble(c)})" for c in unranked) + ".")
    out.extend(_baseline_sentences(a))
    out.extend(_target_sentences(a))
    out.extend(restart_sentences(a))
    out.extend(lr_found_sentences(a))
    trouble = [c for c in a.configs if c.diverged or c.failed]
    if trouble:
        out.append("Some seeds did not finish normally — " + "; ".join(
            f"{c.label}: {_trouble(c)}" for c in trouble) + ". Each counts against its "
            "configuration: as the worst value in the paired tests and as a loss in the "
            "probability of improvement.")
    return out


def _diverged_clause(a: Analysis) -> str:
    """``(0 of 11 seeds diverged in any configuration)`` or ``(boom: 3 of 3 diverged; …)``."""
    trouble = [c for c in a.configs if c.diverged or c.failed]
    if not trouble:
        return f"(0 of {plural(a.n_seeds, a.pair)} diverged in any configuration)"
    return "(" + "; ".join(f"{c.label}: {_trouble(c)}" for c in trouble) + ")"


def _baseline_sentences(a: Analysis) -> list[str]:
    comps = list(a.comparisons.values())
    if not comps:
        return []
    words = metric_words(a.monitor)
    better = [c.candidate_label for c in comps if c.verdict == "better"]
    worse = [c.candidate_label for c in comps if c.verdict == "worse"]
    few = [c for c in comps if c.verdict == "too few seeds"]
    rest = [c.candidate_label for c in comps if c.verdict in ("unclear", "identical")]
    parts = []
    if better:
        parts.append(f"clearly better than the baseline: {names(better)}")
    if worse:
        parts.append(f"clearly worse: {names(worse)}")
    if rest:
        parts.append(f"not clearly different: {names(rest)}")
    if few and not (better or worse):
        return [f"Against the baseline {a.baseline} on final {words}: too few {a.pair}s to tell "
                f"({plural(a.n_seeds, a.pair)}; {a.seeds_needed} would be needed for a verdict "
                f"corrected over {plural(a.family, 'comparison')}). Wins so far: " + "; ".join(
                    f"{c.candidate_label} better on {c.wins} of {c.n_pairs}" for c in few)
                + f" {_diverged_clause(a)}."]
    if few:
        parts.append(f"too few {a.pair}s to tell: {names([c.candidate_label for c in few])}")
    return [f"Against the baseline {a.baseline} on final {words}, paired by "
            f"{a.pair.removesuffix(' pair')} — "
            + "; ".join(parts) + f" {_diverged_clause(a)}."]


def _target_sentences(a: Analysis) -> list[str]:
    if a.spec.target is None:
        return []
    goal = target_words(a.spec.target.metric, a.spec.target.value)
    out = []
    comps = a.target_comparisons.get("steps", {})
    if comps:
        faster = [c.candidate_label for c in comps.values() if c.verdict == "better"]
        slower = [c.candidate_label for c in comps.values() if c.verdict == "worse"]
        few = any(c.verdict == "too few seeds" for c in comps.values())
        parts = []
        if faster:
            parts.append(f"clearly faster than {a.baseline}: {names(faster)}")
        if slower:
            parts.append(f"clearly slower: {names(slower)}")
        if not parts:
            parts.append("no configuration is clearly faster or slower than "
                         f"{a.baseline}" + (f" (too few seeds to tell; {a.seeds_needed} "
                                            "would be needed)" if few else ""))
        out.append(f"Time to reach {goal}, in optimizer steps, paired by seed (a seed that "
                   "never reached it counts as slowest) — " + "; ".join(parts)
                   + f" {_diverged_clause(a)}.")
    medians = []
    for c in a.configs:
        t = c.steps_to_target
        if t is not None:
            medians.append(f"{c.label} {amount(t.median, 'steps') if t.reached else 'never'}"
                           f" ({t.reached} of {t.n} reached)")
    if medians:
        out.append(f"Median steps to {goal}: " + "; ".join(medians) + f" "
                   f"{_diverged_clause(a)}. Seconds to the "
                   "target are shown, not tested: they depend on the machine's load while each "
                   "trial ran.")
    return out


def how_to_read(analysis: Analysis) -> list[str]:
    """What the report's numbers mean, in the words of this study."""
    a = analysis
    n = a.n_seeds
    u = a.pair
    same = ("the same fold and seed give the same training rows, initial weights and batch "
            "order" if a.kfold else "the same seed gives the same initial weights and batch "
            "order")
    coverage = ("their coverage was checked by simulation at 3, 5 and 10 seeds on normal and "
                "on accuracy-like (binomial) data" if not a.kfold else
                "they treat the (fold, seed) values as independent, which they are given this "
                "dataset but not as samples of new data (see the sources of variance above): "
                "for the accuracy on new data they are too narrow")
    out = [
        variance(a),
        f"Intervals of a mean are Student-t 95% confidence intervals over the {u}s with a "
        f"finite value, x̄ ± t(n−1)·s/√n: {coverage}. A configuration with fewer "
        f"than two finite values gets no interval and no rank. The dots in the final-metric "
        f"plot are the individual {u}s.",
        f"Comparisons are paired by {u.removesuffix(' pair')} ({same}), and use an exact "
        f"sign-flip test of the signed ranks of the differences (Wilcoxon's statistic, with "
        f"ties as ties: values equal to 9 significant digits count as equal). A diverged or "
        f"failed {u} counts as the worst value; a {u} that never reached the target counts as "
        f"the slowest. The p-values of all {plural(a.family, 'comparison')} of the study "
        f"(every pair of configurations on final {metric_words(a.monitor)}"
        + (", and each configuration against the baseline in optimizer steps to the target"
           if a.spec.target is not None else "")
        + ") are corrected together by Holm's method, so the chance of any false \"better\" "
          "or \"worse\" in this report is at most 5%"
        + (" — about these folds of this dataset" if a.kfold else "") + ".",
        f"With n {u}s the smallest possible p-value is 2/2^n, so a corrected verdict needs "
        f"at least {a.seeds_needed} {u}s here; this study has {n}. Below that the report "
        f"says \"too few seeds to tell\" instead of a verdict.",
        "Rank = 1 + the number of configurations that are clearly better (after the "
        "correction). Rank 1 is the set that nothing beats clearly; configurations that cannot "
        "be told apart share a rank, and the rank does not depend on the order of the "
        "configurations in the spec.",
        f"P(better) is the chance that, for a new {u}, the configuration ends better than the "
        f"baseline ({a.baseline}) trained with the same {u.removesuffix(' pair')} (ties count "
        f"half; Bouthillier et al., 2021), with an exact (Clopper–Pearson) 95% interval.",
    ]
    if a.n_restarts > 1:
        out.append(
            f"Restarts: each {u} trains its configuration's restarts (the seed itself for "
            f"restart 0, a seed derived from it for the others: new initial weights and batch "
            f"order) and keeps the one with the best {metric_words(a.monitor)} — chosen on "
            f"validation, never on test. Every number above is that of the restart kept; its "
            f"test value is the test value of the restart chosen on validation. The gain of "
            f"best-of-N over the average restart is measured per {u} and summarized with its t "
            f"interval: on validation it is optimistic by construction (the choice was made on "
            f"it), on test it is what the choice is worth on data it did not see.")
    return out


def restart_sentences(a: Analysis) -> list[str]:
    """Per configuration with restarts: their spread, and what keeping the best gained over
    the average restart — on test (honest) and on validation (optimistic)."""
    out = []
    words = metric_words(a.monitor)
    test_words = metric_words("test_" + a.monitor.removeprefix("val_"))
    scale = 100.0 if a.percent else 1.0
    unit = " points" if a.percent else ""
    for c in a.configs:
        r = c.restarts
        if r is None or not r.chosen:
            continue
        spread, _, _ = estimate(r.spread, scale=scale)
        val = _gain(r.gain_val, scale, unit)
        text = (f"{c.label}: best of {r.restarts} restarts by {words} over "
                f"{plural(len(r.chosen), a.pair)}; the restarts of a {a.pair} differ by "
                f"{spread}{unit} (sample std, mean over the {a.pair}s)")
        if r.has_test:
            text += (f"; keeping the best gained {_gain(r.gain_test, scale, unit, test_words)} "
                     f"over the average restart (on validation, where it was chosen: {val} — "
                     "optimistic by construction)")
        else:
            text += (f"; on validation, where it was chosen, keeping the best gained {val} "
                     "over the average restart (optimistic by construction; with no test "
                     "split, what it gains on unseen data is not measured)")
        trouble = f"{r.diverged} of {r.restarts * len(r.chosen)} restarts diverged"
        out.append(f"{text} ({trouble}).")
    return out


def _gain(s: Summary, scale: float, unit: str, of: str = "") -> str:
    """``+0.8 points of test accuracy, 95% CI [−0.2, 1.8]`` (signed)."""
    of = f" of {of}" if of else ""
    if s.n_finite == 0:
        return "nothing measurable"
    if s.n_finite < 2:
        value, _, _ = estimate(s.mean, scale=scale, plus=True)
        return f"{value}{unit}{of} (one value, no interval)"
    value, low, high = estimate(s.mean, s.ci_low, s.ci_high, scale=scale, plus=True)
    return f"{value}{unit}{of}, 95% CI [{low}, {high}]"


def lr_found_sentences(a: Analysis) -> list[str]:
    """Per configuration with lr = "find": the learning rates its range tests chose."""
    out = []
    for c in a.configs:
        lrs = sorted(c.lrs_found)
        if not lrs:
            continue
        rule = next(iter(c.lr_finds.values())).get("rule", "")
        mid = lrs[len(lrs) // 2] if len(lrs) % 2 else (lrs[len(lrs) // 2 - 1] *
                                                        lrs[len(lrs) // 2]) ** 0.5
        if len(lrs) > 1 and lrs[0] != lrs[-1]:
            spread = f" (from {lrs[0]:.3g} to {lrs[-1]:.3g} over {plural(len(lrs), 'trial')})"
        else:
            spread = f" (the same in all {len(lrs)} trials)" if len(lrs) > 1 else " (one trial)"
        out.append(f"{c.label}: the learning-rate range test chose lr = {mid:.3g}{spread}, by "
                   f"the {rule} rule, on each trial's own training data before it trained.")
    return out
