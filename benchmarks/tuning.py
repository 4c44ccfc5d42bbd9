"""Search strategies side by side: random search, TPE, and TPE with Hyperband, on one task.

The task is the digits MLP space of ``examples/tuning/search.toml`` (hidden layers 1–3 with
16–256 units each, activation, initialization, optimizer, learning rate, batch size; 27 epochs
per trial), searched with ``optimlab.tune.search`` — the tool's own code path, store included —
``--trials`` trials (30) for each of ``--seeds`` sampler seeds (5: 0, 1, …), every trial
trained on seed 0. For each strategy it prints, in one table from one run:

* the mean (± sd over the search seeds) of the best final validation accuracy among the first
  10, 20 and 30 trials (complete trials only: a pruned trial's value is after fewer epochs);
* the epochs each search trained (mean over the seeds);
* for TPE + Hyperband, the epochs it had trained when it first matched random search's
  30-trial best of the same seed, as a share of the epochs random search trained (median
  over seeds; "never" when it did not within its trials).

Goals (issue 9): TPE ≥ random at 30 trials; TPE + Hyperband reaches random's 30-trial best
with ≤ 50% of random's epochs. Both are printed as measured, met or not.

    OMP_NUM_THREADS=1 python benchmarks/tuning.py [--trials 30] [--seeds 5] [--epochs 27]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import torch

from optimlab.tune import search

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tuning" / "search.toml"
STRATEGIES = {"random": ("random", "none"), "tpe": ("tpe", "none"),
              "tpe + hyperband": ("tpe", "hyperband")}


def run(strategy: str, seed: int, trials: int, epochs: int, folder: Path) -> list:
    sampler, pruner = STRATEGIES[strategy]
    spec = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    spec["name"] = f"{strategy} {seed}"
    spec["train"]["epochs"] = epochs
    spec["tune"] = {"trials": trials, "sampler": sampler, "pruner": pruner, "seed": seed,
                    "confirm": 0}
    out = search(spec=spec, db=folder / f"{sampler}-{pruner}-{seed}.db", threads=1,
                 on_failure=None, on_warning=None)
    return out.trials


def best_after(trials: list, k: int) -> float:
    values = [t.value for t in trials[:k] if t.state == "complete" and t.value is not None
              and math.isfinite(t.value)]
    return max(values) if values else math.nan


def trained(t: object) -> int:
    return 0 if "same_as" in t.user_attrs else int(t.epochs or 0)  # type: ignore[attr-defined]


def epochs_to_reach(trials: list, goal: float) -> float:
    """Epochs trained (trial by trial) until a complete trial reaches ``goal``."""
    total = 0
    for t in trials:
        total += trained(t)
        if t.state == "complete" and t.value is not None and t.value >= goal:
            return float(total)
    return math.inf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=27)
    args = parser.parse_args()
    torch.set_num_threads(1)
    marks = [k for k in (10, 20, 30) if k <= args.trials] or [args.trials]
    results: dict[str, list[list]] = {s: [] for s in STRATEGIES}
    seconds: dict[str, float] = {s: 0.0 for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):  # interleaved: the machine's load hits every strategy
            for strategy in STRATEGIES:
                started = time.perf_counter()
                trials = run(strategy, seed, args.trials, args.epochs, Path(tmp))
                seconds[strategy] += time.perf_counter() - started
                results[strategy].append(trials)
                print(f"  {strategy}, search seed {seed}: best "
                      f"{best_after(trials, args.trials):.4f}, "
                      f"{sum(trained(t) for t in trials)} epochs, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    def mean_sd(values: list[float]) -> str:
        finite = [v * 100 for v in values if math.isfinite(v)]
        if not finite:
            return "—"
        sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
        return f"{statistics.mean(finite):.1f} ± {sd:.1f}"

    print(f"\ndigits MLP space ({EXAMPLE.relative_to(ROOT)}), {args.trials} trials × "
          f"{args.seeds} search seeds, {args.epochs} epochs per full trial; best final val "
          "accuracy (%) among the first k trials, mean ± sd over the search seeds\n")
    head = " | ".join(f"best after {k}" for k in marks)
    print(f"| strategy | {head} | epochs trained (mean) | time (s, all seeds) |")
    print("|---|" + "---:|" * (len(marks) + 2))
    for strategy, runs in results.items():
        cells = " | ".join(mean_sd([best_after(r, k) for r in runs]) for k in marks)
        epochs = statistics.mean(sum(trained(t) for t in r) for r in runs)
        print(f"| {strategy} | {cells} | {epochs:.0f} | {seconds[strategy]:.0f} |")
    last = marks[-1]
    random_best = [best_after(r, last) for r in results["random"]]
    tpe_best = [best_after(r, last) for r in results["tpe"]]
    random_epochs = [sum(trained(t) for t in r) for r in results["random"]]
    shares = [epochs_to_reach(hb, goal) / full for hb, goal, full in
              zip(results["tpe + hyperband"], random_best, random_epochs, strict=True)]
    reached = [s for s in shares if math.isfinite(s)]
    wins = sum(t >= r for t, r in zip(tpe_best, random_best, strict=True))
    print(f"\nTPE ≥ random at {last} trials: mean {statistics.mean(tpe_best) * 100:.2f} vs "
          f"{statistics.mean(random_best) * 100:.2f} "
          f"({'met' if statistics.mean(tpe_best) >= statistics.mean(random_best) else 'NOT met'}"
          f"; TPE ≥ random on {wins} of {len(tpe_best)} search seeds)")
    median = statistics.median(shares) if shares else math.inf
    shown = ", ".join("never" if not math.isfinite(s) else f"{s:.0%}" for s in shares)
    print(f"TPE + Hyperband reaches random's {last}-trial best with ≤ 50% of random's epochs: "
          f"median share {'never' if not math.isfinite(median) else f'{median:.0%}'} "
          f"({'met' if median <= 0.5 else 'NOT met'}; per search seed: {shown}; reached on "
          f"{len(reached)} of {len(shares)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
