"""Do the lab's statistics say what they claim? Coverage and false-verdict rates, by simulation.

Not a timing: the measurements behind the choices of :mod:`optimlab.lab.stats`, printed against
the peer method they replaced (the BCa bootstrap; a verdict from an uncorrected interval).

1. Coverage of the stated 95% interval of a mean, Student t (``summarize``) vs BCa bootstrap
   (``scipy.stats.bootstrap``), at n = 3 … 30 seeds, for normal data, accuracies on a
   180-example validation set (binomial, on a 1/180 grid) and skewed (lognormal) data.
2. False verdicts when nothing differs: one paired comparison (``paired``), a baseline against
   7 identical configurations (Holm over 7), and all 28 pairs of 8 identical configurations
   (``rank_values``) — the rate of at least one "better"/"worse".

    .venv/bin/python benchmarks/stats_coverage.py            # ~2 minutes
    .venv/bin/python benchmarks/stats_coverage.py --reps 400 # quicker, rougher
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from scipy import stats as sps

from optimlab.lab.stats import correct, paired, rank_values, summarize

N_VAL = 180          # validation examples: accuracies live on a 1/180 grid
TRUE_ACC = 0.93


def draw(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """n per-seed values and their true mean."""
    if kind == "normal":
        return rng.normal(0.9, 0.02, n), 0.9
    if kind == "binomial":
        return rng.binomial(N_VAL, TRUE_ACC, n) / N_VAL, TRUE_ACC
    sigma = 0.5
    return rng.lognormal(0.0, sigma, n), math.exp(sigma**2 / 2)


def bca(x: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((x,), np.mean, n_resamples=1999, method="BCa", rng=rng)
    low, high = res.confidence_interval.low, res.confidence_interval.high
    if not (math.isfinite(low) and math.isfinite(high)):  # all equal: the point
        return float(np.mean(x)), float(np.mean(x))
    return float(low), float(high)


def coverage(reps: int, seed: int = 1) -> None:
    print(f"1. Coverage of the stated 95% interval of a mean ({reps} repetitions; "
          f"Monte-Carlo SE ≈ {math.sqrt(0.95 * 0.05 / reps):.3f})")
    print(f"{'data':>10} {'n':>3} {'Student t':>10} {'BCa':>7}")
    rng = np.random.default_rng(seed)
    for kind in ("normal", "binomial", "lognormal"):
        for n in (3, 5, 10, 20, 30):
            hit_t = hit_b = 0
            for _ in range(reps):
                x, mu = draw(kind, rng, n)
                s = summarize(x)
                hit_t += s.ci_low <= mu <= s.ci_high
                low, high = bca(x, rng)
                hit_b += low <= mu <= high
            print(f"{kind:>10} {n:>3} {hit_t / reps:>10.3f} {hit_b / reps:>7.3f}")


def paired_null(kind: str, rng: np.random.Generator, n: int, k: int) -> list[np.ndarray]:
    """k configurations that do not differ, paired by seed (a shared per-seed effect)."""
    if kind == "normal":
        seed_effect = rng.normal(0.9, 0.02, n)
        return [seed_effect + rng.normal(0, 0.01, n) for _ in range(k)]
    p = np.clip(rng.normal(TRUE_ACC, 0.01, n), 0, 1)
    return [rng.binomial(N_VAL, p) / N_VAL for _ in range(k)]


def false_verdicts(reps: int, seed: int = 2) -> None:
    print(f"\n2. False verdicts when nothing differs ({reps} repetitions)")
    print(f"{'data':>10} {'n':>3} {'1 comparison':>13} {'baseline+7 (Holm)':>18} "
          f"{'28 pairs (Holm)':>16}")
    rng = np.random.default_rng(seed)
    for kind in ("normal", "binomial"):
        for n in (3, 5, 10, 12, 30):
            one = seven = pairs = 0
            for _ in range(reps):
                xs = paired_null(kind, rng, n, 8)
                labels = [f"c{i}" for i in range(8)]
                c = paired(xs[1], xs[0], mode="max", metric="val_accuracy",
                           candidate_label="a", baseline_label="b")
                one += c.significant
                fam = correct([paired(x, xs[0], mode="max", metric="val_accuracy",
                                      candidate_label=lab, baseline_label="base")
                               for lab, x in zip(labels[1:], xs[1:], strict=True)])
                seven += any(f.significant for f in fam)
                _, comps = rank_values(dict(zip(labels, (dict(enumerate(x)) for x in xs),
                                                strict=True)), mode="max")
                pairs += any(f.significant for f in comps)
            print(f"{kind:>10} {n:>3} {one / reps:>13.3f} {seven / reps:>18.3f} "
                  f"{pairs / reps:>16.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    start = time.perf_counter()
    coverage(args.reps)
    false_verdicts(max(100, args.reps // 4))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
