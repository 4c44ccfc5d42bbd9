"""The lab's words and numbers: one home for how a metric, a number, an interval, a p-value, a
duration or a setting is written, and for the sentences a study's answer is made of — used by
the statistics (:mod:`optimlab.lab.stats`), the CLI and the HTML report alike.

Numbers
-------
A metric is written in percent (or percentage points, for a difference) when its name is
accuracy-like (accuracy/acc, f1, precision, recall, auc, r2, iou, dice, …) and every value
involved lies in [0, 1]; otherwise in its own units. An estimate with an interval is rounded to
the first significant digit of the interval's half-width, with up to two more digits so that no
non-zero number prints as 0; without an interval (or a zero-width one) to three significant
digits, trailing zeros dropped ("2 points", not "2.000000000000 points"). Negative numbers use
the minus sign "−" (U+2212); signed differences show "+" when positive.

Sentences
---------
:func:`answer` and :func:`how_to_read` turn an :class:`optimlab.lab.analysis.Analysis` into the
report's (and the CLI's) prose; every sentence that rests on seeds says how many of them
diverged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for annotations: analysis imports stats, which imports this module
    from optimlab.lab.analysis import Analysis, ConfigResult
    from optimlab.lab.stats import Comparison, Summary, TargetSummary

MINUS = "\u2212"
DASH = "—"

_PROPORTION_TOKENS = frozenset({
    "accuracy", "acc", "f1", "precision", "recall", "auc", "auroc", "r2", "iou", "miou",
    "dice", "jaccard", "specificity", "sensitivity", "tpr", "tnr",
})
_ACRONYMS = {"roc": "ROC", "auc": "AUC", "r2": "R²", "mse": "MSE", "mae": "MAE",
             "rmse": "RMSE", "f1": "F1", "iou": "IoU", "lr": "LR", "nll": "NLL"}
_SPLIT = re.compile(r"[_\s]+")
_COUNTED_UNITS = ("step", "epoch", "iteration", "batch", "update")


# --------------------------------------------------------------------------------------------
# Metric names
# --------------------------------------------------------------------------------------------


def metric_words(name: str) -> str:
    """A metric name in words: underscores become spaces and known acronyms are capitalized
    (``"val_accuracy"`` → ``"val accuracy"``, ``"val_roc_auc"`` → ``"val ROC AUC"``)."""
    parts = [p for p in _SPLIT.split(name.strip()) if p]
    return " ".join(_ACRONYMS.get(p.lower(), p) for p in parts)


def is_proportion_metric(name: str, values: Sequence[float | None] | np.ndarray = ()) -> bool:
    """True when ``name`` is accuracy-like (a token such as accuracy/acc, f1, precision,
    recall, auc, r2, iou, dice) and every finite value in ``values`` lies in [0, 1]: such a
    metric is reported in percent and its differences in percentage points."""
    tokens = set(re.split(r"[^0-9a-z]+", name.lower()))
    if not tokens & _PROPORTION_TOKENS:
        return False
    x = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    return bool(np.all((x >= 0.0) & (x <= 1.0)))


def target_words(metric: str, value: float) -> str:
    """``"95% val accuracy"`` or ``"val loss 0.1"``: a target in words."""
    words = metric_words(metric)
    if is_proportion_metric(metric, [value]):
        return f"{plain(value * 100)}% {words}"
    return f"{words} {plain(value)}"


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def digits(half_width: float | None, values: Sequence[float]) -> int:
    """Decimals to show. With an interval of positive half-width: down to the half-width's
    first significant digit, and further (at most two more) until every non-zero value shows a
    significant digit. Without one: three significant digits of the largest value."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    scale = max(finite, default=0.0)
    if (half_width is not None and math.isfinite(half_width)
            and half_width > 1e-9 * max(scale, 1e-300)):
        base = -math.floor(math.log10(half_width))
        out = base
        for v in finite:  # a bound of 0.33 must not print as "0" and seem to touch zero
            out = max(out, min(base + 2, -math.floor(math.log10(v))))
        return int(min(12, max(0, out)))
    if not finite:
        return 0
    return int(min(12, max(0, 2 - math.floor(math.log10(scale)))))


def fmt(value: float, places: int, *, plus: bool = False, strip: bool = False) -> str:
    """``value`` with ``places`` decimals, a true minus sign, no "−0.0"; ``strip`` drops
    trailing zeros (``2.00`` → ``2``); non-finite → "n/a"."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:.{places}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    negative = text.startswith("-")
    text = text.lstrip("-")
    if negative and any(c not in "0." for c in text):
        return MINUS + text
    if plus and any(c not in "0." for c in text):
        return "+" + text
    return text


def estimate(value: float, low: float | None = None, high: float | None = None, *,
             scale: float = 1.0, plus: bool = False) -> tuple[str, str, str]:
    """``value`` and its interval ``[low, high]`` (times ``scale``) written with the digits
    :func:`digits` picks; without an interval (or a zero-width one) three significant digits,
    trailing zeros dropped. Returns the three strings (bounds "n/a" when missing)."""
    v = value * scale
    lo = low * scale if low is not None else math.nan
    hi = high * scale if high is not None else math.nan
    has_interval = math.isfinite(lo) and math.isfinite(hi)
    half = (hi - lo) / 2 if has_interval else None
    places = digits(half, [v, lo, hi] if has_interval else [v])
    exact = half is None or half <= 1e-9 * max(abs(v), abs(lo), abs(hi), 1e-300)
    return (fmt(v, places, plus=plus, strip=exact), fmt(lo, places, strip=exact),
            fmt(hi, places, strip=exact))


def plain(value: float) -> str:
    """Up to six significant digits without trailing zeros (95.0 → "95", 0.1 → "0.1")."""
    return f"{value:g}".replace("-", MINUS)


def num(value: Any, percent: bool, *, signed: bool = False) -> str:
    """A table cell: a proportion as percent with one decimal, else four significant digits;
    "—" for a missing or non-finite value."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    sign = "+" if signed else ""
    text = f"{value * 100:{sign}.1f}" if percent else f"{value:{sign}.4g}"
    if not any(c in "123456789" for c in text.split("e")[0]):  # rounds to zero: no sign
        text = text.lstrip("+-")
    return text.replace("-", MINUS)


def interval(low: float, high: float, percent: bool) -> str:
    """``[low, high]`` as table cells, or "—" without an interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return DASH
    return f"[{num(low, percent)}, {num(high, percent)}]"


def p_value(p: float, *, prefix: bool = True) -> str:
    """``p = 0.031``, ``p < 0.001``, or ``p = n/a``; ``prefix=False`` drops "p = "."""
    if not math.isfinite(p):
        text = "n/a"
    elif p < 0.001:
        return "p < 0.001" if prefix else "< 0.001"
    else:
        text = f"{p:.2g}"
    return f"p = {text}" if prefix else text


def seconds(s: float) -> str:
    """A duration: ``0.42 s``, ``12.3 s``, ``2 min 05 s``, ``1 h 02 min``; "—" when unknown."""
    if not isinstance(s, int | float) or not math.isfinite(s):
        return DASH
    if s < 60:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def amount(value: float, unit: str) -> str:
    """``412 steps`` (counted units are whole numbers) or ``12.7 seconds``."""
    if not math.isfinite(value):
        return "never" if value > 0 else "n/a"
    if unit.rstrip("s") in _COUNTED_UNITS:
        return f"{fmt(float(round(value)), 0)} {unit}"
    return f"{fmt(value, digits(None, [value]), strip=True)} {unit}"


def short(value: Any) -> str:
    """A setting or an environment value on one line (floats with ``g``, containers as compact
    JSON)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def clean(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively (for JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [clean(x) for x in value]
    return value


def plural(n: int, word: str) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def names(items: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------
# Statistics in words
# --------------------------------------------------------------------------------------------


def failures(k: int, n: int, word: str = "diverged") -> str:
    """``0 of 5 diverged``: said in every sentence that rests on seeds."""
    return f"{k} of {n} {word}"


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


def comparison_sentence(c: Comparison) -> str:
    """One sentence for a paired comparison: the verdict (after the study's correction), the
    seeds won, the probability of improvement, the mean difference and how many diverged."""
    words = metric_words(c.metric)
    cand, base = c.candidate_label, c.baseline_label
    n = c.n_pairs
    if n == 0:
        return (f"{cand} and {base} cannot be compared on {words}: no seed was finished by "
                "both")
    scale = 100.0 if c.in_points else 1.0
    unit = " points" if c.in_points else (f" {c.unit}" if c.unit else "")
    trouble = (f"{cand}: {failures(c.candidate_failed, n, c.failure)}, "
               f"{base}: {failures(c.baseline_failed, n, c.failure)}")
    seeds = f"better on {c.wins} of {n} seeds"
    if c.ties:
        seeds += f" ({c.ties} tied)"
    prob, prob_low, prob_high = (fmt(v, 2) for v in (c.prob, c.prob_low, c.prob_high))
    chance = f"P({cand} better) = {prob}, 95% CI [{prob_low}, {prob_high}]"
    if c.n_finite_pairs >= 2:
        diff, low, high = estimate(c.mean_diff, c.ci_low, c.ci_high, scale=scale, plus=True)
        level = f"{plain(c.confidence * 100)}% CI"
        both = ("" if c.n_finite_pairs == n else
                f" over the {c.n_finite_pairs} seeds both finished")
        size = f"mean difference {diff}{unit}{both}, {level} [{low}, {high}]"
    elif c.n_finite_pairs == 1:
        diff, _, _ = estimate(c.mean_diff, scale=scale, plus=True)
        size = f"difference {diff}{unit} on the one seed both finished"
    else:
        size = "no seed where both have a finite value"
    test = (f"{p_value(c.p_value)}, Holm-adjusted over the study's {c.family} comparisons "
            f"{p_value(c.p_adjusted, prefix=False)}" if c.family > 1 else p_value(c.p_value))
    if c.verdict in ("better", "worse"):
        verb = "beats" if c.verdict == "better" else "is worse than"
        return (f"{cand} {verb} {base} on {words} ({test}): {seeds}, {chance}; {size}; "
                f"{trouble}")
    if c.verdict == "too few seeds":
        return (f"{cand} vs {base} on {words}: too few seeds to tell — {n} paired "
                f"seed{'s' if n != 1 else ''}, and a verdict corrected for "
                f"{plural(c.family, 'comparison')} needs at least {c.seeds_needed}; so far "
                f"{seeds}, {chance}; {size}; {trouble}")
    if c.verdict == "identical":
        return (f"{cand} and {base} show no difference on {words}: identical on all "
                f"{n} seeds; {trouble}")
    return (f"{cand} and {base} do not differ clearly on {words} ({test}): {seeds}, "
            f"{chance}; {size}; {trouble}")


def target_sentence(t: TargetSummary) -> str:
    """``reached 95% val accuracy on 10 of 10 seeds: median 46 steps, 95% CI [46, 69]
    (0 of 10 diverged)``."""
    trouble = failures(t.diverged, t.n)
    if t.reached == 0:
        return f"did not reach {t.goal} on any of {plural(t.n, 'seed')} ({trouble})"
    med = amount(t.median, t.unit)
    if math.isfinite(t.median_low):
        low = amount(t.median_low, t.unit).split()[0]
        high = (amount(t.median_high, t.unit).split()[0] if math.isfinite(t.median_high)
                else "not reached")
        ci = f", 95% CI [{low}, {high}]"
    else:
        ci = f" (no 95% interval for a median from fewer than {_MEDIAN_CI_MIN} seeds)"
    median = (f"median {med}{ci}" if math.isfinite(t.median) else
              "median: not reached (fewer than half the seeds got there)")
    return (f"reached {t.goal} on {t.reached} of {plural(t.n, 'seed')}: {median} "
            f"({trouble})")


#: the fewest seeds whose order statistics give a 95% interval of a median: 1 − 2/2⁶ ≥ 0.95
_MEDIAN_CI_MIN = 6


# --------------------------------------------------------------------------------------------
# The answer
# --------------------------------------------------------------------------------------------


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
