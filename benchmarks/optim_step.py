"""Time of one optimizer step: optimlab (eager and fused) against torch.optim, in one run.

For each named optimizer: 10M float32 parameters in 100 tensors (gradients fixed), the time of
one ``step()`` for optimlab's eager chain (``fused=False``), optimlab's fused step
(``fused=True``: torch's own fused kernel where the chain is exactly torch's algorithm, else one
compiled pass per tensor), the compiled pass even where torch has a kernel ("compiled"), torch's
foreach path and torch's fastest path (fused where torch has it for the algorithm, else foreach).

The reference is this machine's copy bandwidth, measured in every round beside the optimizers,
so that a busy moment cannot skew every row. A copy ``dst.copy_(src)`` moves 12 bytes per
float32 on a CPU: it reads src, and writing dst reads each line of dst first (8 on a GPU, whose
writes do not read; ``--device cuda`` waits for the device around every timed call). An
optimizer step moves the bytes it must read and write, e.g. Adam reads p, g, m, v and writes
p, m, v: 28 bytes per parameter (writing a buffer it has just read costs no extra read). "bw"
is that traffic over the step's time, as a fraction of the copy's.

Each contender runs ``--repeats`` steps per round (median kept); rounds interleave every
contender and the copy; the best round of each is kept (the machine is shared and noisy).

    python benchmarks/optim_step.py [--params 10_000_000] [--tensors 100] [--rounds 7]
    python benchmarks/optim_step.py --small --repeats 200   # the lab's small MLP: the rule
    python benchmarks/optim_step.py --device cuda --params 1_000_000_000 --tensors 1
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable

import torch

import optimlab.optim as oo
from optimlab.optim.fused import kernel_name

# name: (optimlab factory, torch factory or None, bytes moved per parameter)
CASES: dict[str, tuple[Callable, Callable | None, int]] = {
    "sgd": (lambda p, f: oo.sgd(p, lr=0.01, fused=f),
            lambda p, **m: torch.optim.SGD(p, lr=0.01, **m), 12),
    "momentum": (lambda p, f: oo.momentum(p, lr=0.01, momentum=0.9, form="heavy_ball", fused=f),
                 lambda p, **m: torch.optim.SGD(p, lr=0.01, momentum=0.9, **m), 20),
    "nesterov": (lambda p, f: oo.nesterov(p, lr=0.01, momentum=0.9, form="heavy_ball", fused=f),
                 lambda p, **m: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, **m),
                 20),
    "adagrad": (lambda p, f: oo.adagrad(p, lr=0.01, fused=f),
                lambda p, **m: torch.optim.Adagrad(p, lr=0.01, **m), 20),
    "rmsprop": (lambda p, f: oo.rmsprop(p, lr=0.01, fused=f),
                lambda p, **m: torch.optim.RMSprop(p, lr=0.01, **m), 20),
    "adam": (lambda p, f: oo.adam(p, lr=1e-3, fused=f),
             lambda p, **m: torch.optim.Adam(p, lr=1e-3, **m), 28),
    "amsgrad": (lambda p, f: oo.amsgrad(p, lr=1e-3, fused=f),
                lambda p, **m: torch.optim.Adam(p, lr=1e-3, amsgrad=True, **m), 36),
    "adamw": (lambda p, f: oo.adamw(p, lr=1e-3, decay_mask="all", fused=f),
              lambda p, **m: torch.optim.AdamW(p, lr=1e-3, **m), 28),
    "nadam": (lambda p, f: oo.nadam(p, lr=1e-3, fused=f),
              lambda p, **m: torch.optim.NAdam(p, lr=1e-3, **m), 28),
    "adamax": (lambda p, f: oo.adamax(p, lr=1e-3, fused=f),
               lambda p, **m: torch.optim.Adamax(p, lr=1e-3, **m), 28),
    "lion": (lambda p, f: oo.lion(p, lr=1e-4, fused=f), None, 20),
}


def make_params(n: int, tensors: int, device: str = "cpu") -> list[torch.Tensor]:
    gen = torch.Generator(device).manual_seed(0)
    size = n // tensors
    params = [torch.randn(size, generator=gen, device=device).requires_grad_()
              for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(size, generator=gen, device=device) * 1e-3
    return params


def digits_mlp_params(copies: int) -> list[torch.Tensor]:
    """The tensors of the lab's digits MLP (64→128→10: 9,610 parameters in 4 tensors), or of
    ``copies`` of it stacked (seeds trained together), gradients fixed."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(128, 64), (128,), (10, 128), (10,)]
    params = [torch.randn(*((copies,) if copies > 1 else ()), *s, generator=gen).requires_grad_()
              for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    return params


def small_table(args: argparse.Namespace) -> None:
    """The rule ``fused=None`` follows on small models: the eager chain, the default step and
    torch's kernel (``fused=True``), µs per step, interleaved rounds, best round kept."""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; the digits MLP "
          f"(9,610 parameters in 4 tensors) alone and 8 copies stacked; µs per step, best of "
          f"{args.rounds} interleaved rounds, median of {args.repeats} steps each\n")
    header = (f"{'optimizer':10} {'copies':>6} {'eager':>7} {'default':>8} {'kernel':>7} "
              f"{'default/eager':>13}")
    print(header)
    print("-" * len(header))
    for name, (ours_factory, _, _) in CASES.items():
        if args.only and name not in args.only:
            continue
        for copies in (1, 8):
            params = digits_mlp_params(copies)
            opts = {"eager": ours_factory(params, False), "default": ours_factory(params, None),
                    "kernel": ours_factory(params, True)}
            for opt in opts.values():
                opt.copies = copies  # as the lab's stacked optimizer: the rule sees one copy
            contenders = {k: opt.step for k, opt in opts.items()}
            for step in contenders.values():
                for _ in range(10):
                    step()
            best = {k: float("inf") for k in contenders}
            for _ in range(args.rounds):
                for k, step in contenders.items():
                    best[k] = min(best[k], median_time(step, args.repeats))
            us = {k: v * 1e6 for k, v in best.items()}
            print(f"{name:10} {copies:6d} {us['eager']:7.0f} {us['default']:8.0f} "
                  f"{us['kernel']:7.0f} {best['default'] / best['eager']:13.2f}", flush=True)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Seconds per call, median over ``repeats`` single calls (on a GPU each call is waited
    for: the device's time, not the launch's)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=7,
                        help="interleaved rounds; each contender's best round median is kept")
    parser.add_argument("--only", nargs="*", default=None, help="optimizer names to run")
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda (the GPU goals: --params 1_000_000_000 --tensors 1, "
                        "and --params 100_000_000 --tensors 200)")
    parser.add_argument("--small", action="store_true",
                        help="the lab's digits MLP instead (alone and 8 stacked): eager, "
                        "default and torch's kernel, µs per step")
    args = parser.parse_args()
    if args.small:
        small_table(args)
        return

    where = (torch.cuda.get_device_name() if args.device.startswith("cuda") else
             platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}")
    print(f"{args.params / 1e6:.0f}M float32 parameters in {args.tensors} tensors; best of "
          f"{args.rounds} interleaved rounds (copy bandwidth measured in each), median of "
          f"{args.repeats} steps each\n")
    header = (f"{'optimizer':10} {'kernel':>14} {'eager':>6} {'fused':>6} {'compiled':>8} "
              f"{'torch':>6} {'mode':>7} {'fused/torch':>11} {'compiled/torch':>14} {'B/p':>4} "
              f"{'bw eager':>8} {'bw fused':>8} {'bw comp.':>8} {'bw torch':>8} {'GB/s':>5}")
    print(header)
    print("-" * len(header))
    # a CPU copy reads each line of dst before writing it (12 bytes a float); a GPU's does not
    copy_bytes = 8 if args.device.startswith("cuda") else 12
    src = torch.randn(args.params, device=args.device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    for name, (ours_factory, torch_factory, bytes_per_param) in CASES.items():
        if args.only and name not in args.only:
            continue
        params = make_params(args.params, args.tensors, args.device)
        fused = ours_factory(params, True)
        kernel = kernel_name(fused.chain())
        contenders: dict[str, Callable[[], object]] = {
            "eager": ours_factory(params, False).step, "fused": fused.step}
        if kernel.startswith("torch"):  # the same chain, compiled
            chain = copy.copy(fused.chain())
            chain.torch_equivalent = None
            contenders["compiled"] = oo.from_chain(params, chain, lr=fused.param_groups[0]["lr"],
                                                   fused=True).step
        else:
            contenders["compiled"] = contenders["fused"]
        peers = torch_variants(torch_factory, params) if torch_factory else {}
        contenders.update({f"torch {k}": opt.step for k, opt in peers.items()})
        for step in contenders.values():  # warm up: state allocation, compiling, first steps
            step()
            step()
        best = {k: float("inf") for k in [*contenders, "copy"]}
        for _ in range(args.rounds):  # interleaved, so drift hits every contender alike
            best["copy"] = min(best["copy"], median_time(lambda: dst.copy_(src), args.repeats))
            for k, step in contenders.items():
                best[k] = min(best[k], median_time(step, args.repeats))
        copy_bw = copy_bytes * args.params / best["copy"]

        def bw(seconds: float, _b: int = bytes_per_param, _copy: float = copy_bw) -> str:
            return f"{_b * args.params / seconds / _copy:8.2f}"

        ms = {k: v * 1e3 for k, v in best.items()}
        line = (f"{name:10} {kernel:>14} {ms['eager']:6.1f} {ms['fused']:6.1f} "
                f"{ms['compiled']:8.1f} ")
        if peers:
            fastest = min(peers, key=lambda k: best[f"torch {k}"])
            t_fast = best[f"torch {fastest}"]
            line += (f"{t_fast * 1e3:6.1f} {fastest:>7} {best['fused'] / t_fast:11.2f} "
                     f"{best['compiled'] / t_fast:14.2f} ")
        else:
            line += f"{'—':>6} {'none':>7} {'—':>11} {'—':>14} "
        line += (f"{bytes_per_param:4d} {bw(best['eager'])} {bw(best['fused'])} "
                 f"{bw(best['compiled'])} {bw(t_fast) if peers else '—':>8} "
                 f"{copy_bw / 1e9:5.1f}")
        print(line, flush=True)
        del params, contenders, peers
    print("\ntimes in ms; ratios are optimlab time / torch's fastest time: below 1.00 optimlab is "
          f"faster. bw: fraction of the copy bandwidth ({copy_bytes} bytes per float32), copy in "
          "GB/s. torch has no Lion.")


if __name__ == "__main__":
    main()
