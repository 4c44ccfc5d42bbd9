"""Seeds trained together against one after another, time per epoch, in one run.

The S seeds of one configuration (``Trainer`` objects that differ only in ``seed``) trained

* ``alone``: one ``Trainer.fit`` after another (what the lab did before);
* ``dense``: ``fit_together`` — one stacked model, each Linear one batched product;
* ``vmap``: ``fit_together(dense=False)`` — the general path, ``torch.func.vmap`` over
  ``functional_call``.

Workloads: the digits MLP of ``optimlab compare`` (64→128→10, Adam, batch 64, 1437 training
rows) and the course's cat-vs-dog network (1000→100→1, Adam, batch 64, 3276 of 4096 rows), at
S = 8 and 32 seeds, each without validation or metrics ("train") and with the validation set and the
default metrics every epoch ("val+metrics"). Time per epoch: the sum over the S seeds of each
epoch's recorded time (a stacked epoch records each seed's share of it), the best over the
epochs after the first and over ``--rounds`` rounds; the modes take turns within each round, so
a busy moment of the machine hits them alike (on a shared machine the best is the least
disturbed). One torch thread (as the lab gives small models).

    python benchmarks/seeds.py [--epochs 4] [--rounds 3] [--seeds 8 32] [--device cuda]

``--compare`` instead times ``optimlab compare`` (the default study: 8 optimizers × 11 seeds ×
20 epochs on digits) end to end, with its seeds trained together and with ``--one-at-a-time``,
alternately, ``--compare-rounds`` times each, in fresh stores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from optimlab.data import holdout, load, standardize
from optimlab.train import Trainer, fit_together

MODES = ("alone", "dense", "vmap")


def workloads() -> dict[str, tuple[dict[str, Any], Any]]:
    digits, _ = standardize(holdout(load("digits"), seed=0))
    cats, _ = standardize(holdout(load("cat_vs_dog", n=4096, seed=0), seed=0))
    return {"digits 64→128→10": ({"type": "mlp", "hidden": [128]}, digits),
            "cat/dog 1000→100→1": ({"type": "mlp", "hidden": [100]}, cats)}


def trainers(model: dict[str, Any], seeds: int, metrics: bool,
             device: str = "cpu") -> list[Trainer]:
    return [Trainer(model, optimizer="adam", lr=1e-3, seed=s, progress=False, device=device,
                    metrics=None if metrics else []) for s in range(seeds)]


def epoch_time(mode: str, model: dict[str, Any], split: Any, seeds: int, epochs: int,
               validate: bool, device: str = "cpu") -> float:
    """Seconds per epoch for all ``seeds``: the best of epochs 1.. of the summed records."""
    ts = trainers(model, seeds, validate, device)
    val = split.val if validate else None
    if mode == "alone":
        histories = [t.fit(split.train, val, epochs=epochs, batch_size=64) for t in ts]
    else:
        histories = fit_together(ts, split.train, val, epochs=epochs, batch_size=64,
                                 dense=mode == "dense")
    per_epoch = [sum(h.epochs[e]["time"] for h in histories) for e in range(1, epochs)]
    return min(per_epoch)


def per_epoch_table(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} thread; Adam, "
          "batch 64; "
          f"ms per epoch for all seeds: best of epochs 2..{args.epochs} in "
          f"{args.rounds} rounds (modes alternating)\n")
    header = (f"{'workload':20} {'seeds':>5} {'epoch':>11} {'alone ms':>9} {'dense ms':>9} "
              f"{'vmap ms':>8} {'alone/dense':>11} {'alone/vmap':>10}")
    print(header)
    print("-" * len(header))
    for name, (model, split) in workloads().items():
        for seeds in args.seeds:
            for validate in (False, True):
                best = {m: float("inf") for m in MODES}
                for r in range(args.rounds):
                    order = MODES if r % 2 == 0 else tuple(reversed(MODES))
                    for mode in order:
                        best[mode] = min(best[mode], epoch_time(mode, model, split, seeds,
                                                                args.epochs, validate,
                                                                args.device))
                label = "val+metrics" if validate else "train"
                print(f"{name:20} {seeds:5d} {label:>11} {best['alone'] * 1e3:9.1f} "
                      f"{best['dense'] * 1e3:9.1f} {best['vmap'] * 1e3:8.1f} "
                      f"{best['alone'] / best['dense']:11.2f} "
                      f"{best['alone'] / best['vmap']:10.2f}", flush=True)


def compare_end_to_end(args: argparse.Namespace) -> None:
    """Wall time of ``optimlab compare`` with and without ``--one-at-a-time``, alternating."""
    cli = [sys.executable, "-m", "optimlab", "compare", "--report", ""]
    times: dict[str, list[float]] = {"together": [], "one at a time": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.compare_rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for mode in order:
                db = Path(tmp) / f"{mode.replace(' ', '-')}-{r}.db"
                flags = ["--one-at-a-time"] if mode == "one at a time" else []
                start = time.perf_counter()
                subprocess.run([*cli, "--db", str(db), "--json", *flags], check=True,
                               stdout=subprocess.DEVNULL, env={**os.environ})
                times[mode].append(time.perf_counter() - start)
                print(f"  round {r + 1}: {mode}: {times[mode][-1]:.1f} s", flush=True)
    best = {k: min(v) for k, v in times.items()}
    print(f"\noptimlab compare (8 optimizers × 11 seeds × 20 epochs on digits), best of "
          f"{args.compare_rounds}: together {best['together']:.1f} s, one at a time "
          f"{best['one at a time']:.1f} s, ratio {best['one at a time'] / best['together']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compare", action="store_true",
                        help="time `optimlab compare` end to end instead")
    parser.add_argument("--compare-rounds", type=int, default=2)
    args = parser.parse_args()
    if args.compare:
        compare_end_to_end(args)
    else:
        per_epoch_table(args)


if __name__ == "__main__":
    main()
