"""Statistics across seeds, checked against numpy and scipy called directly, hand computations,
and simulation (coverage and false-verdict rates)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats as sps

from optimlab.lab.stats import (
    Summary,
    correct,
    divergence_count,
    holm,
    paired,
    rank,
    rank_values,
    seeds_needed,
    signed_rank_p,
    summarize,
    to_target,
)
from optimlab.lab.words import estimate, is_proportion_metric, metric_words
from optimlab.train.callbacks.monitoring import metric_mode

MINUS = "\u2212"
VALUES = [0.81, 0.84, 0.79, 0.86, 0.83, 0.80]


def _numbers(text: str) -> list[str]:
    """The numbers written in ``text``, as written."""
    return re.findall(rf"[{MINUS}+-]?\d+(?:\.\d+)?", text)


def _clear_win(mode: str, *, n: int = 8, gap: float = 0.02, seed: int = 3):
    rng = np.random.default_rng(seed)
    base = {s: 0.80 + 0.02 * rng.standard_normal() for s in range(n)}
    step = gap if mode == "max" else -gap
    cand = {s: base[s] + step + 0.002 * rng.standard_normal() for s in range(n)}
    return cand, base


# ------------------------------------------------------------------ summarize


def test_summarize_is_the_student_t_interval():
    s = summarize(VALUES, confidence=0.9)
    x = np.array(VALUES)
    assert s.n == s.n_finite == 6 and s.ci_method == "t"
    assert s.mean == pytest.approx(np.mean(x), abs=1e-15)
    assert s.std == pytest.approx(np.std(x, ddof=1), abs=1e-15)
    assert s.median == pytest.approx(np.median(x), abs=1e-15)
    low, high = sps.t.interval(0.9, 5, loc=np.mean(x), scale=sps.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high), abs=1e-12)


def test_equal_values_give_a_point_interval_never_inverted():
    # defect: BCa on [.95]*3 gave low > high, labelled BCa
    s = summarize([0.95] * 3)
    assert s.ci_method == "t" and s.ci_low <= s.mean <= s.ci_high
    assert s.ci_low == s.ci_high == s.mean


def test_three_values_are_not_bounded_by_min_and_max():
    # defect: BCa on 3 values is [min, max], far too narrow
    s = summarize([0.90, 0.92, 0.94])
    assert s.ci_low < s.min and s.ci_high > s.max
    assert s.ci_high - s.ci_low == pytest.approx(2 * sps.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))


def test_summarize_excludes_and_counts_non_finite():
    s = summarize({0: 0.81, 1: math.nan, 2: 0.84, 3: math.inf, 4: None, 5: 0.79})
    assert (s.n, s.n_finite, s.n_missing) == (6, 3, 3)
    assert s.mean == pytest.approx(np.mean([0.81, 0.84, 0.79]))


def test_fewer_than_two_values_no_interval():
    one = summarize({3: 0.7})
    assert (one.n, one.n_finite, one.mean) == (1, 1, 0.7) and one.ci_method == "none"
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    none = summarize([math.nan, math.nan])
    assert none.n_finite == 0 and math.isnan(none.mean)
    assert math.isnan(summarize([]).mean)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.mean = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="confidence"):
        summarize(VALUES, confidence=95)
    with pytest.raises(ValueError, match="numbers"):
        summarize(["a", 1.0])


# ------------------------------------------------------------------ the exact test


@pytest.mark.parametrize("n", [3, 6, 10, 17])
def test_signed_rank_p_is_scipys_exact_wilcoxon_without_ties(n):
    rng = np.random.default_rng(n)
    d = rng.normal(0.4, 1.0, n)
    p, direction = signed_rank_p(d)
    assert p == pytest.approx(sps.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    w_plus = sps.rankdata(np.abs(d))[d > 0].sum()
    assert direction == int(np.sign(w_plus - n * (n + 1) / 4))


def test_signed_rank_p_with_ties_and_failures_is_the_exact_permutation_p():
    d = np.array([0.7, 0.7, -0.7, 0.2, 0.0, 1.5, np.inf, -np.inf, 0.2])
    p, _ = signed_rank_p(d)
    nz = d[d != 0]
    ranks = sps.rankdata(np.abs(nz))  # inf ties with inf at the top

    def w_plus(signs: np.ndarray) -> float:
        return float(np.sum(ranks[signs > 0]))

    total = ranks.sum()
    observed = abs(w_plus(np.sign(nz)) - total / 2)
    flips = [abs(w_plus(np.array(s)) - total / 2) >= observed - 1e-9
             for s in itertools.product((-1, 1), repeat=nz.size)]
    assert p == pytest.approx(np.mean(flips), abs=1e-12)


def test_ties_on_an_accuracy_grid_are_ties():
    # defect: differences k/180 − j/180 differ in the last bits, so Wilcoxon ranked tied pairs
    # apart (p = 0.75 where the tie-aware p is 1.0)
    base = [150 / 180, 160 / 180, 170 / 180]
    cand = [152 / 180, 162 / 180, 168 / 180]  # +2, +2, −2 examples right
    d = np.subtract(cand, base)
    assert len(set(np.abs(d))) > 1  # floating point sees different sizes
    assert sps.wilcoxon(d).pvalue == 0.75  # what the old test said
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="A",
               baseline_label="B")
    assert c.p_value == 1.0 and (c.wins, c.losses, c.ties) == (2, 1, 0)


def test_holm_matches_a_hand_computation():
    # sorted: 0.005 (×4), 0.01 (×3), 0.03 (×2), 0.04 (×1), running max
    assert holm([0.01, 0.04, 0.03, 0.005, math.nan]) == pytest.approx(
        [0.03, 0.06, 0.06, 0.02, math.nan], nan_ok=True)
    assert holm([0.02, 0.02, 0.5]) == pytest.approx([0.06, 0.06, 0.5])
    assert holm([]) == []


def test_seeds_needed_is_the_smallest_n_with_two_over_two_to_the_n_below_alpha_over_m():
    for m in (1, 7, 14, 28, 42, 120):
        n = seeds_needed(m)
        assert 2 / 2**n <= 0.05 / m < 2 / 2 ** (n - 1)
    assert (seeds_needed(1), seeds_needed(7), seeds_needed(42)) == (6, 9, 11)


# ------------------------------------------------------------------ paired


@pytest.mark.parametrize("mode", ["max", "min"])
def test_paired_numbers_match_numpy_and_scipy(mode):
    rng = np.random.default_rng(0)
    base = {s: float(rng.normal(1.0, 0.1)) for s in range(10)}
    cand = {s: base[s] + float(rng.normal(0.01, 0.05)) for s in range(10)}
    c = paired(cand, base, mode=mode, metric="val_loss", candidate_label="A",
               baseline_label="B")
    d = np.array([cand[s] - base[s] for s in range(10)])
    assert c.p_value == pytest.approx(sps.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    assert c.mean_diff == pytest.approx(d.mean())
    low, high = sps.t.interval(0.95, 9, loc=d.mean(), scale=sps.sem(d))
    assert (c.ci_low, c.ci_high) == pytest.approx((low, high))
    assert c.wins == int(np.sum(d > 0) if mode == "max" else np.sum(d < 0))
    assert c.family == 1 and c.p_adjusted == c.p_value


def test_probability_of_improvement_and_its_clopper_pearson_interval():
    cand = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    base = [0, 1, 2, 3, 4, 5, 6, 7, 9, 11]  # 8 wins, 1 tie, 1 loss
    c = paired(cand, base, mode="max", metric="score", candidate_label="A",
               baseline_label="B")
    assert (c.wins, c.ties, c.losses) == (8, 1, 1)
    assert c.prob == pytest.approx(0.85)
    assert c.prob_low == pytest.approx(sps.binomtest(8, 10).proportion_ci().low)
    assert c.prob_high == pytest.approx(sps.binomtest(9, 10).proportion_ci().high)


def test_a_clear_win_needs_enough_seeds_and_says_so_below():
    cand, base = _clear_win("max", n=8)
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="AdamW",
               baseline_label="SGD")
    assert c.verdict == "better" and c.better is True and c.wins == 8
    assert c.p_value == pytest.approx(2 / 2**8)
    assert c.statement.startswith("AdamW beats SGD on val accuracy (p = 0.0078)")
    assert "better on 8 of 8 seeds" in c.statement and "AdamW: 0 of 8 diverged" in c.statement
    few = paired({s: cand[s] for s in range(3)}, {s: base[s] for s in range(3)}, mode="max",
                 metric="val_accuracy", candidate_label="AdamW", baseline_label="SGD")
    # defect: 3 seeds used to read "Fairly sure" / "beats"; an exact test cannot tell
    assert few.verdict == "too few seeds" and few.better is None
    assert "too few seeds to tell" in few.statement and "needs at least 6" in few.statement
    worse = paired(base, cand, mode="max", metric="val_accuracy", candidate_label="SGD",
                   baseline_label="AdamW")
    assert worse.verdict == "worse" and worse.statement.startswith("SGD is worse than AdamW")


def test_min_mode_lower_is_better():
    cand, base = _clear_win("min")
    c = paired(cand, base, mode="min", metric="val_loss", candidate_label="Adam",
               baseline_label="SGD")
    assert c.mean_diff < 0 and c.verdict == "better" and c.wins == 8
    assert "points" not in c.statement
    assert paired(cand, base, mode="max", metric="val_loss", candidate_label="Adam",
                  baseline_label="SGD").verdict == "worse"


def test_diverged_seeds_count_against_the_candidate():
    # defect: 2 of 5 diverged read "beats B … 3/3 seeds"
    base = {s: 0.90 for s in range(5)}
    cand = {0: 0.95, 1: 0.96, 2: 0.97, 3: math.nan, 4: math.nan}
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="A",
               baseline_label="B")
    assert (c.n_pairs, c.wins, c.losses, c.candidate_failed) == (5, 3, 2, 2)
    assert c.prob == pytest.approx(0.6) and c.verdict != "better"
    assert "better on 3 of 5 seeds" in c.statement and "A: 2 of 5 diverged" in c.statement
    assert "over the 3 seeds both finished" in c.statement
    both = paired({0: math.nan, 1: 0.9}, {0: math.nan, 1: 0.9}, mode="max", metric="acc",
                  candidate_label="A", baseline_label="B")
    assert both.ties == 2 and both.verdict == "identical"


def test_constant_differences_print_few_digits():
    # defect: "2.000000000000 points"
    base = dict(enumerate(VALUES))
    cand = {s: v + 0.02 for s, v in base.items()}
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="A",
               baseline_label="B")
    assert "mean difference +2 points" in c.statement
    assert all(len(x.split(".")[-1]) <= 4 for x in _numbers(c.statement) if "." in x)
    assert estimate(0.02, 0.02 - 1e-16, 0.02 + 1e-16, scale=100) == ("2", "2", "2")


def test_identical_runs_and_no_pairs():
    base = dict(enumerate(VALUES))
    same = paired(base, dict(base), mode="max", metric="val_accuracy", candidate_label="Adam",
                  baseline_label="SGD")
    assert same.p_value == 1.0 and same.verdict == "identical" and same.wins == 0
    assert "no difference" in same.statement
    none = paired({0: 0.9}, {1: 0.8}, mode="max", metric="accuracy", candidate_label="A",
                  baseline_label="B")
    assert none.n_pairs == 0 and none.n_excluded == 2 and none.verdict == "no data"
    assert "cannot be compared" in none.statement
    with pytest.raises(ValueError, match="mode"):
        paired({0: 1.0}, {0: 1.0}, mode="best", metric="m", candidate_label="A",  # type: ignore[arg-type]
               baseline_label="B")


def test_correct_applies_holm_over_the_family():
    cand, base = _clear_win("max", n=8)  # p = 2/256 each
    comps = [paired(cand, base, mode="max", metric="acc", candidate_label=f"c{i}",
                    baseline_label="B") for i in range(3)]
    done = correct(comps)
    assert all(c.family == 3 and c.p_adjusted == pytest.approx(3 * 2 / 256) for c in done)
    assert all(c.verdict == "better" for c in done)
    seven = correct([*comps, *comps, *comps[:1]])  # 7 comparisons: 8 seeds are too few
    assert all(c.verdict == "too few seeds" and c.seeds_needed == 9 for c in seven)
    assert "needs at least 9" in seven[0].statement and "7 comparisons" in seven[0].statement


# ------------------------------------------------------------------ rank


def _values(seed: int = 0, n: int = 12) -> dict[str, dict[int, float]]:
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.01, n)
    return {
        "a": dict(enumerate(0.90 + common + rng.normal(0, 0.002, n))),
        "b": dict(enumerate(0.90 + common + rng.normal(0, 0.002, n))),
        "c": dict(enumerate(0.85 + common + rng.normal(0, 0.002, n))),
        "d": dict(enumerate(0.70 + common + rng.normal(0, 0.002, n))),
    }


def test_rank_counts_the_configurations_clearly_better():
    ranking, comps = rank_values(_values(), mode="max")
    assert [(e.label, e.rank) for e in ranking] == [("a", 1), ("b", 1), ("c", 3), ("d", 4)] \
        or [(e.label, e.rank) for e in ranking] == [("b", 1), ("a", 1), ("c", 3), ("d", 4)]
    assert len(comps) == 6 and all(c.family == 6 for c in comps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_does_not_depend_on_the_order_of_the_configurations(seed):
    values = _values(seed)
    values["a_copy"] = dict(values["a"])  # identical configurations share a rank
    reference, _ = rank_values(values, mode="max")
    ranks = {e.label: e.rank for e in reference}
    assert ranks["a"] == ranks["a_copy"]
    for order in itertools.islice(itertools.permutations(values), 0, None, 17):
        shuffled, _ = rank_values({k: values[k] for k in order}, mode="max")
        assert shuffled == reference


def test_rank_a_chain_is_not_order_dependent():
    # defect: an A–B–C chain of overlapping intervals gave 1, 1, 3, and swapping two equal
    # means gave 1, 1, 1
    def s(mean: float, low: float, high: float) -> Summary:
        return Summary(n=5, n_finite=5, mean=mean, std=0.1, median=mean, ci_low=low,
                       ci_high=high, min=low, max=high)

    summaries = {"A": s(0.90, 0.88, 0.92), "B": s(0.88, 0.86, 0.90), "C": s(0.86, 0.84, 0.88),
                 "D": s(0.88, 0.86, 0.90)}
    ranked = rank(summaries, [], mode="max")  # no verdicts: nothing is clearly better
    assert {e.rank for e in ranked} == {1}
    swapped = rank(dict(reversed(list(summaries.items()))), [], mode="max")
    assert swapped == ranked


def test_two_of_three_diverged_gets_no_rank():
    # defect: a configuration with 2 of 3 seeds diverged ranked first on its one value
    values = {"lucky": {0: 0.99, 1: math.nan, 2: math.nan},
              "steady": {0: 0.90, 1: 0.91, 2: 0.92}}
    ranking, _ = rank_values(values, mode="max")
    assert [(e.label, e.rank) for e in ranking] == [("steady", 1), ("lucky", None)]


# ------------------------------------------------------------------ to_target, divergence


def test_to_target_censors_seeds_that_never_reached():
    t = to_target({0: 400, 1: 420, 2: None, 3: 415, 4: 413, 5: 500, 6: 390}, target=0.95,
                  metric="val_accuracy")
    assert (t.n, t.reached) == (7, 6)
    assert t.median == 415  # over all 7, the censored seed counted as slowest
    # order statistics: n = 7, P(B ≤ 0) = 1/128 ≤ 0.025 < P(B ≤ 1) → [x(1), x(7)]
    assert (t.median_low, t.median_high) == (390, math.inf)
    assert t.statement == ("reached 95% val accuracy on 6 of 7 seeds: median 415 steps, "
                           "95% CI [390, not reached] (0 of 7 diverged)")
    few = to_target([12.34, 13.1, None], target=0.1, metric="val_loss", unit="seconds",
                    diverged=1)
    assert few.median == pytest.approx(13.1) and math.isnan(few.median_low)
    assert "1 of 3 diverged" in few.statement and "fewer than 6 seeds" in few.statement
    none = to_target({0: None, 1: None}, target=0.1, metric="val_loss")
    assert none.reached == 0 and none.median == math.inf
    assert none.statement == "did not reach val loss 0.1 on any of 2 seeds (0 of 2 diverged)"


def test_median_interval_covers_by_simulation():
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(400):
        x = rng.exponential(100.0, 8)
        x[x > 250] = np.nan  # censored
        t = to_target(list(x))
        hits += t.median_low <= 100 * math.log(2) <= t.median_high
    assert hits / 400 >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / 400)


def test_divergence_count():
    assert divergence_count({0: "completed", 1: "diverged", 2: "diverged", 3: "failed"}) == 2


# ------------------------------------------------------------------ names and directions


def test_metric_mode_error_type_metrics_are_lower_is_better():
    # defect: val_error, val_nll and val_perplexity were taken as higher-is-better
    for name in ("val_error", "val_nll", "val_perplexity", "val_loss", "test_mse", "mae",
                 "val_rmse", "train_loss", "ema_val_loss", "top5_error"):
        assert metric_mode(name) == "min", name
    for name in ("val_accuracy", "val_f1_macro", "val_r2", "val_roc_auc", "ema_val_accuracy"):
        assert metric_mode(name) == "max", name
    with pytest.raises(ValueError, match="val_foo"):
        metric_mode("val_foo")


def test_metric_words_and_units():
    assert metric_words("val_roc_auc") == "val ROC AUC"
    assert is_proportion_metric("val_accuracy", [0.8, 0.9])
    assert not is_proportion_metric("val_accuracy", [80.0, 90.0])
    assert not is_proportion_metric("val_loss", [0.3])


# ------------------------------------------------------------------ simulation


N_VAL = 180


def _draw(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    if kind == "normal":
        return rng.normal(0.9, 0.02, n), 0.9
    return rng.binomial(N_VAL, 0.93, n) / N_VAL, 0.93


def _coverage(kind: str, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        x, mu = _draw(kind, rng, n)
        s = summarize(x)
        hits += s.ci_low <= mu <= s.ci_high
    return hits / reps


def _null(kind: str, rng: np.random.Generator, n: int, k: int) -> list[dict[int, float]]:
    """k configurations that do not differ, paired by seed."""
    if kind == "normal":
        seed_effect = rng.normal(0.9, 0.02, n)
        return [dict(enumerate(seed_effect + rng.normal(0, 0.01, n))) for _ in range(k)]
    p = np.clip(rng.normal(0.93, 0.01, n), 0, 1)
    return [dict(enumerate(rng.binomial(N_VAL, p) / N_VAL)) for _ in range(k)]


def _false_verdicts(kind: str, n: int, reps: int, seed: int) -> tuple[float, float, float]:
    """Rates of: a verdict in one comparison; any verdict among a baseline and 7 identical
    configurations (Holm over 7); any verdict among all 28 pairs of 8 (Holm over 28)."""
    rng = np.random.default_rng(seed)
    one = seven = pairs = 0
    for _ in range(reps):
        xs = _null(kind, rng, n, 8)
        one += paired(xs[1], xs[0], mode="max", metric="val_accuracy", candidate_label="a",
                      baseline_label="b").significant
        fam = correct([paired(x, xs[0], mode="max", metric="val_accuracy",
                              candidate_label=f"c{i}", baseline_label="base")
                       for i, x in enumerate(xs[1:])])
        seven += any(c.significant for c in fam)
        _, comps = rank_values({f"c{i}": x for i, x in enumerate(xs)}, mode="max")
        pairs += any(c.significant for c in comps)
    return one / reps, seven / reps, pairs / reps


def _bound(rate: float, reps: int, z: float = 3.0) -> float:
    return rate + z * math.sqrt(rate * (1 - rate) / reps)


@pytest.mark.parametrize("kind", ["normal", "binomial"])
def test_coverage_fast(kind):
    for n in (3, 5, 10):
        cov = _coverage(kind, n, reps=300, seed=n)
        assert abs(cov - 0.95) <= 3.5 * math.sqrt(0.95 * 0.05 / 300), (kind, n, cov)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["normal", "binomial"])
@pytest.mark.parametrize("n", [3, 5, 10])
def test_coverage_slow(kind, n):
    reps = 6000
    cov = _coverage(kind, n, reps=reps, seed=100 + n)
    assert abs(cov - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps) + 0.005, (kind, n, cov)


@pytest.mark.parametrize("kind", ["normal", "binomial"])
def test_false_verdicts_fast(kind):
    reps = 25  # a smoke test of the slow one below
    for n in (3, 12):
        one, seven, pairs = _false_verdicts(kind, n, reps, seed=n)
        for rate in (one, seven, pairs):
            assert rate <= _bound(0.05, reps), (kind, n, one, seven, pairs)
        if n == 3:  # too few seeds for any verdict
            assert one == seven == pairs == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["normal", "binomial"])
@pytest.mark.parametrize("n", [3, 6, 10, 12, 30])
def test_false_verdicts_slow(kind, n):
    reps = 400
    one, seven, pairs = _false_verdicts(kind, n, reps, seed=1000 + n)
    for rate in (one, seven, pairs):
        assert rate <= _bound(0.05, reps), (kind, n, one, seven, pairs)


def test_the_loglog_slope_interval_covers_95_percent_and_recovers_the_exponent() -> None:
    """lr = c·B^b·exp(ε), ε ~ N(0, σ²), at 4 batch sizes × 3 seeds (the shape of
    ``optimlab lr-find --batch-sizes 16 32 64 128 --seeds 3``): the t interval of the slope
    covers the true b in 95% of 4000 simulated sweeps (binomial SE ≈ 0.35%)."""
    from optimlab.lab.stats import loglog_slope

    rng = np.random.default_rng(0)
    x = np.repeat([16.0, 32.0, 64.0, 128.0], 3)
    hits = 0
    reps = 4000
    for _ in range(reps):
        y = 0.01 * (x / 16) ** 0.5 * np.exp(rng.normal(0.0, 0.3, x.size))
        s = loglog_slope(x, y)
        hits += s.covers(0.5)
    assert 0.935 <= hits / reps <= 0.965
    exact = loglog_slope([16, 32, 64, 128], [0.01, 0.02, 0.04, 0.08])  # the notes' table
    assert exact.slope == pytest.approx(1.0) and exact.predict(64) == pytest.approx(0.04)
    assert exact.ci_low == pytest.approx(1.0) and exact.ci_high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        loglog_slope([1, 2, 3], [0.1, -0.2, 0.3])
    assert math.isnan(loglog_slope([8, 8, 8], [0.1, 0.2, 0.3]).slope)
