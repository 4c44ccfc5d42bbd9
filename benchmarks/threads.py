"""torch threads per trial: the lab's default (``choose_threads``) against the alternatives, in
one run.

For each workload, the same trial (``optimlab.lab.runner.build_trainer`` + ``fit``: the lab's own
code path, with validation metrics every epoch) is timed with 1 thread and with every core, in
interleaved rounds (median of ``--repeats``), and the default's pick is marked. Printed: seconds
per trial for each thread count and the ratio to the default (> 1: slower than the default), so
"the default is never the slow case" is checked, not assumed.

Workloads (``params × rows per update`` decides the default; below ``SMALL_WORK`` it is 1):

* ``compare``: what ``optimlab compare`` trains — digits, MLP 64→128→10, batch 64;
* ``cat_vs_dog``: the course's 1000→100→1 network, batch 32;
* ``mid``: digits, MLP 64→512→512→10, batch 256;
* ``wide``: digits, MLP 64→1024→1024→10, batch 512 — a model where more threads can pay.

The default also looks at the load average (idle cores only), so the same workload may get a
different default on a busy machine than on an idle one; both are printed as measured.

``--end-to-end`` also times the whole ``optimlab compare --quick --seeds 1`` command (8 trials,
start-up and report included) with the default threads and with ``--threads`` = all cores, in
fresh processes, interleaved.

Run it on the machine you care about, as it is (busy or not):

    OMP_NUM_THREADS= python benchmarks/threads.py [--epochs 3] [--repeats 3] [--end-to-end]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from optimlab.lab.checks import check_study
from optimlab.lab.grid import configurations
from optimlab.lab.runner import SMALL_WORK, build_trainer, choose_threads
from optimlab.lab.spec import parse_spec
from optimlab.lab.studydata import StudyData

WORKLOADS = {
    "compare": ({"dataset": "digits"}, {"type": "mlp", "hidden": [128], "activation": "relu",
                                        "init": "he_normal"}, 64, "sgd", 0.1),
    "cat_vs_dog": ({"dataset": "cat_vs_dog"}, {"type": "mlp", "hidden": [100]}, 32, "sgd", 0.1),
    "mid": ({"dataset": "digits"}, {"type": "mlp", "hidden": [512, 512]}, 256, "adam", 1e-3),
    "wide": ({"dataset": "digits"}, {"type": "mlp", "hidden": [1024, 1024]}, 512, "adam", 1e-3),
}


def trial_seconds(spec, settings, split, threads: int) -> float:
    torch.set_num_threads(threads)
    trainer = build_trainer(spec, settings, 0, split, [])
    start = time.perf_counter()
    trainer.fit(split.train, split.val, epochs=settings["epochs"],
                batch_size=settings["batch_size"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time `optimlab compare --quick --seeds 1` both ways")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores: {cores}, load average at start: {load:.2f}, torch {torch.__version__}, "
          f"SMALL_WORK = {SMALL_WORK:g}")
    counts = sorted({1, max(1, cores // 2), cores})
    header = f"{'workload':<11} {'params×rows':>12} {'default':>8} " + " ".join(
        f"{f'{t} thr (s)':>11}" for t in counts) + " " + " ".join(
        f"{f'{t} thr/def':>10}" for t in counts)
    print(header)
    for name in args.workloads:
        data, model, batch, optimizer, lr = WORKLOADS[name]
        spec = parse_spec({"name": f"threads-{name}", "seeds": 1, "data": data,
                           "train": {"model": model, "epochs": args.epochs,
                                     "batch_size": batch, "optimizer": optimizer, "lr": lr}})
        spec, facts = check_study(spec)
        settings = configurations(spec)[0][1]
        split = StudyData(spec.data).split(0)
        default = choose_threads(1, facts.work_per_step, cores)  # with the load now
        trial_seconds(spec, settings, split, 1)  # warm-up: first-call costs out of the way
        times: dict[int, list[float]] = {t: [] for t in counts}
        for _ in range(args.repeats):  # interleaved, so a burst of load hits every count
            for t in counts:
                times[t].append(trial_seconds(spec, settings, split, t))
        if default not in times:
            times[default] = [trial_seconds(spec, settings, split, default)
                              for _ in range(args.repeats)]
        med = {t: statistics.median(v) for t, v in times.items()}
        print(f"{name:<11} {facts.work_per_step:>12.3g} {default:>8} "
              + " ".join(f"{med[t]:>11.3f}" for t in counts) + " "
              + " ".join(f"{med[t] / med[default]:>10.2f}" for t in counts))
    if args.end_to_end:
        end_to_end(cores, args.repeats)


def compare_seconds(extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "optimlab", "compare", "--quick", "--seeds", "1",
                        "--db", os.path.join(tmp, "c.db"), "--report", "", "--json", *extra],
                       check=True, capture_output=True, env=env)
        return time.perf_counter() - start


def end_to_end(cores: int, repeats: int) -> None:
    runs: dict[str, list[float]] = {"default": [], f"--threads {cores}": []}
    for _ in range(repeats):
        runs["default"].append(compare_seconds([]))
        runs[f"--threads {cores}"].append(compare_seconds(["--threads", str(cores)]))
    base = statistics.median(runs["default"])
    for name, times in runs.items():
        med = statistics.median(times)
        print(f"optimlab compare --quick --seeds 1, {name:<12} {med:8.1f} s   "
              f"{med / base:5.2f} × the default")


if __name__ == "__main__":
    main()
