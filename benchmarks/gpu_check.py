"""Check and time the Triton flash-attention kernel on a CUDA machine, in one short run.

    PYTHONPATH=. python3 benchmarks/gpu_check.py [OUTPUT_JSON] [--skip-tests]

1. prints the GPU and the torch / Triton versions;
2. runs the CUDA tests of tests/test_kernels.py (``pytest -m gpu``): every dtype, head dims
   32/64/128, ragged and unequal lengths, gradients;
3. times ``selfattn_course.kernels.flash_attention`` against torch's SDPA forced onto its
   FlashAttention backend at B=4, H=16, N=4096, d in {64, 128}, float16/bfloat16, causal and
   not, checks the two agree, and prints a table of TFLOP/s and the ratio flash / torch;
4. writes everything as JSON to OUTPUT_JSON (default benchmarks/results/gpu.json).

Needs only torch, triton, numpy and pytest. Exits 1 when a test fails or the outputs disagree,
2 without a CUDA device. The target is ratio >= 0.7; missing it is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
BATCH, HEADS, SEQ_LEN = 4, 16, 4096
TARGET_RATIO = 0.7
TEST_TIMEOUT_S = 180
AGREEMENT = 1e-2  # |flash - torch| <= AGREEMENT * (1 + |torch|): a few bfloat16 roundings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", default=str(REPO / "benchmarks" / "results" / "gpu.json"))
    parser.add_argument("--skip-tests", action="store_true", help="only time the kernel")
    options = parser.parse_args()

    started = time.perf_counter()
    report = {"environment": environment()}
    for key, value in report["environment"].items():
        print(f"{key:>10}: {value}")
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2

    report["tests"] = {"skipped": True} if options.skip_tests else run_cuda_tests()
    rows = [time_or_report(dtype, d, causal) for dtype in (torch.float16, torch.bfloat16)
            for d in (64, 128) for causal in (False, True)]
    report["benchmarks"] = rows
    print_table(rows)

    timed = [row for row in rows if "error" not in row]
    agree = len(timed) == len(rows) and all(row["agrees"] for row in rows)
    tests_ok = bool(report["tests"].get("skipped") or report["tests"].get("returncode") == 0)
    report["summary"] = {
        "tests_passed": None if report["tests"].get("skipped") else tests_ok,
        "all_shapes_ran_and_agree_with_torch": agree,
        "min_ratio": min((row["ratio"] for row in timed), default=None),
        "target_ratio": TARGET_RATIO,
        "meets_target": bool(timed) and len(timed) == len(rows) and all(row["ratio"] >= TARGET_RATIO for row in timed),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report["summary"], indent=2))

    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if tests_ok and agree else 1


def environment() -> dict:
    import triton

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "gpu": None,
    }
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        info["gpu"] = f"{torch.cuda.get_device_name()} (sm_{major}{minor})"
    return info


def run_cuda_tests() -> dict:
    """``pytest tests/test_kernels.py -m gpu`` in a child process; its summary line and status."""
    command = [sys.executable, "-m", "pytest", "tests/test_kernels.py", "-m", "gpu", "-q",
               "-p", "no:cacheprovider"]
    print("\n$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    try:
        child = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"the CUDA tests did not finish in {TEST_TIMEOUT_S} s")
        return {"returncode": None, "summary": f"timed out after {TEST_TIMEOUT_S} s", "seconds": TEST_TIMEOUT_S}
    lines = child.stdout.strip().splitlines()
    print("\n".join(lines[-25:]))
    if child.returncode != 0:
        print(child.stderr[-3000:])
    return {
        "returncode": child.returncode,
        "summary": lines[-1] if lines else child.stderr[-500:],
        "seconds": round(time.perf_counter() - started, 1),
    }


def time_or_report(dtype: torch.dtype, d: int, causal: bool) -> dict:
    """:func:`time_one`, or the error it raised (so one failing shape does not hide the rest)."""
    try:
        return time_one(dtype, d, causal)
    except Exception:
        print(f"{dtype} d={d} causal={causal} failed:\n{traceback.format_exc()}", flush=True)
        return {"dtype": str(dtype).removeprefix("torch."), "d": d, "causal": causal,
                "error": traceback.format_exc()}


def time_one(dtype: torch.dtype, d: int, causal: bool) -> dict:
    """Median times of flash_attention and torch's flash backend at one shape; agreement."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from selfattn_course.kernels import _flash_fwd, flash_attention

    generator = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = torch.randn(3, BATCH, HEADS, SEQ_LEN, d, device="cuda", dtype=dtype, generator=generator).unbind(0)

    def ours():
        return flash_attention(q, k, v, causal=causal)

    def theirs():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    tune_started = time.perf_counter()
    ours()  # the first call compiles and autotunes
    torch.cuda.synchronize()
    tune_seconds = time.perf_counter() - tune_started
    difference = (ours().float() - theirs().float()).abs()
    allowed = AGREEMENT * (1.0 + theirs().float().abs())  # 16-bit rounding grows with |output|

    flops = 4 * BATCH * HEADS * SEQ_LEN * SEQ_LEN * d * (0.5 if causal else 1.0)
    ours_ms, theirs_ms = median_ms(ours), median_ms(theirs)
    row = {
        "dtype": str(dtype).removeprefix("torch."),
        "d": d,
        "causal": causal,
        "shape": [BATCH, HEADS, SEQ_LEN, d],
        "flash_ms": round(ours_ms, 4),
        "torch_flash_ms": round(theirs_ms, 4),
        "flash_tflops": round(flops / ours_ms / 1e9, 1),
        "torch_flash_tflops": round(flops / theirs_ms / 1e9, 1),
        "ratio": round(theirs_ms / ours_ms, 3),
        "max_abs_diff": difference.max().item(),
        "agrees": bool((difference <= allowed).all()),
        "best_config": str(getattr(_flash_fwd.autotuned_kernel(), "best_config", None)),
        "compile_and_tune_seconds": round(tune_seconds, 1),
    }
    print(f"timed {row['dtype']} d={d} causal={causal}: ratio {row['ratio']}", flush=True)
    return row


def median_ms(fn, warmup: int = 5, repeats: int = 30) -> float:
    """Median wall time of ``fn()`` on the GPU, in milliseconds, from CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def print_table(rows) -> None:
    header = f"{'dtype':>9} {'d':>4} {'causal':>6} {'flash ms':>9} {'torch ms':>9} {'flash TF/s':>10} {'torch TF/s':>10} {'ratio':>6} {'max diff':>9}  best config"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['dtype']:>9} {r['d']:>4} {str(r['causal']):>6}  failed: {r['error'].strip().splitlines()[-1]}")
            continue
        print(f"{r['dtype']:>9} {r['d']:>4} {str(r['causal']):>6} {r['flash_ms']:>9.3f} {r['torch_flash_ms']:>9.3f} "
              f"{r['flash_tflops']:>10.1f} {r['torch_flash_tflops']:>10.1f} {r['ratio']:>6.2f} {r['max_abs_diff']:>9.2e}  "
              f"{r['best_config']}")
    print(f"(ratio = torch time / flash time; target >= {TARGET_RATIO}; B={BATCH}, H={HEADS}, N={SEQ_LEN})\n")


if __name__ == "__main__":
    sys.exit(main())
