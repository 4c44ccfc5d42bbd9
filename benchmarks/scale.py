"""Scaling out, measured in one run: one study on three executors, and DDP at 1 and 2 processes.

Study: 24 trials (4 optimizers × 6 seeds, an MLP 64→256→256→10 on digits, 15 epochs of batch
64), run end to end by ``run_study`` into a fresh store with

* the local runner, 1 worker (this process);
* the local runner, 2 worker processes;
* the Ray executor on a local cluster of 2 CPUs started by this script (``ray.init(num_cpus=2)``;
  its start-up is timed apart and not counted in the study's time).

Each is run ``--rounds`` times, interleaved (the order turns each round, so a busy moment of a
shared machine hits all alike); printed: each round's wall time, the speed-up of the best over
1 worker's best, and a check that the three stores hold the same final metrics. The local
worker processes start anew in every run (their start-up is counted); Ray's worker processes
live as long as the cluster, so its first run pays their start-up and later runs do not.

DDP: the throughput (training rows per second, the median epoch after the first) of one
``Trainer.fit`` on synthetic data (16384 rows × 256 features, MLP 256→512→512→10, batch 512,
SGD) launched by torchrun with 1 process of 1 thread, 1 process of 2 threads (the peer on one
machine), and 2 processes of 1 thread each (``strategy="ddp"``, gloo).

    python benchmarks/scale.py [--rounds 2] [--skip-ray] [--skip-ddp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

from optimlab.lab.runner import run_study
from optimlab.lab.spec import parse_spec
from optimlab.lab.store import Store

STUDY = {
    "name": "scale", "seeds": 6, "baseline": "sgd",
    "data": {"dataset": "digits", "val": 0.1, "test": 0.1},
    "train": {"model": {"type": "mlp", "hidden": [256, 256]}, "epochs": 15, "batch_size": 64,
              "lr": 0.05},
    "axes": {"optimizer": ["sgd", "momentum", "adam", "rmsprop"]},
}

DDP_SCRIPT = textwrap.dedent("""
    import json, os, statistics, sys
    import torch
    from optimlab.train import Trainer
    torch.set_num_threads(int(sys.argv[1]))
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16384, 256, generator=g)
    y = torch.randint(0, 10, (16384,), generator=g)
    model = {"type": "mlp", "hidden": [512, 512]}
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    trainer = Trainer(model, optimizer="sgd", lr=0.01, metrics=[], progress=False,
                      strategy="ddp" if ddp else "single", track_grad_norm=False)
    history = trainer.fit((X, y), epochs=int(sys.argv[2]), batch_size=512)
    if int(os.environ.get("RANK", "0")) == 0:
        times = [e["time"] for e in history.epochs[1:]]
        print("RESULT", json.dumps({"rows_per_s": len(X) / statistics.median(times)}))
""")


def finals(db: Path) -> dict[tuple[str, int], dict]:
    with Store(db) as store:
        return {(r.label, r.seed): r.final for r in store.trials(store.study()[0])}


def study_times(rounds: int, with_ray: bool) -> None:
    spec = parse_spec(STUDY)
    runs = {"local, 1 worker": {"workers": 1}, "local, 2 workers": {"workers": 2}}
    ray_start = None
    if with_ray:
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        ray_start = time.perf_counter() - started
        runs["ray, local cluster of 2 CPUs"] = {"executor": "ray"}
    times: dict[str, list[float]] = {k: [] for k in runs}
    busy: dict[str, list[float]] = {k: [] for k in runs}  # the trials' own seconds, summed
    results = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for label in order:
                db = Path(folder) / f"round{r}-{list(runs).index(label)}.db"
                started = time.perf_counter()
                out = run_study(spec, db, on_failure=None, on_warning=None, **runs[label])
                times[label].append(time.perf_counter() - started)
                assert out.counts == {"completed": 24}, out.counts
                results[label] = finals(db)
                with Store(db) as store:
                    busy[label].append(sum(row.wall_time or 0.0 for row in
                                           store.trials(store.study()[0])))
    if with_ray:
        import ray

        ray.shutdown()
    same = all(v == results["local, 1 worker"] for v in results.values())
    print(f"Study: 24 trials (4 optimizers × 6 seeds, MLP 64→256→256→10 on digits, 15 "
          f"epochs), end to end, {rounds} interleaved rounds; {os.cpu_count()} cores, torch "
          f"{torch.__version__}")
    print(f"(1-minute load average {load:.1f} before, {os.getloadavg()[0]:.1f} after: other "
          "work on the machine)")
    header = (f"{'executor':30} " + " ".join(f"{f'round {i + 1} s':>10}" for i in range(rounds))
              + f" {'speed-up (best)':>16} {'trials busy':>12}")
    print(header)
    print("-" * len(header))
    base = min(times["local, 1 worker"])
    for label, values in times.items():
        best = values.index(min(values))
        print(f"{label:30} " + " ".join(f"{v:10.1f}" for v in values)
              + f" {base / min(values):16.2f} {busy[label][best] / values[best]:12.2f}")
    print("(trials busy: the trials' own seconds summed over the wall time of the best round: "
          "how many trials trained at once, on average)")
    if ray_start is not None:
        print(f"(Ray's local cluster took {ray_start:.1f} s to start, not counted above)")
    print(f"same final metrics on every executor: {same}\n")


def ddp_throughput(rounds: int, epochs: int) -> None:
    cases = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2),
             "2 processes (DDP), 1 thread each": (2, 1)}
    rates: dict[str, list[float]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "ddp_bench.py"
        script.write_text(DDP_SCRIPT)
        for r in range(rounds):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for label in order:
                procs, threads = cases[label]
                env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                run = subprocess.run([sys.executable, "-m", "torch.distributed.run",
                                      "--standalone", "--nproc-per-node", str(procs),
                                      str(script), str(threads), str(epochs)],
                                     capture_output=True, text=True, env=env, check=True)
                line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT"))
                rates[label].append(json.loads(line.split(" ", 1)[1])["rows_per_s"])
    print(f"(1-minute load average {os.getloadavg()[0]:.1f})")
    print(f"DDP throughput on the CPU: MLP 256→512→512→10, 16384 rows, batch 512, SGD; "
          f"training rows/s, median epoch after the first of {epochs}; best of {rounds} "
          "interleaved rounds")
    header = f"{'processes':34} {'rows/s':>9} {'vs 1 process, 1 thread':>23}"
    print(header)
    print("-" * len(header))
    base = max(rates["1 process, 1 thread"])
    for label, values in rates.items():
        print(f"{label:34} {max(values):9.0f} {max(values) / base:23.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6, help="DDP epochs per run")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-ddp", action="store_true")
    args = parser.parse_args()
    with_ray = not args.skip_ray
    if with_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print('Ray is not installed (pip install -e ".[ray]"): its row is left out\n')
            with_ray = False
    study_times(args.rounds, with_ray)
    if not args.skip_ddp:
        ddp_throughput(args.rounds, args.epochs)


if __name__ == "__main__":
    main()
