"""Statistics across seeds: how good is a training recipe, is it better than another, how sure.

Every function takes the per-seed values of one metric for one configuration — a mapping
``seed → value`` or a plain sequence — and returns a small frozen dataclass. NaN (or ±inf, or
``None``) marks a seed that diverged or did not record the metric: it is left out of every
statistic and counted.

Definitions
-----------
mean, median, min, max
    Over the finite values only.
std
    Sample standard deviation, s = √(Σ (xᵢ − x̄)² / (n − 1)) (``ddof=1``); NaN when fewer than two
    values are finite.
confidence interval of a mean
    Bootstrap interval from :func:`scipy.stats.bootstrap` (``n_resamples`` resamples drawn by
    ``np.random.default_rng(seed)``, so one seed gives one interval). Method BCa (bias-corrected
    and accelerated); when BCa gives no finite interval — it cannot when all values are equal,
    since the acceleration is 0/0 — the percentile method is run instead with a fresh generator
    from the same seed. The method used is recorded in ``ci_method``. With fewer than two finite
    values there is no interval: ``ci_low = ci_high = NaN`` and ``ci_method = "none"`` (a single
    seed says nothing about the spread, so a point interval would claim false certainty).
    Caveat: with few seeds (< 10) bootstrap intervals are narrower than the true coverage.
paired comparison
    Seeds present and finite in both runs are paired; dᵢ = candidateᵢ − baselineᵢ. The mean
    difference gets the bootstrap interval above (a bootstrap over seeds, resampling pairs).
    ``p_value`` is the two-sided Wilcoxon signed-rank test of the median of d being 0
    (:func:`scipy.stats.wilcoxon`, ``zero_method="wilcox"``: zero differences are dropped; scipy
    picks the exact null distribution for small samples). All differences zero → p = 1.0 and
    "no difference"; fewer than two pairs → p = NaN.
'better' rule
    ``better`` is True when the interval of the mean difference lies entirely on the good side
    of 0 (above for ``mode="max"``, below for ``mode="min"``), False when it lies entirely on
    the bad side, and None otherwise ("no clear difference", also with fewer than two pairs or
    identical runs). ``significant`` is separately ``p < 0.05``. The two can disagree with few
    seeds: the exact two-sided Wilcoxon p-value cannot go below 2/2ⁿ, so with 5 seeds even a 5/5
    win has p = 0.0625.
tie rule of :func:`rank`
    Entries are sorted by mean, best first (stable: equal means keep the input order; NaN means
    last). The first entry opens tier 1. Each following entry joins the current tier when its
    interval overlaps the interval of the tier's *first* entry (closed intervals: a ≤ d and
    c ≤ b for [a, b] and [c, d]); otherwise it opens a new tier. An entry without an interval
    (fewer than two finite seeds) counts as the point [mean, mean]. Ranks are 1-based
    competition ranks: every entry of a tier gets the position of its first entry (1, 1, 3, …).
    Entries with a NaN mean all share the last rank, after every finite entry.

Statements
----------
Sentences for reports and the CLI. Metric names are shown in words (``val_accuracy`` → "val
accuracy", ``roc_auc`` → "ROC AUC"). A metric is expressed in percentage points ("2.1 points")
when its name is accuracy-like (accuracy/acc, f1, precision, recall, auc, r2, iou, dice, …) and
every finite value involved lies in [0, 1]; otherwise in the metric's own units. Numbers are
rounded to the first significant digit of the interval's half-width, with up to two more
digits so that no non-zero estimate or bound prints as 0 (so the interval's
precision decides the digits; up to two more digits when the estimate itself would round to
0), or to three significant digits when there is no interval.
Negative numbers use the minus sign "−" (U+2212); signed differences show "+" when positive.

Example::

    s = summarize({0: 0.91, 1: 0.93, 2: float("nan"), 3: 0.92})
    s.n, s.n_finite, s.mean          # (4, 3, 0.92)
    c = paired(adamw, sgd, mode="max", metric="val_accuracy",
               candidate_label="AdamW", baseline_label="SGD")
    c.statement   # 'AdamW beats SGD on val accuracy by 2.1 points, 95% CI [1.4, 2.8], p = 0.0078,
                  #  8/8 seeds'
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from optimlab._checks import check_choice, check_number

__all__ = [
    "Comparison",
    "RankedEntry",
    "Summary",
    "TargetSummary",
    "divergence_count",
    "is_proportion_metric",
    "metric_words",
    "paired",
    "rank",
    "summarize",
    "to_target",
]

Mode = Literal["max", "min"]
Values = Mapping[int, float | None] | Sequence[float | None] | np.ndarray

_MINUS = "\u2212"
_SIGNIFICANT_P = 0.05


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Statistics of one metric over the seeds of one configuration.

    ``n`` seeds in all, ``n_finite`` of them with a finite value; every statistic is over the
    finite values. ``std`` is the sample std (ddof = 1). ``[ci_low, ci_high]`` is the bootstrap
    interval of the mean at level ``confidence``, computed with ``ci_method`` ("BCa",
    "percentile", or "none" with fewer than two finite values, when both bounds are NaN).
    """

    n: int
    n_finite: int
    mean: float
    std: float
    median: float
    ci_low: float
    ci_high: float
    min: float
    max: float
    confidence: float = 0.95
    ci_method: str = "none"

    @property
    def n_missing(self) -> int:
        """Seeds whose value is NaN/inf/None (diverged or not recorded)."""
        return self.n - self.n_finite


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of a candidate against a baseline on one metric, seed by seed.

    ``differences[i]`` = candidate − baseline on ``seeds[i]`` (the ``n_pairs`` seeds finite in
    both); ``n_excluded`` seeds of either run were left out (missing from the other run or
    non-finite in one). ``mean_diff`` and ``[ci_low, ci_high]`` are signed the same way
    (candidate − baseline) whatever the mode. ``wins`` counts seeds where the candidate is
    strictly better given ``mode``. ``p_value``: two-sided Wilcoxon signed-rank test.
    ``better``: True / False / None (no clear difference) by the interval rule of the module
    docstring; ``significant`` = ``p_value < 0.05``.
    """

    metric: str
    mode: str
    candidate_label: str
    baseline_label: str
    n_pairs: int
    n_excluded: int
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    better: bool | None
    significant: bool
    statement: str
    confidence: float = 0.95
    ci_method: str = "none"


@dataclass(frozen=True)
class RankedEntry:
    """One configuration in a ranking: its ``label``, 1-based competition ``rank`` (tied
    entries share a rank), and its ``summary``."""

    label: str
    rank: int
    summary: Summary


@dataclass(frozen=True)
class TargetSummary:
    """Time to reach a target: ``reached`` of ``n`` seeds got there; ``summary`` is over those
    seeds only (so ``summary.n == reached``); ``statement`` says it in words."""

    n: int
    reached: int
    summary: Summary
    statement: str
    unit: str = "steps"


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def summarize(values: Values, *, confidence: float = 0.95, n_resamples: int = 9999,
              seed: int = 0) -> Summary:
    """Mean, sample std (ddof = 1), median, min, max and a bootstrap interval of the mean over
    the finite per-seed ``values`` (a mapping seed → value or a sequence; NaN/inf/None are left
    out and counted in ``n - n_finite``).

    The interval is :func:`scipy.stats.bootstrap` of ``np.mean`` with
    ``rng=np.random.default_rng(seed)``: BCa, or percentile when BCa gives no finite interval
    (all values equal). Fewer than two finite values: std and interval are NaN.

    >>> summarize([0.9, 0.92, float("nan")]).n_finite
    2
    """
    _check_ci_args(confidence, n_resamples, seed)
    x = _as_array(values)
    finite = x[np.isfinite(x)]
    k = int(finite.size)
    if k == 0:
        nan = math.nan
        return Summary(n=int(x.size), n_finite=0, mean=nan, std=nan, median=nan, ci_low=nan,
                       ci_high=nan, min=nan, max=nan, confidence=confidence, ci_method="none")
    low, high, method = _bootstrap_mean(finite, confidence, n_resamples, seed)
    return Summary(
        n=int(x.size),
        n_finite=k,
        mean=float(np.mean(finite)),
        std=float(np.std(finite, ddof=1)) if k >= 2 else math.nan,
        median=float(np.median(finite)),
        ci_low=low,
        ci_high=high,
        min=float(np.min(finite)),
        max=float(np.max(finite)),
        confidence=confidence,
        ci_method=method,
    )


def _bootstrap_mean(x: np.ndarray, confidence: float, n_resamples: int,
                    seed: int) -> tuple[float, float, str]:
    """Bootstrap interval of the mean of the finite 1-D ``x``: BCa, else percentile."""
    if x.size < 2:
        return math.nan, math.nan, "none"
    for method in ("BCa", "percentile"):
        try:
            with warnings.catch_warnings():
                # BCa on degenerate data warns (DegenerateDataWarning, 0/0) and returns NaN;
                # the NaN result is what we act on, so the warning would only be noise.
                warnings.simplefilter("ignore")
                res = stats.bootstrap((x,), np.mean, n_resamples=n_resamples,
                                      confidence_level=confidence, method=method,
                                      rng=np.random.default_rng(seed))
        except (ValueError, FloatingPointError, ZeroDivisionError):
            continue
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high, method
    return math.nan, math.nan, "none"


# --------------------------------------------------------------------------------------------
# Paired comparison
# --------------------------------------------------------------------------------------------


def paired(
    candidate: Mapping[int, float | None],
    baseline: Mapping[int, float | None],
    *,
    mode: Mode,
    metric: str,
    candidate_label: str,
    baseline_label: str,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` seed by seed (mappings seed → value; a sequence
    is read as seeds 0, 1, …).

    Pairs are the seeds present and finite in both; dᵢ = candidateᵢ − baselineᵢ. Returns the
    mean difference with its bootstrap interval (as :func:`summarize`), the two-sided Wilcoxon
    signed-rank p-value (:func:`scipy.stats.wilcoxon` on d; 1.0 when every d is 0, NaN with
    fewer than two pairs), the number of seeds the candidate wins given ``mode`` ("max": higher
    is better, "min": lower is better), ``better`` (True when the interval lies on the good side
    of 0, False when on the bad side, else None), ``significant`` (p < 0.05) and a one-sentence
    ``statement``.
    """
    check_choice("mode", mode, ("max", "min"))
    _check_ci_args(confidence, n_resamples, seed)
    cand = _as_mapping(candidate)
    base = _as_mapping(baseline)
    all_seeds = set(cand) | set(base)
    seeds = tuple(sorted(s for s in set(cand) & set(base)
                         if math.isfinite(cand[s]) and math.isfinite(base[s])))
    n = len(seeds)
    d = np.array([cand[s] - base[s] for s in seeds], dtype=np.float64)
    sign = 1.0 if mode == "max" else -1.0

    mean_diff = float(np.mean(d)) if n else math.nan
    low, high, method = _bootstrap_mean(d, confidence, n_resamples, seed)
    identical = n > 0 and bool(np.all(d == 0.0))
    if n < 2:
        p = math.nan
    elif identical:
        p = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's notes on zeros/ties and small samples
            p = float(stats.wilcoxon(d, alternative="two-sided").pvalue)
    wins = int(np.sum(sign * d > 0))

    better: bool | None = None
    if n >= 2 and not identical and math.isfinite(low) and math.isfinite(high):
        good_low, good_high = sorted((sign * low, sign * high))  # interval of the improvement
        if good_low > 0:
            better = True
        elif good_high < 0:
            better = False

    in_points = is_proportion_metric(metric, [*cand.values(), *base.values()])
    statement = _paired_statement(
        candidate_label=candidate_label, baseline_label=baseline_label, metric=metric,
        n=n, wins=wins, identical=identical, better=better, sign=sign, mean_diff=mean_diff,
        low=low, high=high, p=p, confidence=confidence, in_points=in_points)
    return Comparison(
        metric=metric, mode=mode, candidate_label=candidate_label,
        baseline_label=baseline_label, n_pairs=n, n_excluded=len(all_seeds) - n, seeds=seeds,
        differences=tuple(float(v) for v in d), mean_diff=mean_diff, ci_low=low, ci_high=high,
        p_value=p, wins=wins, better=better,
        significant=bool(math.isfinite(p) and p < _SIGNIFICANT_P), statement=statement,
        confidence=confidence, ci_method=method,
    )


def _paired_statement(*, candidate_label: str, baseline_label: str, metric: str, n: int,
                      wins: int, identical: bool, better: bool | None, sign: float,
                      mean_diff: float, low: float, high: float, p: float, confidence: float,
                      in_points: bool) -> str:
    words = metric_words(metric)
    level = f"{_fmt_plain(confidence * 100)}% CI"
    scale = 100.0 if in_points else 1.0
    unit = " points" if in_points else ""
    seeds = f"{wins}/{n} seeds"
    if n == 0:
        return (f"{candidate_label} and {baseline_label} cannot be compared on {words}: "
                "no seed has a finite value in both")
    if identical:
        return (f"{candidate_label} and {baseline_label} show no difference on {words} "
                f"(identical on {n}/{n} seeds)")
    if n == 1:
        digits = _digits(None, [mean_diff * scale])
        return (f"{candidate_label} and {baseline_label} cannot be compared on {words}: "
                f"only 1 paired seed, difference {_fmt(mean_diff * scale, digits, plus=True)}"
                f"{unit}")
    half = (high - low) / 2 * scale
    if better is None:
        digits = _digits(half, [mean_diff * scale, low * scale, high * scale])
        return (f"{candidate_label} and {baseline_label} do not differ clearly on {words}: "
                f"difference {_fmt(mean_diff * scale, digits, plus=True)}{unit}, {level} "
                f"[{_fmt(low * scale, digits)}, {_fmt(high * scale, digits)}], {_fmt_p(p)}, "
                f"{seeds}")
    # A clear winner: amounts are the size of the gain (or loss) in the good direction, so a
    # lower loss reads "beats … by 0.021" rather than "by −0.021".
    flip = sign if better else -sign
    amount = flip * mean_diff * scale
    lo, hi = sorted((flip * low * scale, flip * high * scale))
    digits = _digits(half, [amount, lo, hi])
    verb = "beats" if better else "is worse than"
    return (f"{candidate_label} {verb} {baseline_label} on {words} by "
            f"{_fmt(amount, digits)}{unit}, {level} [{_fmt(lo, digits)}, {_fmt(hi, digits)}], "
            f"{_fmt_p(p)}, {seeds}")


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------


def rank(summaries: Mapping[str, Summary], *, mode: Mode) -> list[RankedEntry]:
    """Order configurations by mean, best first (``mode="max"``: highest first), in tiers.

    Tie rule: the first entry opens a tier; each next entry joins the current tier when its
    interval ``[ci_low, ci_high]`` overlaps that of the tier's first entry (closed intervals; an
    entry without an interval counts as [mean, mean]), else it opens a new tier. Ranks are
    1-based competition ranks — a tier's entries all get the position of its first entry, so
    ranks run 1, 1, 3, … Equal means keep the input order. Entries with a NaN mean come last
    and share one rank.
    """
    check_choice("mode", mode, ("max", "min"))
    items = list(summaries.items())
    finite = [(label, s) for label, s in items if math.isfinite(s.mean)]
    missing = [(label, s) for label, s in items if not math.isfinite(s.mean)]
    finite.sort(key=lambda item: -item[1].mean if mode == "max" else item[1].mean)

    out: list[RankedEntry] = []
    anchor: tuple[float, float] | None = None
    tier_rank = 0
    for position, (label, s) in enumerate(finite, start=1):
        interval = _interval(s)
        if anchor is None or not _overlap(anchor, interval):
            anchor, tier_rank = interval, position
        out.append(RankedEntry(label=label, rank=tier_rank, summary=s))
    last = len(finite) + 1
    out.extend(RankedEntry(label=label, rank=last, summary=s) for label, s in missing)
    return out


def _interval(s: Summary) -> tuple[float, float]:
    if math.isfinite(s.ci_low) and math.isfinite(s.ci_high):
        return (min(s.ci_low, s.ci_high), max(s.ci_low, s.ci_high))
    return (s.mean, s.mean)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


# --------------------------------------------------------------------------------------------
# Time to target, divergence
# --------------------------------------------------------------------------------------------


def to_target(
    values: Mapping[int, float | None] | Sequence[float | None],
    *,
    target: float | None = None,
    metric: str | None = None,
    unit: str = "steps",
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> TargetSummary:
    """Steps (or seconds, or epochs: ``unit``) each seed took to reach a target value of a
    metric; ``None`` (or NaN) for a seed that never reached it.

    ``reached`` counts the seeds that got there, ``summary`` (:func:`summarize`) is over those
    seeds only, and ``statement`` reads e.g. "reached 95% val accuracy in 412 steps on average
    (4/5 seeds)". ``target`` and ``metric`` only shape the sentence: an accuracy-like target in
    [0, 1] is shown as a percentage.
    """
    _check_ci_args(confidence, n_resamples, seed)
    x = _as_array(values)
    reached_values = x[np.isfinite(x)]
    summary = summarize(reached_values, confidence=confidence, n_resamples=n_resamples,
                        seed=seed)
    n, reached = int(x.size), int(reached_values.size)
    goal = _describe_target(target, metric)
    if reached == 0:
        statement = f"did not reach {goal} on any seed (0/{n} seeds)"
    else:
        statement = (f"reached {goal} in {_fmt_amount(summary.mean, unit)} on average "
                     f"({reached}/{n} seeds)")
    return TargetSummary(n=n, reached=reached, summary=summary, statement=statement, unit=unit)


def divergence_count(statuses: Mapping[int, str]) -> int:
    """Number of seeds whose run status is ``"diverged"`` (case-insensitive)."""
    return sum(1 for status in statuses.values() if str(status).strip().lower() == "diverged")


def _describe_target(target: float | None, metric: str | None) -> str:
    if target is None:
        return f"the {metric_words(metric)} target" if metric else "the target"
    if metric is None:
        return f"the target {_fmt_plain(target)}"
    words = metric_words(metric)
    if is_proportion_metric(metric, [target]):
        return f"{_fmt_plain(target * 100)}% {words}"
    return f"{words} {_fmt_plain(target)}"


def _fmt_amount(value: float, unit: str) -> str:
    if unit.rstrip("s") in ("step", "epoch", "iteration", "batch", "update"):
        return f"{_fmt(float(round(value)), 0)} {unit}"
    return f"{_fmt(value, _digits(None, [value]))} {unit}"


# --------------------------------------------------------------------------------------------
# Metric names and number formatting
# --------------------------------------------------------------------------------------------

_PROPORTION_TOKENS = frozenset({
    "accuracy", "acc", "f1", "precision", "recall", "auc", "auroc", "r2", "iou", "miou",
    "dice", "jaccard", "specificity", "sensitivity", "tpr", "tnr",
})
_ACRONYMS = {"roc": "ROC", "auc": "AUC", "r2": "R²", "mse": "MSE", "mae": "MAE",
             "rmse": "RMSE", "f1": "F1", "iou": "IoU", "lr": "LR", "nll": "NLL"}
_SPLIT = re.compile(r"[_\s]+")


def metric_words(name: str) -> str:
    """A metric name in words: underscores become spaces and known acronyms are capitalized
    (``"val_accuracy"`` → ``"val accuracy"``, ``"val_roc_auc"`` → ``"val ROC AUC"``)."""
    parts = [p for p in _SPLIT.split(name.strip()) if p]
    return " ".join(_ACRONYMS.get(p.lower(), p) for p in parts)


def is_proportion_metric(name: str, values: Sequence[float | None] | np.ndarray = ()) -> bool:
    """True when ``name`` is accuracy-like (a token such as accuracy/acc, f1, precision,
    recall, auc, r2, iou, dice) and every finite value in ``values`` lies in [0, 1]: such a
    metric is reported in percentage points."""
    tokens = set(re.split(r"[^0-9a-z]+", name.lower()))
    if not tokens & _PROPORTION_TOKENS:
        return False
    x = _as_array(values)
    x = x[np.isfinite(x)]
    return bool(np.all((x >= 0.0) & (x <= 1.0)))


def _digits(half_width: float | None, values: Sequence[float]) -> int:
    """Decimals to show. With an interval: down to its half-width's first significant digit,
    and further (at most two more) until the first value — the estimate — shows a significant
    digit. Without one: three significant digits of the largest value."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if half_width is not None and math.isfinite(half_width) and half_width > 0:
        base = -math.floor(math.log10(half_width))
        digits = base
        # every non-zero number shown (estimate and bounds) keeps a significant digit, so a
        # bound of 0.33 does not print as "0" and seem to touch zero
        for v in finite:
            digits = max(digits, min(base + 2, -math.floor(math.log10(v))))
        return int(min(12, max(0, digits)))
    if not finite:
        return 0
    return int(min(12, max(0, 2 - math.floor(math.log10(max(finite))))))


def _fmt(value: float, digits: int, *, plus: bool = False) -> str:
    """``value`` with ``digits`` decimals, a true minus sign, no "−0.0"."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = text[1:]
        negative = any(c not in "0." for c in text)
    else:
        negative = False
    if negative:
        return _MINUS + text
    if plus and any(c not in "0." for c in text):
        return "+" + text
    return text


def _fmt_plain(value: float) -> str:
    """Up to six significant digits without trailing zeros (95.0 → "95", 0.1 → "0.1")."""
    return f"{value:g}".replace("-", _MINUS)


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}"


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _check_ci_args(confidence: float, n_resamples: int, seed: int) -> None:
    check_number("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    check_number("n_resamples", n_resamples, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)


def _to_float(value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"per-seed values must be numbers or None; got {value!r}")
    return float(value)


def _as_array(values: Values) -> np.ndarray:
    if isinstance(values, np.ndarray):
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"values must be 1-D (one value per seed); got shape {x.shape}")
        return x
    seq = values.values() if isinstance(values, Mapping) else values
    if isinstance(seq, str | bytes):
        raise ValueError(f"values must be a mapping seed → value or a sequence; got {seq!r}")
    return np.array([_to_float(v) for v in seq], dtype=np.float64)


def _as_mapping(values: Mapping[int, float | None] | Sequence[float | None]) -> dict[int, float]:
    if isinstance(values, Mapping):
        return {int(k): _to_float(v) for k, v in values.items()}
    if isinstance(values, str | bytes):
        raise ValueError(f"values must be a mapping seed → value; got {values!r}")
    return {i: _to_float(v) for i, v in enumerate(values)}
