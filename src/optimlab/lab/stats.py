"""Statistics across seeds: how good is a training recipe, is it better than another, how sure.

Every function takes the per-seed values of one metric for one configuration — a mapping
``seed → value`` or a plain sequence — and returns a small frozen dataclass. A NaN (or ±inf, or
``None``) marks a seed that diverged or failed: it is left out of a summary's mean and interval
(and counted), and it counts as the **worst** value in every comparison.

(One module over 500 lines, on purpose: each statistic and the sentence that states it live
together, so a verdict's words cannot drift from its test.)

Definitions
-----------
mean, median, min, max, std
    Over the finite values; std is the sample standard deviation s = √(Σ (xᵢ − x̄)²/(n − 1)).
confidence interval of a mean (:func:`summarize`)
    Student t: x̄ ± t₍ₙ₋₁, (1+c)/2₎ · s/√n over the n finite values. Fewer than two finite values
    give no interval (NaN bounds, ``ci_method="none"``): one seed says nothing of the spread.
    Why t and no bootstrap: measured by simulation (``benchmarks/stats_coverage.py``, 2000
    repetitions per cell), the t interval covers 94.5–95.5% at n = 3 … 30 on normal and on
    binomial (accuracies on a 1/180 grid) data, while the BCa bootstrap covers 73–91% at
    n ≤ 10 and stays below t up to 30 seeds (93–94%); on skewed (lognormal) data both fall
    short, t less (91–93%) than BCa (70–91%). Studies here have 3–30 seeds, so the cut above
    which a bootstrap would be as honest as t lies past the sizes we run: there is none.
paired comparison (:func:`paired`)
    Seeds finished by both configurations are paired. The improvement on seed i is
    dᵢ = ±(candidateᵢ − baselineᵢ) (sign such that d > 0 means the candidate is better given
    ``mode``); a non-finite value is the worst possible: dᵢ = −∞ when only the candidate failed,
    +∞ when only the baseline did, 0 when both did. Values are compared on their grid: d is
    rounded to 10⁻⁹ of the largest |value|, so differences of accuracies k/N that differ only
    in floating-point noise are ties.
    The test is the **exact sign-flip test of the signed-rank statistic** W⁺ = Σ_{dᵢ>0} rank|dᵢ|
    (Wilcoxon's statistic, mid-ranks for ties, zeros dropped). Under the null hypothesis that
    candidate and baseline are exchangeable within a seed, each sign is ±1 with probability
    1/2, so the null distribution of W⁺ is Π(1 + x^{rᵢ})/2 — computed exactly by convolution,
    for any n and any ties. Two-sided p = P(|W⁺ − E| ≥ |w − E|), E = Σrᵢ/2. It holds its level
    at every n (it is exact), and with k non-zero differences its smallest value is 2/2ᵏ.
    ``mean_diff`` with its t interval describes the size over the seeds where both are finite.
correction (:func:`correct`)
    Holm's step-down over the m comparisons of a study: p₍ⱼ₎ (sorted) becomes
    max_{i≤j} min(1, (m − i + 1)·p₍ᵢ₎). A verdict ("better"/"worse") needs the adjusted p ≤ α;
    it is possible at all only with n ≥ ⌈log₂(2m/α)⌉ seeds (:func:`seeds_needed`): below, the
    verdict is "too few seeds".
probability of improvement
    P(better) = (wins + ties/2)/n over the paired seeds (Bouthillier et al., 2021), a failure
    being a loss. Interval: [Clopper–Pearson lower bound of wins/n, Clopper–Pearson upper bound
    of (wins + ties)/n], each at level 1 − α/2: coverage ≥ 95% whatever the share of ties.
ranking (:func:`rank`)
    rank = 1 + the number of configurations that are clearly better (a corrected "better"
    verdict in the pairwise comparisons). A function of the data alone: the order of the
    inputs does not matter, and identical configurations share a rank. Fewer than two finite
    values: no rank (None).
power law (:func:`loglog_slope`)
    y ≈ c·x^b fitted by least squares on log–log axes, ln y = a + b·ln x; the interval of the
    slope is b̂ ± t₍ₙ₋₂₎·SE(b̂), SE(b̂) = √(Σ rᵢ²/(n − 2) / Σ (ln xᵢ − mean ln x)²), exact when the
    log errors are independent and normal (coverage checked by simulation in the tests).
time to target (:func:`to_target`)
    A seed that never reached the target is censored (+∞), not dropped. The median is that of
    all seeds (+∞ when fewer than half reached), with the distribution-free interval
    [x₍ₗ₎, x₍ₙ₋ₗ₊₁₎] of order statistics (binomial, coverage ≥ 95%; needs n ≥ 6).

Example::

    s = summarize({0: 0.91, 1: 0.93, 2: float("nan"), 3: 0.92})
    s.n, s.n_finite, s.mean          # (4, 3, 0.92)
    c = paired(adamw, sgd, mode="max", metric="val_accuracy",
               candidate_label="AdamW", baseline_label="SGD")
    c.p_value, c.verdict, c.prob     # e.g. (0.002, 'better', 1.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from optimlab._checks import check_choice, check_number
from optimlab.lab import words
from optimlab.lab.words import is_proportion_metric, metric_words

__all__ = [
    "ALPHA",
    "Comparison",
    "RankedEntry",
    "Slope",
    "Summary",
    "TargetSummary",
    "correct",
    "divergence_count",
    "holm",
    "is_proportion_metric",
    "loglog_slope",
    "metric_words",
    "paired",
    "pairwise",
    "rank",
    "rank_values",
    "seeds_needed",
    "signed_rank_p",
    "summarize",
    "to_target",
]

Mode = Literal["max", "min"]
Values = Mapping[int, float | None] | Sequence[float | None] | np.ndarray
Verdict = Literal["better", "worse", "unclear", "identical", "too few seeds", "no data"]

#: the family-wise error rate of a study's verdicts
ALPHA = 0.05
#: differences within this fraction of the largest |value| are ties (values on a grid)
GRID = 1e-9


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Statistics of one metric over the seeds of one configuration.

    ``n`` seeds in all, ``n_finite`` of them with a finite value; every statistic is over the
    finite values. ``[ci_low, ci_high]`` is the Student-t interval of the mean at level
    ``confidence`` (``ci_method="t"``), or NaN with ``ci_method="none"`` when fewer than two
    values are finite.
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
        """Seeds whose value is NaN/inf/None (diverged, failed or not recorded)."""
        return self.n - self.n_finite


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of a candidate against a baseline on one metric, seed by seed.

    ``seeds``: the ``n_pairs`` seeds both finished; ``improvements[i]`` is the candidate's
    improvement on ``seeds[i]`` in the good direction (±∞ when one side failed, 0 when both
    did). ``candidate_failed``/``baseline_failed`` count non-finite values among the pairs.
    ``mean_diff`` and ``[ci_low, ci_high]`` (t interval) are candidate − baseline over the
    ``n_finite_pairs`` seeds where both are finite. ``wins``/``losses``/``ties`` count seeds;
    ``prob`` = P(better) with its interval. ``p_value`` is the exact two-sided signed-rank
    p; ``p_adjusted`` the same after Holm's correction over a ``family`` of comparisons;
    ``verdict`` one of "better", "worse", "unclear", "identical", "too few seeds", "no data";
    ``seeds_needed`` the fewest seeds at which a corrected verdict is possible.
    """

    metric: str
    mode: str
    candidate_label: str
    baseline_label: str
    seeds: tuple[int, ...]
    improvements: tuple[float, ...]
    n_excluded: int
    candidate_failed: int
    baseline_failed: int
    n_finite_pairs: int
    mean_diff: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    prob: float
    prob_low: float
    prob_high: float
    p_value: float
    direction: int
    in_points: bool
    p_adjusted: float = math.nan
    family: int = 1
    alpha: float = ALPHA
    verdict: Verdict = "unclear"
    seeds_needed: int = 6
    unit: str = ""
    failure: str = "diverged"
    confidence: float = 0.95
    statement: str = ""
    #: what one pair is, in the statement: "seed", or "(fold, seed) pair" with k-fold
    pair: str = "seed"

    @property
    def n_pairs(self) -> int:
        return len(self.seeds)

    @property
    def better(self) -> bool | None:
        """True / False for a corrected "better" / "worse" verdict, else None."""
        return {"better": True, "worse": False}.get(self.verdict)

    @property
    def significant(self) -> bool:
        return self.verdict in ("better", "worse")


@dataclass(frozen=True)
class RankedEntry:
    """One configuration in a ranking: its ``label``, ``rank`` (1 + how many configurations
    are clearly better; None without two finite values), how many it beats clearly
    (``beats``), and its ``summary``."""

    label: str
    rank: int | None
    summary: Summary
    beats: int = 0


@dataclass(frozen=True)
class TargetSummary:
    """Time to reach a target over ``n`` seeds, ``reached`` of which got there; ``values``
    per seed (+∞ = never reached). ``median`` over all seeds (+∞ when fewer than half reached)
    with its distribution-free interval ``[median_low, median_high]`` (NaN below 6 seeds;
    ``median_high`` may be +∞); ``summary`` is over the seeds that reached it."""

    n: int
    reached: int
    values: tuple[float, ...]
    median: float
    median_low: float
    median_high: float
    summary: Summary
    goal: str
    unit: str = "steps"
    diverged: int = 0
    statement: str = ""


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def summarize(values: Values, *, confidence: float = 0.95) -> Summary:
    """Mean, sample std, median, min, max and the Student-t interval of the mean over the
    finite per-seed ``values`` (NaN/inf/None are left out and counted in ``n - n_finite``):

        x̄ ± t₍ₙ₋₁₎ · s/√n,   t the (1 + confidence)/2 quantile of Student's t with n − 1 df.

    Fewer than two finite values: std and interval are NaN (``ci_method="none"``).

    >>> summarize([0.9, 0.92, float("nan")]).n_finite
    2
    """
    _check_confidence(confidence)
    x = _as_array(values)
    finite = x[np.isfinite(x)]
    k = int(finite.size)
    nan = math.nan
    if k == 0:
        return Summary(n=int(x.size), n_finite=0, mean=nan, std=nan, median=nan, ci_low=nan,
                       ci_high=nan, min=nan, max=nan, confidence=confidence)
    mean = float(np.mean(finite))
    if k >= 2:
        std = float(np.std(finite, ddof=1))
        low, high = _t_interval(finite, confidence)
        method = "t"
    else:
        std, low, high, method = nan, nan, nan, "none"
    return Summary(n=int(x.size), n_finite=k, mean=mean, std=std,
                   median=float(np.median(finite)), ci_low=low, ci_high=high,
                   min=float(np.min(finite)), max=float(np.max(finite)),
                   confidence=confidence, ci_method=method)


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean of ``x`` (two or more finite values); all equal → the
    point [x̄, x̄] (never inverted)."""
    k = x.size
    mean = float(np.mean(x))
    s = float(np.std(x, ddof=1))
    if s <= GRID * max(float(np.max(np.abs(x))), 1e-300):
        return mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) * s / math.sqrt(k)
    return mean - half, mean + half


# --------------------------------------------------------------------------------------------
# The paired test
# --------------------------------------------------------------------------------------------


def signed_rank_p(improvements: Sequence[float] | np.ndarray, *,
                  tol: float | None = None) -> tuple[float, int]:
    """Exact two-sided sign-flip p-value of Wilcoxon's signed-rank statistic, and its
    direction (+1: the positive side is larger, −1: the negative, 0: balanced).

    ``improvements`` may hold ±inf (largest in size); NaN is not allowed. Values within ``tol``
    of each other in size are tied (mid-ranks), within ``tol`` of 0 are zeros (dropped); the
    default ``tol`` is 10⁻⁹ of the largest finite |value|. The null distribution of
    W⁺ = Σ_{dᵢ>0} rᵢ is built exactly from Π(1 + x^{rᵢ})/2 on doubled (integer) mid-ranks.
    No non-zero value → p = 1.
    """
    d = np.asarray(improvements, dtype=np.float64)
    if np.isnan(d).any():
        raise ValueError("improvements must not be NaN (a failure is ±inf)")
    finite = d[np.isfinite(d)]
    if tol is None:
        tol = GRID * max(float(np.max(np.abs(finite))) if finite.size else 0.0, 1e-300)
    # sizes on the grid: integers for finite values, a level above all of them for ±inf
    size = np.where(np.isfinite(d), np.round(np.abs(np.where(np.isfinite(d), d, 0.0)) / tol),
                    np.inf)
    keep = size > 0
    size, sign = size[keep], np.sign(d[keep])
    k = int(size.size)
    if k == 0:
        return 1.0, 0
    ranks2 = np.rint(2.0 * stats.rankdata(size)).astype(np.int64)  # doubled mid-ranks
    total = int(ranks2.sum())
    dist = np.zeros(total + 1)
    dist[0] = 1.0
    for r in ranks2:
        shifted = np.zeros_like(dist)
        shifted[r:] = dist[:total + 1 - r]
        dist = 0.5 * (dist + shifted)
    w = int(ranks2[sign > 0].sum())
    j = np.arange(total + 1)
    p = float(dist[np.abs(2 * j - total) >= abs(2 * w - total)].sum())
    return min(1.0, p), int(np.sign(2 * w - total))


def seeds_needed(family: int, alpha: float = ALPHA) -> int:
    """The fewest paired seeds n at which a verdict corrected for ``family`` comparisons is
    possible at all: the smallest p of an exact sign-flip test, 2/2ⁿ, must be ≤ α/m, so
    n = ⌈log₂(2m/α)⌉ (1 comparison: 6 seeds; 7: 9; 28: 11; 42: 11)."""
    m = max(1, int(family))
    n = 1
    while 2.0 / 2.0**n > alpha / m:
        n += 1
    return n


def paired(
    candidate: Mapping[int, float | None] | Sequence[float | None],
    baseline: Mapping[int, float | None] | Sequence[float | None],
    *,
    mode: Mode,
    metric: str,
    candidate_label: str,
    baseline_label: str,
    confidence: float = 0.95,
    alpha: float = ALPHA,
    unit: str = "",
    failure: str = "diverged",
    percent: bool | None = None,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` seed by seed (mappings seed → value; a sequence
    is read as seeds 0, 1, …). Non-finite values are failures and count as the worst value.

    Returns the exact signed-rank test (as a single comparison: ``family=1``; use
    :func:`correct` for a study's family), the seeds won, P(better) with its interval, and the
    mean difference (candidate − baseline) with its t interval over the seeds both finished
    with finite values. ``unit`` names the metric's unit in sentences ("steps"); ``failure``
    is the word for a non-finite value ("diverged", "never reached"); ``percent`` forces (or
    forbids) writing differences in percentage points (default: from the metric's name and
    values).
    """
    check_choice("mode", mode, ("max", "min"))
    _check_confidence(confidence)
    check_number("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    cand = _as_mapping(candidate)
    base = _as_mapping(baseline)
    seeds = tuple(sorted(set(cand) & set(base)))
    n = len(seeds)
    sign = 1.0 if mode == "max" else -1.0
    c = np.array([cand[s] for s in seeds], dtype=np.float64)
    b = np.array([base[s] for s in seeds], dtype=np.float64)
    c_ok, b_ok = np.isfinite(c), np.isfinite(b)
    both = c_ok & b_ok
    improvement = np.zeros(n)
    improvement[both] = sign * (c[both] - b[both])
    improvement[~c_ok & b_ok] = -np.inf
    improvement[c_ok & ~b_ok] = np.inf
    scale = max([abs(v) for v in (*c[c_ok], *b[b_ok])] or [1.0])
    tol = GRID * max(scale, 1e-300)
    on_grid = np.where(np.isfinite(improvement), np.round(improvement / tol) * tol, improvement)
    wins, losses = int(np.sum(on_grid > 0)), int(np.sum(on_grid < 0))
    ties = n - wins - losses
    p, direction = signed_rank_p(improvement, tol=tol) if n else (math.nan, 0)

    diff = np.round((c[both] - b[both]) / tol) * tol  # on the grid: ties are exactly 0
    mean_diff = float(np.mean(diff)) if diff.size else math.nan
    low, high = _t_interval(diff, confidence) if diff.size >= 2 else (math.nan, math.nan)
    prob, prob_low, prob_high = _prob_improvement(wins, ties, n, 1 - confidence)
    if percent is None:
        percent = is_proportion_metric(metric, [*c[c_ok], *b[b_ok]])
    result = Comparison(
        metric=metric, mode=mode, candidate_label=candidate_label,
        baseline_label=baseline_label, seeds=seeds,
        improvements=tuple(float(v) for v in improvement),
        n_excluded=len(set(cand) | set(base)) - n,
        candidate_failed=int(np.sum(~c_ok)), baseline_failed=int(np.sum(~b_ok)),
        n_finite_pairs=int(both.sum()), mean_diff=mean_diff, ci_low=low, ci_high=high,
        wins=wins, losses=losses, ties=ties, prob=prob, prob_low=prob_low,
        prob_high=prob_high, p_value=p, direction=direction, in_points=bool(percent),
        p_adjusted=p, alpha=alpha, unit=unit, failure=failure, confidence=confidence)
    return correct([result], alpha=alpha)[0]


def _prob_improvement(wins: int, ties: int, n: int,
                      alpha: float) -> tuple[float, float, float]:
    """P(better) = (wins + ties/2)/n and [CP-low(wins), CP-high(wins + ties)] (each side
    at α/2, so the interval covers 1 − α whatever the share of ties)."""
    if n == 0:
        return math.nan, math.nan, math.nan
    k = wins + ties
    # Clopper–Pearson bounds from the beta distribution (as scipy's binomtest "exact")
    low = 0.0 if wins == 0 else float(stats.beta.ppf(alpha / 2, wins, n - wins + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return (wins + ties / 2) / n, low, high


# --------------------------------------------------------------------------------------------
# A study's family of comparisons
# --------------------------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: sorted ascending, p₍ⱼ₎ becomes
    max_{i≤j} min(1, (m − i + 1)·p₍ᵢ₎), m = the number of finite p-values (NaN stays NaN and
    does not count). Equal p-values get equal adjusted values."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return [float(v) for v in out]


def correct(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """The ``comparisons`` of one study with Holm's correction applied across all of them:
    ``p_adjusted``, ``family`` (m, the comparisons with at least one paired seed),
    ``seeds_needed``, the verdict and the statement. A verdict is "better"/"worse" when the
    adjusted p ≤ ``alpha`` (direction from the signed-rank statistic); otherwise "too few
    seeds" below :func:`seeds_needed`, "identical" when every paired seed is a tie, else
    "unclear"."""
    check_number("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    adjusted = holm([c.p_value for c in comparisons])
    m = sum(1 for c in comparisons if math.isfinite(c.p_value))
    needed = seeds_needed(m, alpha)
    out = []
    for c, p_adj in zip(comparisons, adjusted, strict=True):
        verdict: Verdict
        if c.n_pairs == 0:
            verdict = "no data"
        elif p_adj <= alpha and c.direction != 0:
            verdict = "better" if c.direction > 0 else "worse"
        elif c.ties == c.n_pairs:
            verdict = "identical"
        elif c.n_pairs < needed:
            verdict = "too few seeds"
        else:
            verdict = "unclear"
        done = dataclasses.replace(c, p_adjusted=p_adj, family=max(1, m), alpha=alpha,
                                   verdict=verdict, seeds_needed=needed)
        out.append(dataclasses.replace(done, statement=comparison_sentence(done)))
    return out


def pairwise(per_seed: Mapping[str, Mapping[int, float | None]], *, mode: Mode, metric: str,
             percent: bool | None = None) -> list[Comparison]:
    """Every pair of configurations compared (uncorrected), in sorted label order so the result
    does not depend on the order of ``per_seed``."""
    labels = sorted(per_seed)
    return [paired(per_seed[b], per_seed[a], mode=mode, metric=metric, candidate_label=b,
                   baseline_label=a, percent=percent)
            for i, a in enumerate(labels) for b in labels[i + 1:]]


def rank(summaries: Mapping[str, Summary], comparisons: Iterable[Comparison], *,
         mode: Mode) -> list[RankedEntry]:
    """Rank configurations from corrected pairwise ``comparisons`` (:func:`correct`):
    rank = 1 + the number of configurations clearly better than this one. Configurations with
    fewer than two finite values get no rank (None) and come last. Listed by rank, then by
    mean (best first), then by label — a function of the data alone."""
    check_choice("mode", mode, ("max", "min"))
    better_than: dict[str, set[str]] = {label: set() for label in summaries}
    for c in comparisons:
        if c.verdict == "better":
            winner, loser = c.candidate_label, c.baseline_label
        elif c.verdict == "worse":
            winner, loser = c.baseline_label, c.candidate_label
        else:
            continue
        if winner in better_than and loser in better_than:
            better_than[loser].add(winner)
    sign = -1.0 if mode == "max" else 1.0
    entries = []
    for label, s in summaries.items():
        ranked = s.n_finite >= 2
        beats = sum(label in w for w in better_than.values())
        entries.append(RankedEntry(label=label, rank=1 + len(better_than[label]) if ranked
                                   else None, summary=s, beats=beats))

    def key(e: RankedEntry) -> tuple[float, float, str]:
        mean = e.summary.mean if math.isfinite(e.summary.mean) else math.inf * -sign
        return (e.rank if e.rank is not None else math.inf, sign * mean, e.label)

    return sorted(entries, key=key)


def rank_values(per_seed: Mapping[str, Mapping[int, float | None]], *, mode: Mode,
                metric: str = "value", alpha: float = ALPHA,
                confidence: float = 0.95) -> tuple[list[RankedEntry], list[Comparison]]:
    """Summaries, all pairwise comparisons corrected together, and the ranking, for a set of
    configurations on their own: ``(ranking, comparisons)``."""
    comparisons = correct(pairwise(per_seed, mode=mode, metric=metric), alpha=alpha)
    summaries = {label: summarize(v, confidence=confidence) for label, v in per_seed.items()}
    return rank(summaries, comparisons, mode=mode), comparisons


# --------------------------------------------------------------------------------------------
# Time to target, divergence
# --------------------------------------------------------------------------------------------


def to_target(
    values: Mapping[int, float | None] | Sequence[float | None],
    *,
    target: float | None = None,
    metric: str | None = None,
    unit: str = "steps",
    diverged: int = 0,
    confidence: float = 0.95,
) -> TargetSummary:
    """Steps (or seconds: ``unit``) each seed took to reach a target value of a metric; None
    (or NaN/inf) for a seed that never reached it — censored at +∞, not dropped.

    The median is over all seeds; its interval is the distribution-free order-statistic
    interval [x₍ₗ₎, x₍ₙ₋ₗ₊₁₎] with l the largest integer such that P(B ≤ l − 1) ≤ (1 − c)/2
    for B ~ Binomial(n, ½) — coverage ≥ c for any distribution, censoring included (NaN when
    n < 6). ``summary`` (:func:`summarize`) is over the seeds that reached it. ``diverged``
    only enters the sentence.
    """
    _check_confidence(confidence)
    x = _as_array(values)
    x = np.where(np.isfinite(x), x, np.inf)
    n, reached = int(x.size), int(np.isfinite(x).sum())
    ordered = np.sort(x)
    median = _median_with_inf(ordered)
    low = high = math.nan
    if n:
        alpha = 1 - confidence
        cdf = stats.binom.cdf(np.arange(n), n, 0.5)  # P(B ≤ j)
        ok = np.flatnonzero(cdf <= alpha / 2)     # j = l − 1 allowed
        if ok.size:
            l_ = int(ok[-1]) + 1
            low, high = float(ordered[l_ - 1]), float(ordered[n - l_])
    goal = _describe_target(target, metric)
    result = TargetSummary(n=n, reached=reached, values=tuple(float(v) for v in x),
                           median=median, median_low=low, median_high=high,
                           summary=summarize(x[np.isfinite(x)], confidence=confidence),
                           goal=goal, unit=unit, diverged=diverged)
    return dataclasses.replace(result, statement=target_sentence(result))


def _median_with_inf(ordered: np.ndarray) -> float:
    n = ordered.size
    if n == 0:
        return math.nan
    mid = ordered[(n - 1) // 2: n // 2 + 1]
    if not np.isfinite(mid).all():
        return math.inf
    return float(np.mean(mid))


def divergence_count(statuses: Mapping[int, str]) -> int:
    """Number of seeds whose run status is ``"diverged"`` (case-insensitive)."""
    return sum(1 for status in statuses.values() if str(status).strip().lower() == "diverged")


def _describe_target(target: float | None, metric: str | None) -> str:
    if target is None:
        return f"the {metric_words(metric)} target" if metric else "the target"
    if metric is None:
        return f"the target {words.plain(target)}"
    return words.target_words(metric, target)


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> None:
    check_number("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)


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


# --------------------------------------------------------------------------------------------
# A power law on log–log axes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slope:
    """``y ≈ exp(intercept)·x^slope`` fitted on log–log axes over ``n`` points, with the
    Student-t interval ``[ci_low, ci_high]`` of the slope at level ``confidence`` (NaN with
    fewer than three points or a single x)."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95

    def predict(self, x: float) -> float:
        """The fitted ``exp(intercept)·x^slope``."""
        return math.exp(self.intercept) * x**self.slope

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the slope's interval."""
        return self.ci_low <= value <= self.ci_high


def loglog_slope(x: Sequence[float], y: Sequence[float], *,
                 confidence: float = 0.95) -> Slope:
    """Least squares of ln y on ln x: the exponent b of y ≈ c·x^b and its t interval,
    b̂ ± t₍ₙ₋₂₎·SE(b̂) (see the module's definitions). Every x and y must be > 0."""
    _check_confidence(confidence)
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be two 1-D sequences of one length; got {xa.shape} and "
                         f"{ya.shape}")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all() and (xa > 0).all()
            and (ya > 0).all()):
        raise ValueError("x and y must be positive and finite for a log–log fit")
    lx, ly = np.log(xa), np.log(ya)
    n = int(lx.size)
    nan = math.nan
    sxx = float(np.sum((lx - lx.mean()) ** 2)) if n else 0.0
    if n < 2 or sxx == 0.0:
        return Slope(nan, nan, nan, nan, n, confidence)
    b = float(np.sum((lx - lx.mean()) * (ly - ly.mean())) / sxx)
    a = float(ly.mean() - b * lx.mean())
    if n < 3:
        return Slope(b, a, nan, nan, n, confidence)
    resid = ly - (a + b * lx)
    se = math.sqrt(float(np.sum(resid**2)) / (n - 2) / sxx)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 2)) * se
    return Slope(b, a, b - half, b + half, n, confidence)


# --------------------------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------------------------


def comparison_sentence(c: Comparison) -> str:
    """One sentence for a paired comparison: the verdict (after the study's correction), the
    seeds won, the probability of improvement, the mean difference and how many diverged.
    ``c.pair`` names the pairs ("seed", or "(fold, seed) pair")."""
    what = words.metric_words(c.metric)
    cand, base = c.candidate_label, c.baseline_label
    n = c.n_pairs
    pair = c.pair
    if n == 0:
        return (f"{cand} and {base} cannot be compared on {what}: no {pair} was finished by "
                "both")
    scale = 100.0 if c.in_points else 1.0
    unit = " points" if c.in_points else (f" {c.unit}" if c.unit else "")
    trouble = (f"{cand}: {words.failures(c.candidate_failed, n, c.failure)}, "
               f"{base}: {words.failures(c.baseline_failed, n, c.failure)}")
    seeds = f"better on {c.wins} of {words.plural(n, pair)}"
    if c.ties:
        seeds += f" ({c.ties} tied)"
    prob, prob_low, prob_high = (words.fmt(v, 2) for v in (c.prob, c.prob_low, c.prob_high))
    chance = f"P({cand} better) = {prob}, 95% CI [{prob_low}, {prob_high}]"
    if c.n_finite_pairs >= 2:
        diff, low, high = words.estimate(c.mean_diff, c.ci_low, c.ci_high, scale=scale, plus=True)
        level = f"{words.plain(c.confidence * 100)}% CI"
        both = ("" if c.n_finite_pairs == n else
                f" over the {words.plural(c.n_finite_pairs, pair)} both finished")
        size = f"mean difference {diff}{unit}{both}, {level} [{low}, {high}]"
    elif c.n_finite_pairs == 1:
        diff, _, _ = words.estimate(c.mean_diff, scale=scale, plus=True)
        size = f"difference {diff}{unit} on the one {pair} both finished"
    else:
        size = f"no {pair} where both have a finite value"
    test = words.p_value(c.p_value)
    if c.family > 1:
        test += (f"; after Holm's correction over the study's {c.family} comparisons, "
                 f"{words.p_value(c.p_adjusted)}")
    if c.verdict in ("better", "worse"):
        verb = "beats" if c.verdict == "better" else "is worse than"
        return (f"{cand} {verb} {base} on {what} ({test}): {seeds}, {chance}; {size}; "
                f"{trouble}")
    if c.verdict == "too few seeds":
        return (f"{cand} vs {base} on {what}: too few {pair}s to tell — "
                f"{words.plural(n, 'paired ' + pair)}, and a verdict corrected for "
                f"{words.plural(c.family, 'comparison')} needs at least {c.seeds_needed}; so far "
                f"{seeds}, {chance}; {size}; {trouble}")
    if c.verdict == "identical":
        return (f"{cand} and {base} show no difference on {what}: identical on all "
                f"{words.plural(n, pair)}; {trouble}")
    return (f"{cand} and {base} do not differ clearly on {what} ({test}): {seeds}, "
            f"{chance}; {size}; {trouble}")


def target_sentence(t: TargetSummary) -> str:
    """``reached 95% val accuracy on 10 of 10 seeds: median 46 steps, 95% CI [46, 69]
    (0 of 10 diverged)``."""
    trouble = words.failures(t.diverged, t.n)
    if t.reached == 0:
        return f"did not reach {t.goal} on any of {words.plural(t.n, 'seed')} ({trouble})"
    med = words.amount(t.median, t.unit)
    if math.isfinite(t.median_low):
        low = words.amount(t.median_low, t.unit).split()[0]
        high = (words.amount(t.median_high, t.unit).split()[0] if math.isfinite(t.median_high)
                else "not reached")
        ci = f", 95% CI [{low}, {high}]"
    else:
        ci = f" (no 95% interval for a median from fewer than {_MEDIAN_CI_MIN} seeds)"
    median = (f"median {med}{ci}" if math.isfinite(t.median) else
              "median: not reached (fewer than half the seeds got there)")
    return (f"reached {t.goal} on {t.reached} of {words.plural(t.n, 'seed')}: {median} "
            f"({trouble})")


#: the fewest seeds whose order statistics give a 95% interval of a median: 1 − 2/2⁶ ≥ 0.95
_MEDIAN_CI_MIN = 6
