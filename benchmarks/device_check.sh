#!/usr/bin/env bash
# The GPU checks of the fused steps and of seeds trained together, as one prepared run for a
# lent GPU machine (the device tool: 15 minutes in all, one call). Not part of CI.
#
#   device run (carry .whl when the machine lacks pydantic/optuna; see the device tool's notes):
#     bash benchmarks/device_check.sh
#
# What it runs, each step's output saved under $OUT (or ./device-out):
#   1. the CUDA tests: fused = eager on CUDA for every optimizer and form, seeds trained
#      together on CUDA equal to each seed alone, metrics of CUDA tensors, a study on CUDA;
#   2. benchmarks/optim_step.py --device cuda at 1e9 parameters in one tensor and at 1e8 in 200
#      tensors (the goals: >= 0.85 and >= 0.60 of device-to-device copy bandwidth);
#   3. benchmarks/seeds.py --device cuda at 8 and 32 seeds.
set -u
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt"

timeout 240 python3 -m pytest -q -p no:cacheprovider -p no:xdist -m "slow or not slow" -rs \
    tests/test_optim_fused.py tests/test_train_stacked.py tests/test_metrics.py \
    tests/test_lab_runner.py -k "cuda" > "$OUT/cuda-tests.txt" 2>&1
echo "cuda tests: exit $?" >> "$OUT/summary.txt"

timeout 180 python3 benchmarks/optim_step.py --device cuda --params 1_000_000_000 --tensors 1 \
    --rounds 5 > "$OUT/optim-step-1e9.txt" 2>&1
echo "optim_step 1e9: exit $?" >> "$OUT/summary.txt"
timeout 150 python3 benchmarks/optim_step.py --device cuda --params 100_000_000 --tensors 200 \
    --rounds 5 > "$OUT/optim-step-1e8.txt" 2>&1
echo "optim_step 1e8 x 200: exit $?" >> "$OUT/summary.txt"

timeout 120 python3 benchmarks/seeds.py --device cuda --seeds 8 32 --rounds 2 --epochs 4 \
    > "$OUT/seeds.txt" 2>&1
echo "seeds: exit $?" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
