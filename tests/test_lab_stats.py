"""Statistics across seeds, checked against numpy and scipy called directly."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from scipy import stats as sps

from optimlab.lab.stats import (
    Summary,
    divergence_count,
    is_proportion_metric,
    metric_words,
    paired,
    rank,
    summarize,
    to_target,
)

MINUS = "\u2212"
VALUES = [0.81, 0.84, 0.79, 0.86, 0.83, 0.80]
N_RES = 2000  # fewer resamples keep the suite fast; the comparisons use the same number


def _scipy_ci(x, method, *, seed=0, confidence=0.95, n_resamples=N_RES):
    res = sps.bootstrap((np.asarray(x, dtype=float),), np.mean, n_resamples=n_resamples,
                        confidence_level=confidence, method=method,
                        rng=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


def _numbers(text: str) -> list[str]:
    """The numbers written in ``text``, as written."""
    return re.findall(rf"[{MINUS}+-]?\d+(?:\.\d+)?", text)


def _shows(written: str, value: float) -> bool:
    """``written`` is ``value`` rounded to the decimals it shows."""
    decimals = len(written.split(".")[1]) if "." in written else 0
    number = float(written.replace(MINUS, "-"))
    return abs(number - value) <= 0.5 * 10.0**-decimals + 1e-12


def _clear_win(mode: str, *, n: int = 8, gap: float = 0.02, seed: int = 3):
    rng = np.random.default_rng(seed)
    base = {s: 0.80 + 0.02 * rng.standard_normal() for s in range(n)}
    step = gap if mode == "max" else -gap
    cand = {s: base[s] + step + 0.002 * rng.standard_normal() for s in range(n)}
    return cand, base


# ------------------------------------------------------------------ summarize


def test_summarize_matches_numpy():
    s = summarize(VALUES, n_resamples=N_RES)
    x = np.array(VALUES)
    assert s.n == s.n_finite == 6
    assert s.mean == pytest.approx(np.mean(x), abs=1e-15)
    assert s.std == pytest.approx(np.std(x, ddof=1), abs=1e-15)
    assert s.median == pytest.approx(np.median(x), abs=1e-15)
    assert (s.min, s.max) == (min(VALUES), max(VALUES))


def test_summarize_ci_is_scipy_bca_with_seeded_rng():
    for seed in (0, 7):
        s = summarize(VALUES, n_resamples=N_RES, seed=seed, confidence=0.9)
        low, high = _scipy_ci(VALUES, "BCa", seed=seed, confidence=0.9)
        assert s.ci_method == "BCa"
        assert (s.ci_low, s.ci_high) == (low, high)
        assert s.ci_low < s.mean < s.ci_high
    assert summarize(VALUES, n_resamples=N_RES) == summarize(VALUES, n_resamples=N_RES)


def test_summarize_falls_back_to_percentile_for_equal_values():
    s = summarize([0.5, 0.5, 0.5], n_resamples=N_RES)
    assert s.ci_method == "percentile"
    assert (s.ci_low, s.ci_high) == _scipy_ci([0.5, 0.5, 0.5], "percentile")
    assert s.ci_low == pytest.approx(0.5) and s.ci_high == pytest.approx(0.5)
    assert s.std == 0.0


def test_summarize_excludes_and_counts_non_finite():
    data = {0: 0.81, 1: math.nan, 2: 0.84, 3: math.inf, 4: None, 5: 0.79}
    s = summarize(data, n_resamples=N_RES)
    finite = [0.81, 0.84, 0.79]
    assert (s.n, s.n_finite, s.n_missing) == (6, 3, 3)
    assert s.mean == pytest.approx(np.mean(finite))
    assert s.std == pytest.approx(np.std(finite, ddof=1))
    assert (s.ci_low, s.ci_high) == _scipy_ci(finite, "BCa")


def test_summarize_too_few_values():
    one = summarize({3: 0.7})
    assert (one.n, one.n_finite, one.mean, one.median) == (1, 1, 0.7, 0.7)
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    assert one.ci_method == "none"
    none = summarize([math.nan, math.nan])
    assert (none.n, none.n_finite) == (2, 0)
    assert all(math.isnan(v) for v in (none.mean, none.std, none.median, none.ci_low))
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_summary_is_frozen_and_arguments_checked():
    s = summarize(VALUES, n_resamples=N_RES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mean = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="confidence"):
        summarize(VALUES, confidence=95)
    with pytest.raises(ValueError, match="numbers"):
        summarize(["a", 1.0])


# ------------------------------------------------------------------ paired


@pytest.mark.parametrize("mode", ["max", "min"])
def test_paired_p_value_and_ci_match_scipy(mode):
    rng = np.random.default_rng(0)
    base = {s: float(rng.normal(1.0, 0.1)) for s in range(10)}
    cand = {s: base[s] + float(rng.normal(0.01, 0.05)) for s in range(10)}
    c = paired(cand, base, mode=mode, metric="val_loss", candidate_label="A",
               baseline_label="B", n_resamples=N_RES, seed=5)
    d = np.array([cand[s] - base[s] for s in range(10)])
    assert c.p_value == sps.wilcoxon(d).pvalue
    assert c.mean_diff == pytest.approx(d.mean())
    assert (c.ci_low, c.ci_high) == _scipy_ci(d, "BCa", seed=5)
    assert c.differences == pytest.approx(tuple(d))
    assert c.wins == int(np.sum(d > 0) if mode == "max" else np.sum(d < 0))
    assert c.significant == (c.p_value < 0.05)


def test_paired_identical_runs_no_difference():
    base = dict(enumerate(VALUES))
    c = paired(base, dict(base), mode="max", metric="val_accuracy", candidate_label="Adam",
               baseline_label="SGD", n_resamples=N_RES)
    assert c.p_value == 1.0 and c.mean_diff == 0.0
    assert c.better is None and c.significant is False and c.wins == 0
    assert "no difference" in c.statement


def test_paired_clear_win_max_mode():
    cand, base = _clear_win("max")
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="AdamW",
               baseline_label="SGD", n_resamples=N_RES)
    assert c.better is True and c.significant and c.wins == 8 and c.n_pairs == 8
    assert c.mean_diff == pytest.approx(0.02, abs=0.003)
    assert c.statement.startswith("AdamW beats SGD on val accuracy by ")
    amount, level, low, high = _numbers(c.statement)[:4]
    assert "points" in c.statement and level == "95"
    assert _shows(amount, 100 * c.mean_diff)  # percentage points
    assert _shows(low, 100 * c.ci_low) and _shows(high, 100 * c.ci_high)
    assert "p = 0.0078" in c.statement and c.statement.endswith("8/8 seeds")
    # the other way round: the candidate is clearly worse
    w = paired(base, cand, mode="max", metric="val_accuracy", candidate_label="SGD",
               baseline_label="AdamW", n_resamples=N_RES)
    assert w.better is False and w.wins == 0
    assert w.statement.startswith("SGD is worse than AdamW on val accuracy by ")
    assert w.statement.endswith("0/8 seeds")


def test_paired_clear_win_min_mode_lower_is_better():
    cand, base = _clear_win("min")
    c = paired(cand, base, mode="min", metric="val_loss", candidate_label="Adam",
               baseline_label="SGD", n_resamples=N_RES)
    assert c.mean_diff < 0 and c.ci_high < 0
    assert c.better is True and c.wins == 8
    assert c.statement.startswith("Adam beats SGD on val loss by ")
    assert "points" not in c.statement  # a loss stays in its own units
    amount, _, low, high = _numbers(c.statement)[:4]
    # amounts are the improvement (baseline − candidate), positive
    assert _shows(amount, -c.mean_diff)
    assert _shows(low, -c.ci_high) and _shows(high, -c.ci_low)
    # the same numbers read as "max" make the candidate worse
    w = paired(cand, base, mode="max", metric="val_loss", candidate_label="Adam",
               baseline_label="SGD", n_resamples=N_RES)
    assert w.better is False and w.wins == 0


def test_paired_unclear_statement_uses_minus_sign():
    base = {0: 0.500, 1: 0.520, 2: 0.510}
    cand = {0: 0.497, 1: 0.530, 2: 0.495}
    c = paired(cand, base, mode="min", metric="val_loss", candidate_label="Adam",
               baseline_label="SGD", n_resamples=N_RES)
    assert c.better is None and c.wins == 2
    assert c.statement.startswith("Adam and SGD do not differ clearly on val loss: difference ")
    assert f"difference {MINUS}" in c.statement and "-" not in c.statement
    assert f"[{MINUS}" in c.statement
    assert c.p_value == sps.wilcoxon([cand[s] - base[s] for s in range(3)]).pvalue == 0.75
    assert "p = 0.75," in c.statement and c.statement.endswith("2/3 seeds")
    diff, _, low, high = _numbers(c.statement)[:4]
    assert _shows(diff, c.mean_diff) and float(diff.replace(MINUS, "-")) != 0
    assert _shows(low, c.ci_low) and _shows(high, c.ci_high)


def test_paired_ignores_and_counts_unpaired_seeds():
    cand, base = _clear_win("max")
    cand[100] = 0.99          # only in the candidate
    base[200] = 0.10          # only in the baseline
    cand[0] = math.nan        # diverged in the candidate
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="A",
               baseline_label="B", n_resamples=N_RES)
    assert c.n_pairs == 7 and c.n_excluded == 3
    assert c.seeds == tuple(range(1, 8))
    d = [cand[s] - base[s] for s in range(1, 8)]
    assert c.p_value == sps.wilcoxon(d).pvalue
    assert c.statement.endswith("7/7 seeds")


def test_paired_too_few_pairs():
    one = paired({0: 0.9, 1: 0.8}, {0: 0.85}, mode="max", metric="accuracy",
                 candidate_label="A", baseline_label="B")
    assert one.n_pairs == 1 and math.isnan(one.p_value) and one.better is None
    assert "cannot be compared" in one.statement and "difference +5.00 points" in one.statement
    zero = paired({0: 0.9}, {1: 0.8}, mode="max", metric="accuracy", candidate_label="A",
                  baseline_label="B")
    assert zero.n_pairs == 0 and zero.n_excluded == 2 and math.isnan(zero.mean_diff)
    with pytest.raises(ValueError, match="mode"):
        paired({0: 1.0}, {0: 1.0}, mode="best", metric="m", candidate_label="A",  # type: ignore[arg-type]
               baseline_label="B")


# ------------------------------------------------------------------ rank


def _s(mean, low, high, n=5):
    return Summary(n=n, n_finite=n, mean=mean, std=0.1, median=mean, ci_low=low, ci_high=high,
                   min=low, max=high)


def test_rank_tiers_by_overlap_with_the_tier_head():
    summaries = {
        "b": _s(0.88, 0.86, 0.90),   # overlaps a's interval → tier 1
        "a": _s(0.90, 0.89, 0.91),
        "c": _s(0.85, 0.84, 0.885),  # overlaps b but not the tier head a → new tier at 3
        "d": _s(0.84, 0.83, 0.86),   # overlaps c (the head of tier 3)
        "e": _s(0.70, 0.65, 0.75),   # alone
        "f": _s(math.nan, math.nan, math.nan, n=5),
    }
    ranked = rank(summaries, mode="max")
    assert [(r.label, r.rank) for r in ranked] == [
        ("a", 1), ("b", 1), ("c", 3), ("d", 3), ("e", 5), ("f", 6)]
    assert ranked[0].summary is summaries["a"]


def test_rank_min_mode_nan_last_and_point_intervals():
    summaries = {
        "nan1": _s(math.nan, math.nan, math.nan),
        "high": _s(0.50, 0.45, 0.55),
        "low": _s(0.20, 0.18, 0.22),
        "nan2": _s(math.nan, math.nan, math.nan),
        "single": Summary(n=1, n_finite=1, mean=0.21, std=math.nan, median=0.21,
                          ci_low=math.nan, ci_high=math.nan, min=0.21, max=0.21),
        "apart": Summary(n=1, n_finite=1, mean=0.30, std=math.nan, median=0.30,
                         ci_low=math.nan, ci_high=math.nan, min=0.30, max=0.30),
    }
    ranked = rank(summaries, mode="min")
    assert [(r.label, r.rank) for r in ranked] == [
        ("low", 1), ("single", 1), ("apart", 3), ("high", 4), ("nan1", 5), ("nan2", 5)]


def test_rank_from_real_summaries():
    good = summarize([0.90, 0.91, 0.92, 0.90, 0.91], n_resamples=N_RES)
    same = summarize([0.905, 0.915, 0.91, 0.90, 0.92], n_resamples=N_RES)
    bad = summarize([0.80, 0.81, 0.82, 0.80, 0.81], n_resamples=N_RES)
    ranked = rank({"bad": bad, "same": same, "good": good}, mode="max")
    assert [r.rank for r in ranked] == [1, 1, 3]
    assert ranked[-1].label == "bad"
    assert rank({}, mode="max") == []


# ------------------------------------------------------------------ to_target, divergence


def test_to_target_counts_and_mean():
    t = to_target({0: 400, 1: 420, 2: None, 3: 415, 4: 413}, target=0.95,
                  metric="val_accuracy", n_resamples=N_RES)
    assert (t.n, t.reached) == (5, 4)
    assert t.summary.n == 4 and t.summary.mean == pytest.approx(np.mean([400, 420, 415, 413]))
    assert t.statement == "reached 95% val accuracy in 412 steps on average (4/5 seeds)"


def test_to_target_other_statements():
    none = to_target({0: None, 1: None}, target=0.1, metric="val_loss")
    assert none.reached == 0 and math.isnan(none.summary.mean)
    assert none.statement == "did not reach val loss 0.1 on any seed (0/2 seeds)"
    secs = to_target([12.34, 13.1, math.nan], target=0.1, metric="val_loss", unit="seconds",
                     n_resamples=N_RES)
    assert secs.statement == "reached val loss 0.1 in 12.7 seconds on average (2/3 seeds)"


def test_divergence_count():
    assert divergence_count({0: "completed", 1: "diverged", 2: "diverged", 3: "failed"}) == 2
    assert divergence_count({}) == 0


# ------------------------------------------------------------------ names and units


def test_metric_words_and_units():
    assert metric_words("val_accuracy") == "val accuracy"
    assert metric_words("val_roc_auc") == "val ROC AUC"
    assert metric_words("train_loss") == "train loss"
    assert is_proportion_metric("val_accuracy", [0.8, 0.9])
    assert is_proportion_metric("f1_macro", [0.5]) and is_proportion_metric("val_r2", [0.3])
    assert not is_proportion_metric("val_accuracy", [80.0, 90.0])  # already in percent
    assert not is_proportion_metric("val_r2", [-0.4, 0.2])
    assert not is_proportion_metric("val_loss", [0.3])


def test_accuracy_in_percent_is_left_in_its_units():
    cand, base = _clear_win("max")
    cand = {s: 100 * v for s, v in cand.items()}
    base = {s: 100 * v for s, v in base.items()}
    c = paired(cand, base, mode="max", metric="val_accuracy", candidate_label="A",
               baseline_label="B", n_resamples=N_RES)
    assert c.better is True and "points" not in c.statement
    assert _shows(_numbers(c.statement)[0], c.mean_diff)
