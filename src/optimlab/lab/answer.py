"""A study's answer in words: which configurations are best and how sure, each against the
baseline, time to target, what failed, and how to read the numbers — the prose of the CLI and
the HTML report, built from an :class:`optimlab.lab.analysis.Analysis`. Every sentence that
rests on seeds says how many of them diverged.
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
                     failed: int = 0) -> str:
    """``97.1% on average over 10 seeds, 95% CI [96.8, 97.4] (0 of 10 diverged)`` — or, with
    fewer than two finite values, no interval and why."""
    pct = "%" if percent else ""
    scale = 100.0 if percent else 1.0
    trouble = failures(diverged, s.n)
    if failed:
        trouble += f", {failures(failed, s.n, 'failed')}"
    if s.n_finite == 0:
        return f"no finite final {metric_words(metric)} ({trouble})"
    if s.n_finite < 2:
        value, _, _ = estimate(s.mean, scale=scale)
        return (f"{value}{pct} from a single seed: no interval and no rank, since one value "
                f"says nothing of the spread ({trouble})")
    value, low, high = estimate(s.mean, s.ci_low, s.ci_high, scale=scale)
    level = f"{plain(s.confidence * 100)}% CI"
    return (f"{value}{pct} on average over {plural(s.n_finite, 'seed')}, {level} "
            f"[{low}, {high}] ({trouble})")


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
                                     diverged=lead_c.diverged, failed=lead_c.failed)
        family = (f"paired by seed, Holm-corrected over the study's "
                  f"{plural(a.family, 'comparison')}")
        if len(ranked) == 1:
            out.append(f"Only {lead.label} can be ranked: final {words} {lead_text}.")
        elif a.n_seeds < a.seeds_needed:
            out.append(f"Too few seeds to tell which configuration is best: with "
                       f"{plural(a.n_seeds, 'seed')} no difference can be significant after "
                       f"correcting for the study's {plural(a.family, 'comparison')} (the "
                       f"smallest possible p-value, 2/2^{a.n_seeds}, is above 5%/{a.family}); "
                       f"{a.seeds_needed} seeds would be needed. Highest mean final {words}: "
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
        out.append("Not ranked (fewer than two seeds with a finite value): " + "; ".join(
            f"{c.label} ({_trouble(c)})" for c in unranked) + ".")
    out.extend(_baseline_sentences(a))
    out.extend(_target_sentences(a))
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
        return f"(0 of {a.n_seeds} seeds diverged in any configuration)"
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
        return [f"Against the baseline {a.baseline} on final {words}: too few seeds to tell "
                f"({plural(a.n_seeds, 'seed')}; {a.seeds_needed} would be needed for a verdict "
                f"corrected over {plural(a.family, 'comparison')}). Wins so far: " + "; ".join(
                    f"{c.candidate_label} better on {c.wins} of {c.n_pairs}" for c in few)
                + f" {_diverged_clause(a)}."]
    if few:
        parts.append(f"too few seeds to tell: {names([c.candidate_label for c in few])}")
    return [f"Against the baseline {a.baseline} on final {words}, paired by seed — "
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
    out = [
        sources_of_variance(a.resplit),
        "Intervals of a mean are Student-t 95% confidence intervals over the seeds with a "
        "finite value, x̄ ± t(n−1)·s/√n: their coverage was checked by simulation at 3, 5 and "
        "10 seeds on normal and on accuracy-like (binomial) data. A configuration with fewer "
        "than two finite values gets no interval and no rank. The dots in the final-metric "
        "plot are the individual seeds.",
        f"Comparisons are paired by seed (the same seed gives the same initial weights and "
        f"batch order), and use an exact sign-flip test of the signed ranks of the "
        f"differences (Wilcoxon's statistic, with ties as ties: values equal to 9 significant "
        f"digits count as equal). A diverged or failed seed counts as the worst value; a seed "
        f"that never reached the target counts as the slowest. The p-values of all "
        f"{plural(a.family, 'comparison')} of the study (every pair of configurations on "
        f"final {metric_words(a.monitor)}"
        + (", and each configuration against the baseline in optimizer steps to the target"
           if a.spec.target is not None else "")
        + ") are corrected together by Holm's method, so the chance of any false \"better\" "
          "or \"worse\" in this report is at most 5%.",
        f"With n seeds the smallest possible p-value is 2/2^n, so a corrected verdict needs "
        f"at least {a.seeds_needed} seeds here; this study has {n}. Below that the report "
        f"says \"too few seeds to tell\" instead of a verdict.",
        "Rank = 1 + the number of configurations that are clearly better (after the "
        "correction). Rank 1 is the set that nothing beats clearly; configurations that cannot "
        "be told apart share a rank, and the rank does not depend on the order of the "
        "configurations in the spec.",
        f"P(better) is the chance that, for a new seed, the configuration ends better than the "
        f"baseline ({a.baseline}) trained with the same seed (ties count half; Bouthillier et "
        f"al., 2021), with an exact (Clopper–Pearson) 95% interval.",
    ]
    return out
