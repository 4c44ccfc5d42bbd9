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
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    digits = load("digits")
    cats = load("cat_vs_dog", n=4096, seed=0)
    workloads = {
        "digits 64→128→10": ((64, 128, 10), digits.X, digits.y),
        "cat/dog 1000→100→2": ((1000, 100, 2), cats.X, cats.y),
    }
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"best of {args.repeats} × {args.epochs} epochs\n")
    header = (f"{'workload':20} {'batch':>5} {'dataloader ms':>13} {'slicing ms':>10} "
              f"{'trainer ms':>10} {'trainer/slicing':>15} {'dataloader/trainer':>18}")
    print(header)
    print("-" * len(header))
    for name, (sizes, X, y) in workloads.items():
        X, y = X.to(device), y.to(device)
        for batch in (32, 256, 1024):
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
