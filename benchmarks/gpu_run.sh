#!/usr/bin/env bash
# Everything one GPU session checks, in a single run of under 9 minutes (device time is short):
#   1. the GPU's name, memory and clocks (nvidia-smi);
#   2. benchmarks/gpu_check.py: the Triton kernel against torch's flash backend at N = 4096,
#      the CUDA tests, then a sweep of tile sizes for up to 110 s;
#   3. benchmarks/run.py on CUDA at N = 1024 and 4096 (short timings): every variant's time,
#      peak memory and error, as `make bench` prints them on the CPU.
# Needs only python3 with torch, triton, numpy, pytest and hypothesis (no virtual environment):
#   OUT=some/folder bash benchmarks/gpu_run.sh      # default folder: benchmarks/results
set -u
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH=.
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv \
    > "$out/nvidia-smi.csv" 2>&1
cat "$out/nvidia-smi.csv"
timeout 400 python3 benchmarks/gpu_check.py "$out/gpu.json" --sweep 110 2>&1 | tee "$out/gpu_check.log"
timeout 120 python3 benchmarks/run.py --device cuda --quick --lengths 1024 4096 --output-dir "$out" \
    2>&1 | tee "$out/bench.log"
