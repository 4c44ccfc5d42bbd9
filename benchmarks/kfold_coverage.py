"""What a k-fold study's 95% intervals are worth, by simulation.

Not a timing: the measurement behind the words of :func:`optimlab.lab.answer.kfold_variance`.
A k-fold study summarizes a configuration by the Student-t interval over its k × S (fold, seed)
values (``stats.summarize``), as if they were independent. They are not: the folds share their
training rows and all come from one sample of data. How far off is the interval, as an
interval for what a user wants to know — the accuracy the recipe reaches on new data from the
same source?

Simulated here with a recipe fast enough to repeat thousands of times: scikit-learn's
``SGDClassifier`` (logistic loss, 5 epochs, ``random_state`` = the seed: initial order and
shuffles) on two Gaussian classes in 10 dimensions (means ±0.35 on every axis, unit noise:
Bayes accuracy ≈ 0.87). Each repetition draws a new dataset of ``n`` rows, runs the lab's
design — stratified k-fold (``optimlab.data.kfold``) × S seeds — and asks whether the t interval
covers the *population* accuracy of the recipe trained on ``n·(k−1)/k`` rows (estimated once,
from 400 fresh training sets and seeds, each scored on 20,000 fresh rows). The same is done for
the lab's ordinary design — one fixed holdout split (val = 0.2), S seeds — as the peer.

    .venv/bin/python benchmarks/kfold_coverage.py              # ~2 minutes
    .venv/bin/python benchmarks/kfold_coverage.py --reps 1000  # rounder

Measured (``--reps 400``, population accuracy 0.858 for 364 training rows): 5-fold × 2 seeds
covers 81.8% (mean half-width 0.024, while the mean itself moves by 0.016 from one dataset to
the next), 5-fold × 6 seeds 54.0% (half-width 0.012, the mean still moves by 0.016), a fixed
holdout split × 10 seeds 19.2% (half-width 0.008, the mean moves by 0.034).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from optimlab.data import Dataset, holdout, kfold
from optimlab.lab.stats import summarize

D, SHIFT = 10, 0.35


def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, D)) + np.where(y[:, None] == 1, SHIFT, -SHIFT)
    return x.astype(np.float32), y


def fit_score(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, seed: int) -> float:
    model = SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=seed,
                          learning_rate="constant", eta0=0.05)
    model.fit(x, y)
    return float(model.score(xv, yv))


def population(rng: np.random.Generator, m: int, runs: int = 400) -> float:
    """The recipe's expected accuracy on new data when trained on m rows (fresh sets, seeds)."""
    xt, yt = sample(rng, 20000)
    return float(np.mean([fit_score(*sample(rng, m), xt, yt, int(rng.integers(2**31)))
                          for _ in range(runs)]))


def dataset(x: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(torch.as_tensor(x), torch.as_tensor(y), task="binary", n_classes=2)


def kfold_values(x: np.ndarray, y: np.ndarray, k: int, seeds: int, split_seed: int) -> list[float]:
    ds = dataset(x, y)
    out = []
    for train, val in kfold(ds, k, seed=split_seed):
        for s in range(seeds):
            out.append(fit_score(train.X.numpy(), train.y.numpy(), val.X.numpy(),
                                 val.y.numpy(), s))
    return out


def holdout_values(x: np.ndarray, y: np.ndarray, seeds: int, split_seed: int) -> list[float]:
    parts = holdout(dataset(x, y), val=0.2, test=0.0, seed=split_seed)
    return [fit_score(parts.train.X.numpy(), parts.train.y.numpy(), parts.val.X.numpy(),
                      parts.val.y.numpy(), s) for s in range(seeds)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--n", type=int, default=455, help="rows per dataset (default: the rows "
                                                      "breast_cancer's k-fold example cuts)")
    args = p.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    designs = [("5-fold × 2 seeds (10 values)", "kfold", 5, 2),
               ("5-fold × 6 seeds (30 values)", "kfold", 5, 6),
               ("holdout val 0.2 × 10 seeds", "holdout", 5, 10)]
    truth = {m: population(rng, m) for m in {round(args.n * 4 / 5)}}
    m = round(args.n * 4 / 5)
    print(f"population accuracy of the recipe trained on {m} rows: {truth[m]:.4f}")
    print(f"{args.reps} datasets of {args.n} rows per design\n")
    print(f"{'design':34} {'coverage of 95% t CI':>22} {'mean half-width':>16} "
          f"{'sd of the mean':>15}")
    for name, kind, k, seeds in designs:
        hits, halves, means = 0, [], []
        for _ in range(args.reps):
            x, y = sample(rng, args.n)
            split_seed = int(rng.integers(2**31))
            values = (kfold_values(x, y, k, seeds, split_seed) if kind == "kfold" else
                      holdout_values(x, y, seeds, split_seed))
            s = summarize(values)
            hits += s.ci_low <= truth[m] <= s.ci_high
            halves.append((s.ci_high - s.ci_low) / 2)
            means.append(s.mean)
        print(f"{name:34} {hits / args.reps:>21.1%} {np.mean(halves):>16.4f} "
              f"{np.std(means, ddof=1):>15.4f}")
    print(f"\n{time.perf_counter() - started:.0f} s. 'sd of the mean': how much the design's "
          "mean moves from one dataset to the next — what an interval for new data must "
          "cover; 'mean half-width': what the t interval claims.")


if __name__ == "__main__":
    main()
