"""Time of one optimizer step: optimlab against torch.optim on the same tensors, in one run.

For each named optimizer: 10M float32 parameters in 100 tensors (gradients fixed), the median
time of one ``step()`` for optimlab, torch's foreach path and torch's fastest path (fused where
torch has it for the algorithm, else foreach). Printed as ratios (optimlab / torch; < 1 means
optimlab is faster) and as the fraction of this machine's memory-copy bandwidth that the step
reaches given the bytes the algorithm must move (e.g. Adam reads p, g, m, v and writes p, m, v:
28 bytes per float32 parameter).

    python benchmarks/optim_step.py [--params 10_000_000] [--tensors 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

import optimlab.optim as oo

# name: (optimlab factory, torch factory or None, bytes moved per parameter)
CASES: dict[str, tuple[Callable, Callable | None, int]] = {
    "sgd": (lambda p: oo.sgd(p, lr=0.01),
            lambda p, **m: torch.optim.SGD(p, lr=0.01, **m), 12),
    "momentum": (lambda p: oo.momentum(p, lr=0.01, momentum=0.9),
                 lambda p, **m: torch.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.9, **m),
                 20),
    "nesterov": (lambda p: oo.nesterov(p, lr=0.01, momentum=0.9, form="heavy_ball"),
                 lambda p, **m: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, **m),
                 20),
    "adagrad": (lambda p: oo.adagrad(p, lr=0.01),
                lambda p, **m: torch.optim.Adagrad(p, lr=0.01, **m), 20),
    "rmsprop": (lambda p: oo.rmsprop(p, lr=0.01),
                lambda p, **m: torch.optim.RMSprop(p, lr=0.01, **m), 20),
    "adam": (lambda p: oo.adam(p, lr=1e-3),
             lambda p, **m: torch.optim.Adam(p, lr=1e-3, **m), 28),
    "amsgrad": (lambda p: oo.amsgrad(p, lr=1e-3),
                lambda p, **m: torch.optim.Adam(p, lr=1e-3, amsgrad=True, **m), 36),
    "adamw": (lambda p: oo.adamw(p, lr=1e-3, decay_mask="all"),
              lambda p, **m: torch.optim.AdamW(p, lr=1e-3, **m), 28),
    "nadam": (lambda p: oo.nadam(p, lr=1e-3),
              lambda p, **m: torch.optim.NAdam(p, lr=1e-3, **m), 28),
    "adamax": (lambda p: oo.adamax(p, lr=1e-3),
               lambda p, **m: torch.optim.Adamax(p, lr=1e-3, **m), 28),
    "lion": (lambda p: oo.lion(p, lr=1e-4), None, 20),
}


def make_params(n: int, tensors: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    size = n // tensors
    params = [torch.randn(size, generator=gen).requires_grad_() for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=gen) * 1e-3
    return params


def time_steps(opt: torch.optim.Optimizer, steps: int) -> float:
    """Seconds per step, median over ``steps`` single-step timings."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth(nbytes: int, repeats: int) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write counted), median of ``repeats``."""
    src = torch.randn(nbytes // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * 4 / statistics.median(times)


def torch_variants(factory: Callable,
                   params: list[torch.Tensor]) -> dict[str, torch.optim.Optimizer]:
    out = {"foreach": factory(params, foreach=True)}
    try:
        fused = factory(params, fused=True)
        fused.step()  # some algorithms accept fused=True only to fail at the first step
        out["fused"] = fused
    except (RuntimeError, TypeError, ValueError):
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds; each contender's best round median is kept")
    parser.add_argument("--only", nargs="*", default=None, help="optimizer names to run")
    args = parser.parse_args()

    bandwidth = copy_bandwidth(args.params * 4, 9)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    print(f"{args.params / 1e6:.0f}M float32 parameters in {args.tensors} tensors; "
          f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; best of {args.rounds} interleaved rounds, "
          f"median of {args.repeats} steps each\n")
    header = (f"{'optimizer':10} {'optimlab ms':>11} {'foreach ms':>10} {'fastest ms':>10} "
              f"{'mode':>7} {'vs foreach':>10} {'vs fastest':>10} {'B/param':>7} "
              f"{'%bw ours':>8} {'%bw torch':>9}")
    print(header)
    print("-" * len(header))
    for name, (ours_factory, torch_factory, bytes_per_param) in CASES.items():
        if args.only and name not in args.only:
            continue
        params = make_params(args.params, args.tensors)
        ours = ours_factory(params)
        peers = torch_variants(torch_factory, params) if torch_factory else {}
        for opt in (ours, *peers.values()):  # warm up: state allocation, first-step paths
            opt.step()
            opt.step()
        # interleave rounds so that drift in the machine's speed hits every contender alike
        t_ours, t_peer = [], {k: [] for k in peers}
        for _ in range(args.rounds):
            t_ours.append(time_steps(ours, args.repeats))
            for k, opt in peers.items():
                t_peer[k].append(time_steps(opt, args.repeats))
        ours_s = min(t_ours)
        peer_s = {k: min(v) for k, v in t_peer.items()}
        moved = bytes_per_param * args.params
        pct_ours = 100 * moved / ours_s / bandwidth
        if peers:
            fastest = min(peer_s, key=peer_s.get)
            print(f"{name:10} {ours_s * 1e3:11.1f} {peer_s['foreach'] * 1e3:10.1f} "
                  f"{peer_s[fastest] * 1e3:10.1f} {fastest:>7} "
                  f"{ours_s / peer_s['foreach']:10.2f} {ours_s / peer_s[fastest]:10.2f} "
                  f"{bytes_per_param:7d} {pct_ours:8.0f} "
                  f"{100 * moved / peer_s[fastest] / bandwidth:9.0f}")
        else:
            print(f"{name:10} {ours_s * 1e3:11.1f} {'—':>10} {'—':>10} {'none':>7} "
                  f"{'—':>10} {'—':>10} {bytes_per_param:7d} {pct_ours:8.0f} {'—':>9}")
        del params, ours, peers
    print("\nratios are optimlab time / torch time: below 1.00 optimlab is faster. "
          "torch has no Lion.")


if __name__ == "__main__":
    main()
