"""Epoch time of ``Trainer.fit`` against two hand-written PyTorch loops, in one run.

Same model, same data, same optimizer algorithm (plain SGD), same batch size:

* ``dataloader``: the textbook loop over ``DataLoader(TensorDataset(X, y), shuffle=True)``;
* ``slicing``: a hand-written loop that indexes device tensors with a fresh permutation;
* ``trainer``: ``optimlab.Trainer.fit`` with its per-step bookkeeping (loss, lr and gradient
  norm recorded every step, NaN check, history) but no metrics or validation, which the hand
  loops do not compute either.

Workloads: the digits MLP (64→128→10, all 1797 samples) and the course's cat-vs-dog network
(1000→100→2, 4096 samples), batch sizes 32, 256 and 1024. Printed: ms per epoch (best of
``--repeats`` runs of ``--epochs`` epochs each), and the ratios trainer/slicing (goal ≤ 1.10) and
dataloader/trainer (how many times faster than the DataLoader loop).

    python benchmarks/epoch.py [--epochs 5] [--repeats 3] [--device cpu]

``--baseline OTHER/src`` instead times the ``trainer`` loop of this checkout against the same
loop of another checkout (say, main), each in its own process, asked in turn for ``--rounds``
measurements of every workload so that a busy moment hits both alike; it prints the best ms
per epoch of each and their ratio (this/baseline: ≤ 1 is as fast or faster):

    git worktree add /tmp/main main   # or: git archive main src | tar -x -C /tmp/main
    python benchmarks/epoch.py --baseline /tmp/main/src
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from optimlab.data import Dataset, load
from optimlab.train import Trainer


def make_model(sizes: tuple[int, int, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    a, b, c = sizes
    return torch.nn.Sequential(torch.nn.Linear(a, b), torch.nn.ReLU(), torch.nn.Linear(b, c))


def dataloader_loop(model, X, y, batch, epochs, lr) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y),
                                         batch_size=batch, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()


def slicing_loop(model, X, y, batch, epochs, lr) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    n = len(X)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(X.device)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()


def trainer_loop(model, X, y, batch, epochs, lr) -> None:
    data = Dataset(X, y, task="multiclass", n_classes=int(y.max()) + 1)
    Trainer(model, optimizer="sgd", lr=lr, metrics=[], device=X.device,
            progress=False).fit(data, epochs=epochs, batch_size=batch)


LOOPS: dict[str, Callable] = {"dataloader": dataloader_loop, "slicing": slicing_loop,
                              "trainer": trainer_loop}


def time_loop(loop, sizes, X, y, batch, epochs, repeats) -> float:
    """Best-of-``repeats`` seconds per epoch."""
    best = float("inf")
    for _ in range(repeats):
        model = make_model(sizes).to(X.device)
        if X.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loop(model, X, y, batch, epochs, 0.01)
        if X.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / epochs)
    return best


def workloads() -> dict[str, tuple[tuple[int, int, int], torch.Tensor, torch.Tensor]]:
    digits = load("digits")
    cats = load("cat_vs_dog", n=4096, seed=0)
    return {
        "digits 64→128→10": ((64, 128, 10), digits.X, digits.y),
        "cat/dog 1000→100→2": ((1000, 100, 2), cats.X, cats.y),
    }


BATCHES = (32, 256, 1024)


def child(args: argparse.Namespace) -> None:
    """Serve timings: read ``workload|batch`` lines, answer best seconds per epoch of the
    trainer loop over ``--repeats`` runs (after one warm-up epoch per workload)."""
    device = torch.device(args.device)
    data = {name: (sizes, X.to(device), y.to(device))
            for name, (sizes, X, y) in workloads().items()}
    warm: set[str] = set()
    print("ready", flush=True)
    for line in sys.stdin:
        name, batch = line.strip().split("|")
        sizes, X, y = data[name]
        if line not in warm:
            warm.add(line)
            trainer_loop(make_model(sizes).to(device), X, y, int(batch), 1, 0.01)
        seconds = time_loop(trainer_loop, sizes, X, y, int(batch), args.epochs, args.repeats)
        print(seconds, flush=True)


def against_baseline(args: argparse.Namespace) -> None:
    """This checkout's trainer loop against another's: one process per checkout, asked in
    turn for each measurement, so that both see the same moments of a busy machine."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = {"this": here, "baseline": str(Path(args.baseline).resolve())}
    procs = {}
    for label, src in trees.items():
        procs[label] = subprocess.Popen(
            [sys.executable, __file__, "--child", "--epochs", str(args.epochs), "--repeats",
             str(args.repeats), "--device", args.device],
            env={**os.environ, "PYTHONPATH": src}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert procs[label].stdout is not None and procs[label].stdout.readline() == "ready\n"
    keys = [f"{name}|{batch}" for name in workloads() for batch in BATCHES]
    best: dict[str, dict[str, float]] = {k: {} for k in trees}
    try:
        for r in range(args.rounds):
            for key in keys:
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for label in order:
                    proc = procs[label]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(key + "\n")
                    proc.stdin.flush()
                    value = float(proc.stdout.readline())
                    best[label][key] = min(value, best[label].get(key, float("inf")))
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads; "
          f"trainer loop, best of {args.rounds} rounds × {args.repeats} × {args.epochs} epochs")
    print(f"this: {trees['this']}\nbaseline: {trees['baseline']}\n")
    header = (f"{'workload':20} {'batch':>5} {'this ms':>8} {'baseline ms':>11} "
              f"{'this/baseline':>13}")
    print(header)
    print("-" * len(header))
    for key in keys:
        name, batch = key.split("|")
        mine, base = best["this"][key], best["baseline"][key]
        print(f"{name:20} {int(batch):5d} {mine * 1e3:8.2f} {base * 1e3:11.2f} "
              f"{mine / base:13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", metavar="SRC",
                        help="the src folder of another checkout: time its trainer loop against "
                             "this one's, in alternating processes")
    parser.add_argument("--rounds", type=int, default=10,
                        help="with --baseline: measurements of each loop, alternating (default 10)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.baseline:
        against_baseline(args)
        return
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"best of {args.repeats} × {args.epochs} epochs\n")
    header = (f"{'workload':20} {'batch':>5} {'dataloader ms':>13} {'slicing ms':>10} "
              f"{'trainer ms':>10} {'trainer/slicing':>15} {'dataloader/trainer':>18}")
    print(header)
    print("-" * len(header))
    for name, (sizes, X, y) in workloads().items():
        X, y = X.to(device), y.to(device)
        for batch in BATCHES:
            for loop in LOOPS.values():  # warm-up: allocator, kernels, imports
                loop(make_model(sizes).to(device), X, y, batch, 1, 0.01)
            # interleave the contenders so that drift in machine speed hits all alike
            t = {k: float("inf") for k in LOOPS}
            for _ in range(2):
                for k, loop in LOOPS.items():
                    t[k] = min(t[k], time_loop(loop, sizes, X, y, batch, args.epochs,
                                               args.repeats))
            print(f"{name:20} {batch:5d} {t['dataloader'] * 1e3:13.1f} "
                  f"{t['slicing'] * 1e3:10.1f} {t['trainer'] * 1e3:10.1f} "
                  f"{t['trainer'] / t['slicing']:15.2f} {t['dataloader'] / t['trainer']:18.2f}")


if __name__ == "__main__":
    main()
