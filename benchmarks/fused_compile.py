"""What a fused step's compile costs: in a first process (empty cache) and in a second one.

Runs the same short script twice, each in a fresh process, with a fresh Inductor cache folder
shared by the two: the first process generates and builds the kernel, the second finds it in the
disk cache. Each prints how long its first ``step()`` took (tracing + compiling or loading +
running) and the median of 15 later steps. A third line shows the eager chain.

    python benchmarks/fused_compile.py [--optimizer adam] [--params 1_000_000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

SCRIPT = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import torch
import optimlab.optim as oo
name, n, fused = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fused"
params = [torch.randn(n // 4).requires_grad_() for _ in range(4)]
for p in params:
    p.grad = torch.randn_like(p)
opt = oo.create(name, params, fused=fused)
t1 = time.perf_counter()
opt.step()
t2 = time.perf_counter()
later = []
for _ in range(15):
    start = time.perf_counter()
    opt.step()
    later.append(time.perf_counter() - start)
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "later": statistics.median(later)}))
"""


def run(name: str, n: int, mode: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OPTIMLAB_FUSED": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, name, str(n), mode], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", default="rmsprop",
                        help="a named optimizer (adam, sgd, adagrad use torch's kernels: nothing "
                             "to compile)")
    parser.add_argument("--params", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optimlab-inductor-") as cache:
        rows = [("first process, empty cache", run(args.optimizer, args.params, "fused", cache)),
                ("second process, same cache", run(args.optimizer, args.params, "fused", cache)),
                ("eager chain (fused=False)", run(args.optimizer, args.params, "eager", cache))]
    print(f"{args.optimizer}, {args.params:,} float32 parameters in 4 tensors, fused=True\n")
    print(f"{'':28} {'first step s':>12} {'later step ms':>13} {'import+build s':>14}")
    for label, r in rows:
        print(f"{label:28} {r['first']:12.2f} {r['later'] * 1e3:13.2f} {r['import']:14.2f}")


if __name__ == "__main__":
    main()
