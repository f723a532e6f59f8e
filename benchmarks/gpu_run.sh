#!/usr/bin/env bash
# Everything one GPU session checks, in a single run of under 9 minutes (device time is short):
#   1. the GPU's name, memory and clocks (nvidia-smi);
#   2. benchmarks/gpu_check.py: our Triton kernels (forward, backward, both) against torch's
#      flash, cuDNN and memory-efficient SDPA backends at N = 1024, 4096 and 16384 (timing stops
#      after 300 s and records the shapes it skipped), then the CUDA tests (at most 2 x 150 s);
#   3. only with VARIANTS=1 (it would not fit in the 9 minutes otherwise): benchmarks/run.py on
#      CUDA at N = 1024 and 4096, every variant's time, peak memory and error.
# Needs only python3 with torch, triton, numpy, pytest and hypothesis (no virtual environment):
#   OUT=some/folder bash benchmarks/gpu_run.sh      # default folder: benchmarks/results
# On a machine without a GPU, `python3 benchmarks/gpu_check.py --dry-run` checks the script.
set -u
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=.
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv \
    > "$out/nvidia-smi.csv" 2>&1
cat "$out/nvidia-smi.csv"
timeout 500 python3 benchmarks/gpu_check.py "$out/gpu.json" --budget 300 2>&1 | tee "$out/gpu_check.log"
if [ "${VARIANTS:-0}" = 1 ]; then
    timeout 120 python3 benchmarks/run.py --device cuda --quick --lengths 1024 4096 \
        --output-dir "$out" 2>&1 | tee "$out/bench.log"
fi
