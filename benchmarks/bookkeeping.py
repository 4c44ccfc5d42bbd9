"""What a study spends besides training, measured for this checkout (and, with ``--baseline``,
another one side by side): start-up, metrics, checkpoints, and a quick compare end to end.

Each figure is the best of ``--rounds`` runs, every run in a fresh process; with
``--baseline OTHER/src`` the two checkouts take turns, so that a busy moment hits both alike,
and the ratio this/baseline is printed (< 1: this one is faster).

- ``optimlab --help`` and ``optimlab datasets``: seconds from process start to exit;
- first optimizer: seconds to import the Trainer and build an Adam optimizer on a small model
  (torch's first optimizer call used to import torch._dynamo);
- metrics: ms per ``compute(["accuracy", "f1_macro"], …)`` on 1437 × 10 logits (the digits
  training set, as the Trainer computes every epoch), and binary (accuracy, f1, roc_auc) and
  regression (mse, mae, r2) on 500 samples;
- checkpoint: ms per epoch that ``ModelCheckpoint`` adds (as the lab uses it: last.pt only) to
  30 epochs of the digits MLP 64→128→10 with Adam, batch 64: (with − without) / 30;
- ``optimlab compare --quick``: seconds end to end (8 optimizers × 3 seeds × 3 epochs, report
  included), in a temporary folder.

    python benchmarks/bookkeeping.py [--rounds 3] [--baseline ../main/src] [--skip-compare]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()

METRICS = """
import time, torch
from optimlab.train.metrics import compute
g = torch.Generator().manual_seed(0)
cases = {
    "metrics multiclass ms": (["accuracy", "f1_macro"], torch.randn(1437, 10, generator=g),
                              torch.randint(0, 10, (1437,), generator=g), "multiclass"),
    "metrics binary ms": (["accuracy", "f1", "roc_auc"], torch.randn(500, generator=g),
                          torch.randint(0, 2, (500,), generator=g), "binary"),
    "metrics regression ms": (["mse", "mae", "r2"], torch.randn(500, generator=g),
                              torch.randn(500, generator=g), "regression"),
}
out = {}
for key, (names, o, y, task) in cases.items():
    best = float("inf")
    for _ in range(100):
        t = time.perf_counter()
        compute(names, o, y, task)
        best = min(best, time.perf_counter() - t)
    out[key] = best * 1e3
print(json.dumps(out))
"""

CHECKPOINT = """
import tempfile, time, torch
from optimlab.data import holdout, load, standardize
from optimlab.train import Trainer
from optimlab.train.callbacks import ModelCheckpoint
split, _ = standardize(holdout(load("digits"), seed=0))
def fit(callbacks):
    t = Trainer({"type": "mlp", "hidden": [128], "init": "he_normal"}, optimizer="adam",
                lr=1e-3, callbacks=callbacks, progress=False)
    start = time.perf_counter()
    t.fit(split.train, split.val, epochs=30, batch_size=64)
    return time.perf_counter() - start
fit([])  # warm-up
best = {"with": float("inf"), "without": float("inf")}
for _ in range(3):
    best["without"] = min(best["without"], fit([]))
    with tempfile.TemporaryDirectory() as d:
        best["with"] = min(best["with"], fit([ModelCheckpoint(d, save_best=False)]))
print(json.dumps({"checkpoint ms per epoch": (best["with"] - best["without"]) / 30 * 1e3,
                  "30 epochs without checkpoints s": best["without"]}))
"""

FIRST_OPTIMIZER = """
import time
start = time.perf_counter()
import torch
torch_s = time.perf_counter() - start
from optimlab.train import Trainer
import optimlab.optim as oo
oo.create("adam", torch.nn.Linear(4, 3).parameters(), lr=1e-3)
print(json.dumps({"first optimizer s (after torch)": time.perf_counter() - start - torch_s}))
"""


def _python(src: str, code: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _wall(src: str, argv: list[str], cwd: str | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "optimlab", *argv], env=env, cwd=cwd, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(src: str, compare: bool) -> dict[str, float]:
    out = {"optimlab --help s": _wall(src, ["--help"]),
           "optimlab datasets s": _wall(src, ["datasets"])}
    out.update(_python(src, FIRST_OPTIMIZER))
    out.update(_python(src, METRICS))
    out.update(_python(src, CHECKPOINT))
    if compare:
        with tempfile.TemporaryDirectory() as d:
            out["optimlab compare --quick s"] = _wall(
                src, ["compare", "--quick", "--db", "q.db", "--report", "r.html"], cwd=d)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="SRC", help="the src folder of another checkout")
    parser.add_argument("--skip-compare", action="store_true",
                        help="leave out optimlab compare --quick (the slow one)")
    args = parser.parse_args()
    trees = {"this": str(HERE.parents[1] / "src")}
    if args.baseline:
        trees["baseline"] = str(Path(args.baseline).resolve())
    best: dict[str, dict[str, float]] = {k: {} for k in trees}
    for r in range(args.rounds):
        for label in (trees if r % 2 == 0 else list(reversed(trees))):
            for key, value in measure(trees[label], not args.skip_compare).items():
                best[label][key] = min(value, best[label].get(key, float("inf")))
    print(f"best of {args.rounds} rounds, each in fresh processes; OMP_NUM_THREADS=1")
    for label, src in trees.items():
        print(f"{label}: {src}")
    header = f"\n{'':34} {'this':>10}"
    if "baseline" in trees:
        header += f" {'baseline':>10} {'this/baseline':>14}"
    print(header)
    for key, mine in best["this"].items():
        row = f"{key:34} {mine:10.3f}"
        if "baseline" in trees:
            base = best["baseline"][key]
            row += f" {base:10.3f} {mine / base:14.3f}"
        print(row)


if __name__ == "__main__":
    main()
