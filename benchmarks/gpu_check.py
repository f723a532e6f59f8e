"""Check and time the Triton flash-attention kernel on a CUDA machine, in one short run.

    PYTHONPATH=. python3 benchmarks/gpu_check.py [OUTPUT_JSON] [--skip-tests] [--sweep SECONDS]

1. prints the GPU and the torch / Triton versions;
2. times ``selfattn_course.kernels.flash_attention`` against torch's SDPA forced onto its
   FlashAttention backend at B=4, H=16, N=4096, d in {64, 128}, float16/bfloat16, causal and
   not (``triton.testing.do_bench``: medians, L2 flushed between calls), checks the two agree,
   and prints a table of TFLOP/s and the ratio flash / torch;
3. runs the CUDA tests: ``tests/test_kernels.py -m gpu`` (every dtype, head dims 32/64/128,
   ragged and unequal lengths, gradients), then every test of the other files that runs on the
   ``cuda`` device (reference attention, chunked, modules, masks, encodings);
4. with ``--sweep SECONDS``, also times each tile of :data:`SWEEP_TILES` at those shapes, the
   shapes furthest below the target first, until SECONDS have passed: the data behind the
   autotuning candidates in ``selfattn_course/kernels/_flash_fwd.py``;
5. writes everything as JSON to OUTPUT_JSON (default benchmarks/results/gpu.json).

Needs only torch, triton, numpy and pytest. Exits 1 when a test fails or the outputs disagree,
2 without a CUDA device. The target is ratio >= 0.7; missing it is reported, not an error.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
BATCH, HEADS, SEQ_LEN = 4, 16, 4096
TARGET_RATIO = 0.7
TEST_TIMEOUT_S = 150
# The files whose tests take the ``device`` fixture, selected on CUDA with ``-k cuda``.
DEVICE_TEST_FILES = [
    "tests/test_sdpa.py",
    "tests/test_chunked.py",
    "tests/test_modules.py",
    "tests/test_masks.py",
    "tests/test_encodings.py",
    "tests/test_softmax.py",
    "tests/test_sliding_window.py",
]
# (BLOCK_M, BLOCK_N, num_warps, num_stages) tried by --sweep; BLOCK_M must be a multiple of BLOCK_N.
SWEEP_TILES = [
    (128, 64, 4, 3),
    (128, 64, 4, 4),
    (128, 64, 8, 3),
    (128, 64, 8, 4),
    (128, 64, 4, 2),
    (128, 128, 8, 3),
    (128, 128, 8, 2),
    (128, 128, 4, 3),
    (128, 32, 4, 3),
    (128, 32, 4, 4),
    (64, 64, 4, 3),
    (64, 64, 4, 4),
    (64, 32, 4, 3),
    (64, 64, 8, 3),
]
AGREEMENT = 1e-2  # |flash - torch| <= AGREEMENT * (1 + |torch|): a few bfloat16 roundings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "output", nargs="?", default=str(REPO / "benchmarks" / "results" / "gpu.json")
    )
    parser.add_argument("--skip-tests", action="store_true", help="only time the kernel")
    parser.add_argument(
        "--sweep",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also time every tile of SWEEP_TILES for up to SECONDS",
    )
    options = parser.parse_args()

    started = time.perf_counter()
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment()}
    for key, value in report["environment"].items():
        print(f"{key:>10}: {value}")
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2

    rows = [
        time_or_report(dtype, d, causal)
        for dtype in (torch.float16, torch.bfloat16)
        for d in (64, 128)
        for causal in (False, True)
    ]
    report["benchmarks"] = rows
    print_table(rows)
    save(report, output)  # after each step, so a run cut short keeps what it measured
    report["tests"] = {"skipped": True} if options.skip_tests else run_cuda_tests()
    save(report, output)
    if options.sweep > 0:
        report["sweep"] = sweep_tiles(rows, options.sweep)
        report["sweep_best"] = best_tiles(report["sweep"])

    timed = [row for row in rows if "error" not in row]
    agree = len(timed) == len(rows) and all(row["agrees"] for row in rows)
    tests_ok = bool(
        report["tests"].get("skipped")
        or all(run["returncode"] in (0, 5) for run in report["tests"]["runs"])
    )  # 5: nothing selected
    report["summary"] = {
        "tests_passed": None if report["tests"].get("skipped") else tests_ok,
        "all_shapes_ran_and_agree_with_torch": agree,
        "min_ratio": min((row["ratio"] for row in timed), default=None),
        "target_ratio": TARGET_RATIO,
        "meets_target": bool(timed)
        and len(timed) == len(rows)
        and all(row["ratio"] >= TARGET_RATIO for row in timed),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report["summary"], indent=2))

    save(report, output)
    print(f"wrote {output}")
    return 0 if tests_ok and agree else 1


def save(report: dict, output: Path) -> None:
    output.write_text(json.dumps(report, indent=2) + "\n")


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
    """The kernel's CUDA tests, then the CUDA cases of the device-fixture tests, each in a child."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return {
        "runs": [
            run_pytest([*pytest, "tests/test_kernels.py", "-m", "gpu"]),
            run_pytest([*pytest, *DEVICE_TEST_FILES, "-k", "cuda"]),
        ]
    }


def run_pytest(command: list[str]) -> dict:
    """Run one pytest command; its summary line and exit status."""
    print("\n$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    try:
        child = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=TEST_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        print(f"the tests did not finish in {TEST_TIMEOUT_S} s")
        return {
            "command": command[1:],
            "returncode": None,
            "summary": f"timed out after {TEST_TIMEOUT_S} s",
            "seconds": TEST_TIMEOUT_S,
        }
    lines = child.stdout.strip().splitlines()
    print("\n".join(lines[-25:]), flush=True)
    if child.returncode not in (0, 5):
        print(child.stderr[-3000:])
    return {
        "command": command[1:],
        "returncode": child.returncode,
        "summary": lines[-1] if lines else child.stderr[-500:],
        "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
        "seconds": round(time.perf_counter() - started, 1),
    }


def time_or_report(dtype: torch.dtype, d: int, causal: bool) -> dict:
    """:func:`time_one`, or the error it raised (so one failing shape does not hide the rest)."""
    try:
        return time_one(dtype, d, causal)
    except Exception:
        print(f"{dtype} d={d} causal={causal} failed:\n{traceback.format_exc()}", flush=True)
        return {
            "dtype": str(dtype).removeprefix("torch."),
            "d": d,
            "causal": causal,
            "error": traceback.format_exc(),
        }


def inputs(dtype: torch.dtype, d: int):
    generator = torch.Generator(device="cuda").manual_seed(0)
    return torch.randn(
        3, BATCH, HEADS, SEQ_LEN, d, device="cuda", dtype=dtype, generator=generator
    ).unbind(0)


def attention_flops(d: int, causal: bool) -> float:
    return 4 * BATCH * HEADS * SEQ_LEN * SEQ_LEN * d * (0.5 if causal else 1.0)


def torch_flash(q, k, v, causal: bool) -> torch.Tensor:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def time_one(dtype: torch.dtype, d: int, causal: bool) -> dict:
    """Median times of flash_attention and torch's flash backend at one shape; agreement."""
    from selfattn_course.kernels import _flash_fwd, flash_attention

    q, k, v = inputs(dtype, d)

    def ours():
        return flash_attention(q, k, v, causal=causal)

    def theirs():
        return torch_flash(q, k, v, causal)

    tune_started = time.perf_counter()
    ours()  # the first call compiles and autotunes
    torch.cuda.synchronize()
    tune_seconds = time.perf_counter() - tune_started
    expected = theirs().float()
    difference = (ours().float() - expected).abs()
    allowed = AGREEMENT * (1.0 + expected.abs())  # 16-bit rounding grows with |output|

    flops = attention_flops(d, causal)
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


def median_ms(fn) -> float:
    """Median GPU time of ``fn()`` in milliseconds (Triton's do_bench: CUDA events, L2 flushed)."""
    import triton.testing

    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def sweep_tiles(rows: list[dict], budget_s: float) -> list[dict]:
    """Time every tile of SWEEP_TILES at each benchmarked shape, worst ratio first, in budget_s."""
    from selfattn_course.kernels.flash_attention import _launch

    started = time.perf_counter()
    results = []
    timed = sorted((row for row in rows if "error" not in row), key=lambda row: row["ratio"])
    for row in timed:
        dtype, d, causal = getattr(torch, row["dtype"]), row["d"], row["causal"]
        q, k, v = inputs(dtype, d)
        expected = torch_flash(q, k, v, causal).float()
        scale = d**-0.5
        for tile in SWEEP_TILES:
            if time.perf_counter() - started > budget_s:
                print(f"sweep budget of {budget_s:.0f} s spent", flush=True)
                return results
            config = dict(zip(("BLOCK_M", "BLOCK_N", "num_warps", "num_stages"), tile, strict=True))
            entry = {"dtype": row["dtype"], "d": d, "causal": causal, "tile": list(tile)}
            try:
                ours = functools.partial(_launch, q, k, v, causal, scale, config)
                difference = (ours().float() - expected).abs()
                entry["agrees"] = bool((difference <= AGREEMENT * (1.0 + expected.abs())).all())
                entry["ms"] = round(median_ms(ours), 4)
                entry["ratio"] = round(row["torch_flash_ms"] / entry["ms"], 3)
                entry["tflops"] = round(attention_flops(d, causal) / entry["ms"] / 1e9, 1)
            except Exception as error:  # e.g. out of shared memory for this tile
                entry["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            results.append(entry)
            print(
                f"  sweep {row['dtype']} d={d} causal={causal} tile={tile}: "
                f"{entry.get('ratio', entry.get('error'))}",
                flush=True,
            )
    return results


def best_tiles(sweep: list[dict]) -> list[dict]:
    """The fastest agreeing tile of the sweep for each shape, printed and returned."""
    best = {}
    for entry in sweep:
        key = (entry["dtype"], entry["d"], entry["causal"])
        if entry.get("agrees") and (key not in best or entry["ms"] < best[key]["ms"]):
            best[key] = entry
    print("\nfastest tile per shape (BLOCK_M, BLOCK_N, num_warps, num_stages):")
    for (dtype, d, causal), entry in sorted(best.items()):
        print(
            f"  {dtype:>9} d={d:<4} causal={causal!s:<5} {tuple(entry['tile'])}: "
            f"{entry['ms']:.3f} ms, {entry['tflops']} TFLOP/s, ratio {entry['ratio']}"
        )
    return list(best.values())


def print_table(rows) -> None:
    header = (
        f"{'dtype':>9} {'d':>4} {'causal':>6} {'flash ms':>9} {'torch ms':>9} "
        f"{'flash TF/s':>10} {'torch TF/s':>10} {'ratio':>6} {'max diff':>9}  best config"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        if "error" in r:
            last_line = r["error"].strip().splitlines()[-1]
            print(f"{r['dtype']:>9} {r['d']:>4} {str(r['causal']):>6}  failed: {last_line}")
            continue
        print(
            f"{r['dtype']:>9} {r['d']:>4} {str(r['causal']):>6} "
            f"{r['flash_ms']:>9.3f} {r['torch_flash_ms']:>9.3f} "
            f"{r['flash_tflops']:>10.1f} {r['torch_flash_tflops']:>10.1f} "
            f"{r['ratio']:>6.2f} {r['max_abs_diff']:>9.2e}  "
            f"{r['best_config']}"
        )
    print(
        f"(ratio = torch time / flash time; target >= {TARGET_RATIO}; "
        f"B={BATCH}, H={HEADS}, N={SEQ_LEN})\n"
    )


if __name__ == "__main__":
    sys.exit(main())
