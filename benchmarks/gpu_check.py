"""Check and time the Triton flash-attention kernels on a CUDA machine, in one run of < 9 minutes.

    PYTHONPATH=. python3 benchmarks/gpu_check.py [OUTPUT_JSON] [--budget SECONDS] [--skip-tests]
                                                 [--sweep SECONDS] [--dry-run]

1. prints the GPU and the Python / torch / Triton / CUDA / cuDNN versions;
2. times ``selfattn_course.kernels.flash_attention`` -- forward, backward, and forward+backward --
   against torch's SDPA forced onto each of its fused backends, FlashAttention-2
   (``SDPBackend.FLASH_ATTENTION``), cuDNN (``CUDNN_ATTENTION``) and memory-efficient
   (``EFFICIENT_ATTENTION``), with ``torch.nn.attention.sdpa_kernel``. A backend that cannot run a
   shape (not built in, no GQA, ...) is recorded as skipped, with torch's reason. Shapes: N in
   {1024, 4096, 16384} with B·N = 16384 tokens, 16 query heads, d in {64, 128}, float16 and
   bfloat16, causal and not, and multi-head (h_kv = 16) or grouped-query (h_kv = 4, torch's
   ``enable_gqa=True``) attention: 48 shapes. Medians from ``triton.testing.do_bench`` (L2 flushed
   between calls; fewer repetitions at N = 16384). TFLOP/s count ``4·B·h·N²·d`` FLOPs for the
   forward (half of it causal), 2.5 times that for the backward (five matrix products to two),
   3.5 times for both. Each shape also records the tile the autotuner picked for each of our
   kernels (``best_config``) and how far our output and gradients are from torch's;
3. stops timing when ``--budget`` seconds (default 300) have passed, and records which shapes it
   skipped; the shapes run in an order that spreads what is left over (N = 16384 last);
4. runs the CUDA tests: ``tests/test_kernels.py`` and ``tests/test_flash_backward.py`` with
   ``-m gpu``, then every ``cuda`` case of the tests that take the ``device`` fixture;
5. with ``--sweep SECONDS``, also times each forward tile of :data:`SWEEP_TILES` at N = 4096;
6. writes everything as JSON to OUTPUT_JSON (default benchmarks/results/gpu.json) after each step,
   and prints a table of TFLOP/s.

``--dry-run`` exercises all of it on the CPU in seconds: Triton's interpreter
(``TRITON_INTERPRET=1``), tiny shapes, float16, wall-clock medians, no tests.

Needs only torch, triton, numpy and pytest. Exits 1 when a test fails or our outputs disagree
with torch's, 2 without a CUDA device (and no ``--dry-run``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
TOKENS, HEADS = 16384, 16  # B·N and the query heads of every timed shape
LENGTHS = (1024, 4096, 16384)
GQA_RATIO = 4  # h / h_kv of the grouped-query shapes
BACKENDS = ("flash", "cudnn", "efficient")  # torch's fused SDPA backends, in the table's order
PASSES = ("fwd", "bwd", "fwd+bwd")
FLOPS_PER_PASS = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}  # multiples of the forward's FLOPs
DEFAULT_BUDGET_S = 300
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
# (BLOCK_M, BLOCK_N, num_warps, num_stages) of the forward tried by --sweep; BLOCK_M must be a
# multiple of BLOCK_N.
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
AGREEMENT = 1e-2  # |ours - torch| <= AGREEMENT * (1 + |torch|): a few bfloat16 roundings
GRAD_AGREEMENT = 5e-2  # gradients sum many more rounded terms


@dataclasses.dataclass(frozen=True)
class Shape:
    """One timed configuration: q ``(batch, heads, n, d)``, k and v ``(batch, kv_heads, n, d)``."""

    n: int
    batch: int
    heads: int
    kv_heads: int
    d: int
    dtype: torch.dtype
    causal: bool

    def describe(self) -> dict:
        return {
            "n": self.n,
            "batch": self.batch,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "d": self.d,
            "dtype": str(self.dtype).removeprefix("torch."),
            "causal": self.causal,
        }

    def forward_flops(self) -> float:
        return 4 * self.batch * self.heads * self.n * self.n * self.d * (0.5 if self.causal else 1)


def shapes(dry_run: bool) -> list[Shape]:
    """Every shape, ordered so a run cut short by the budget has timed every kind of shape."""
    if dry_run:  # the interpreter: tiny, float16 (it cannot multiply bfloat16)
        return [
            Shape(n, 1, 4, kv_heads, 64, torch.float16, causal)
            for n in (32, 48)
            for kv_heads in (4, 1)
            for causal in (False, True)
        ]
    return [
        Shape(n, TOKENS // n, HEADS, kv_heads, d, dtype, causal)
        for n in LENGTHS
        for kv_heads in (HEADS, HEADS // GQA_RATIO)
        for d in (64, 128)
        for dtype in (torch.float16, torch.bfloat16)
        for causal in (False, True)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "output", nargs="?", default=str(REPO / "benchmarks" / "results" / "gpu.json")
    )
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS")
    parser.add_argument("--skip-tests", action="store_true", help="only time the kernels")
    parser.add_argument("--sweep", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--dry-run", action="store_true", help="CPU, interpreter, tiny shapes")
    options = parser.parse_args()
    if options.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton

    started = time.perf_counter()
    output = Path(options.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(), "dry_run": options.dry_run}
    for key, value in report["environment"].items():
        print(f"{key:>10}: {value}")
    if not torch.cuda.is_available() and not options.dry_run:
        print("no CUDA device: nothing to check (--dry-run exercises this script on the CPU)")
        return 2
    device = "cpu" if options.dry_run else "cuda"

    rows, skipped = [], []
    for shape in shapes(options.dry_run):
        if time.perf_counter() - started > options.budget:
            skipped.append(shape.describe())
            continue
        rows.append(time_or_report(shape, device))
        report["timings"], report["skipped_for_time"] = rows, skipped
        save(report, output)  # after each shape, so a run cut short keeps what it measured
    report["timings"], report["skipped_for_time"] = rows, skipped
    report["benchmarks"] = forward_rows(rows)  # the forward at one N, as earlier versions wrote
    if skipped:
        print(f"budget of {options.budget:.0f} s spent: {len(skipped)} shapes not timed")
    print_table(rows)
    save(report, output)

    if options.skip_tests or options.dry_run:
        report["tests"] = {"skipped": True}
    else:
        report["tests"] = run_cuda_tests()
    save(report, output)
    if options.sweep > 0 and not options.dry_run:
        report["sweep"] = sweep_tiles(options.sweep)

    timed = [row for row in rows if "error" not in row]
    agree = len(timed) == len(rows) and all(row["agrees"] for row in timed)
    tests_ok = bool(
        report["tests"].get("skipped")
        or all(run["returncode"] in (0, 5) for run in report["tests"]["runs"])
    )  # 5: nothing selected
    report["summary"] = {
        "tests_passed": None if report["tests"].get("skipped") else tests_ok,
        "shapes_timed": len(timed),
        "shapes_failed": len(rows) - len(timed),
        "shapes_skipped_for_time": len(skipped),
        "all_timed_shapes_agree_with_torch": agree,
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
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu": None,
    }
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        info["gpu"] = f"{torch.cuda.get_device_name()} (sm_{major}{minor})"
    return info


# --- timing ---------------------------------------------------------------------------------


def inputs(shape: Shape, device: str):
    """q, k, v (requiring grad) and an output gradient, standard normal in the shape's dtype."""
    generator = torch.Generator(device=device).manual_seed(0)

    def draw(heads):
        return torch.randn(
            shape.batch, heads, shape.n, shape.d, device=device, generator=generator
        ).to(shape.dtype)

    q, k, v = draw(shape.heads), draw(shape.kv_heads), draw(shape.kv_heads)
    grad_out = draw(shape.heads)
    return [x.requires_grad_() for x in (q, k, v)], grad_out


def ours(shape: Shape):
    from selfattn_course.kernels import flash_attention

    return functools.partial(
        flash_attention, causal=shape.causal, enable_gqa=shape.kv_heads != shape.heads
    )


def torch_backend(name: str, shape: Shape):
    """torch's SDPA restricted to one backend (it raises if that backend cannot run a call)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }[name]

    def attention(q, k, v):
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=shape.causal, enable_gqa=shape.kv_heads != shape.heads
            )

    return attention


def time_passes(attention, tensors, grad_out, repetitions_ms: float) -> dict:
    """Median milliseconds of the forward, the backward alone, and both, of ``attention``."""
    out = attention(*tensors)  # also compiles and autotunes, outside the timed calls
    out.backward(grad_out, retain_graph=True)

    def forward():
        with torch.no_grad():
            return attention(*tensors)

    def backward():  # the same graph each time: retain_graph keeps its saved tensors
        torch.autograd.grad(out, tensors, grad_out, retain_graph=True)

    def forward_backward():
        torch.autograd.grad(attention(*tensors), tensors, grad_out)

    return {
        name: round(median_ms(fn, repetitions_ms), 4)
        for name, fn in zip(PASSES, (forward, backward, forward_backward), strict=True)
    }


def median_ms(fn, repetitions_ms: float) -> float:
    """Median time of ``fn()``: ``triton.testing.do_bench`` on CUDA (CUDA events, L2 flushed),
    wall-clock on the CPU (the dry run)."""
    if torch.cuda.is_available():
        import triton.testing

        return triton.testing.do_bench(
            fn, warmup=repetitions_ms / 4, rep=repetitions_ms, return_mode="median"
        )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def differences(shape: Shape, device: str, reference_backend: str) -> dict:
    """Largest |ours - torch| of the output and the three gradients, relative to 1 + |torch|."""
    tensors, grad_out = inputs(shape, device)
    copies = [x.detach().clone().requires_grad_() for x in tensors]
    out = ours(shape)(*tensors)
    out.backward(grad_out)
    expected = torch_backend(reference_backend, shape)(*copies)
    expected.backward(grad_out)
    result = {}
    for name, got, want, bound in (
        ("out", out, expected, AGREEMENT),
        *(
            (f"d{x}", a.grad, b.grad, GRAD_AGREEMENT)
            for x, a, b in zip("qkv", tensors, copies, strict=True)
        ),
    ):
        gap = (got.detach().float() - want.detach().float()).abs()
        result[name] = float((gap / (1.0 + want.detach().float().abs())).max())
        result[f"{name}_ok"] = result[name] <= bound
    return result


def best_configs(device: str) -> dict:
    """The tile each of our kernels ran with last: the autotuner's pick on CUDA."""
    from selfattn_course.kernels import _flash_bwd, _flash_fwd

    if device != "cuda":
        return {
            "fwd": f"interpreter: {_flash_fwd.INTERPRETER_CONFIG}",
            "dkdv": f"interpreter: {_flash_bwd.INTERPRETER_DKDV_CONFIG}",
            "dq": f"interpreter: {_flash_bwd.INTERPRETER_DQ_CONFIG}",
        }
    dkdv, dq = _flash_bwd.autotuned_kernels()
    return {
        name: str(getattr(kernel, "best_config", None))
        for name, kernel in (("fwd", _flash_fwd.autotuned_kernel()), ("dkdv", dkdv), ("dq", dq))
    }


def time_shape(shape: Shape, device: str) -> dict:
    """One row: milliseconds and TFLOP/s of each pass for ours and each torch backend."""
    repetitions_ms = 60 if shape.n >= 16384 else 100
    tensors, grad_out = inputs(shape, device)
    row = {**shape.describe(), "ms": {}, "tflops": {}, "unavailable": {}}
    tune_started = time.perf_counter()
    row["ms"]["ours"] = time_passes(ours(shape), tensors, grad_out, repetitions_ms)
    row["compile_tune_and_time_seconds"] = round(time.perf_counter() - tune_started, 1)
    row["best_config"] = best_configs(device)
    for name in BACKENDS:
        try:
            row["ms"][name] = time_passes(
                torch_backend(name, shape), tensors, grad_out, repetitions_ms
            )
        except RuntimeError as error:  # "No available kernel": not built in, or not this shape
            reason = str(error).strip().splitlines()
            row["unavailable"][name] = reason[0][:300] if reason else type(error).__name__
    flops = shape.forward_flops()
    for name, times in row["ms"].items():
        row["tflops"][name] = {
            p: round(flops * FLOPS_PER_PASS[p] / ms / 1e9, 1) for p, ms in times.items()
        }
    reference = next((name for name in BACKENDS if name in row["ms"]), None)
    if reference is None:
        row["agrees"] = True  # nothing to compare with; the tests check correctness
        row["compared_with"] = None
    else:
        row["compared_with"] = reference
        row["max_rel_diff"] = differences(shape, device, reference)
        row["agrees"] = all(v for k, v in row["max_rel_diff"].items() if k.endswith("_ok"))
    print(
        f"timed {row['dtype']} d={shape.d} causal={shape.causal} N={shape.n} "
        f"h/h_kv={shape.heads}/{shape.kv_heads}: ours fwd+bwd "
        f"{row['tflops']['ours']['fwd+bwd']} TFLOP/s",
        flush=True,
    )
    return row


def time_or_report(shape: Shape, device: str) -> dict:
    """:func:`time_shape`, or the error it raised (so one failing shape does not hide the rest)."""
    try:
        return time_shape(shape, device)
    except Exception:
        print(f"{shape} failed:\n{traceback.format_exc()}", flush=True)
        return {**shape.describe(), "error": traceback.format_exc()}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def forward_rows(rows: list[dict]) -> list[dict]:
    """The multi-head forward at N = 4096 against torch's flash backend, in the format of the
    earlier ``gpu_check.json`` files (which chapter 28 reads from ``benchmarks/recorded/``).
    One difference: ``max_abs_diff`` is now ``max |ours - torch| / (1 + |torch|)``."""
    n = 4096 if any(row["n"] == 4096 for row in rows) else max((r["n"] for r in rows), default=0)
    result = []
    for row in rows:
        if "error" in row or row["n"] != n or row["kv_heads"] != row["heads"]:
            continue
        if "flash" not in row["ms"]:
            continue
        ours_ms, theirs_ms = row["ms"]["ours"]["fwd"], row["ms"]["flash"]["fwd"]
        result.append(
            {
                "dtype": row["dtype"],
                "d": row["d"],
                "causal": row["causal"],
                "shape": [row["batch"], row["heads"], row["n"], row["d"]],
                "flash_ms": ours_ms,
                "torch_flash_ms": theirs_ms,
                "flash_tflops": row["tflops"]["ours"]["fwd"],
                "torch_flash_tflops": row["tflops"]["flash"]["fwd"],
                "ratio": round(theirs_ms / ours_ms, 3),
                "max_abs_diff": row.get("max_rel_diff", {}).get("out"),
                "agrees": row["agrees"],
                "best_config": row["best_config"]["fwd"],
            }
        )
    return result


def print_table(rows: list[dict]) -> None:
    """TFLOP/s of each pass, ours then each torch backend ('-': not available for the shape)."""
    columns = [("ours", p) for p in PASSES] + [(b, p) for b in BACKENDS for p in PASSES]
    header = f"{'dtype':>8} {'d':>3} {'causal':>6} {'N':>5} {'h/hkv':>5} " + " ".join(
        f"{(b[:5] + ' ' + p):>13}" for b, p in columns
    )
    print("\nTFLOP/s (fwd: 4·B·h·N²·d FLOPs, half if causal; bwd 2.5x, fwd+bwd 3.5x that)")
    print(header + "\n" + "-" * len(header))
    for row in rows:
        head = (
            f"{row['dtype']:>8} {row['d']:>3} {str(row['causal']):>6} {row['n']:>5} "
            f"{row['heads']:>2}/{row['kv_heads']:<2}"
        )
        if "error" in row:
            print(f"{head}  failed: {row['error'].strip().splitlines()[-1]}")
            continue
        cells = [row["tflops"].get(b, {}).get(p) for b, p in columns]
        print(head + " " + " ".join(f"{'-' if c is None else c:>13}" for c in cells))
    notes = {(name, reason) for row in rows for name, reason in row.get("unavailable", {}).items()}
    for name, reason in sorted(notes):
        print(f"  {name} skipped on some shapes: {reason}")
    print()


# --- tests and the tile sweep ---------------------------------------------------------------


def run_cuda_tests() -> dict:
    """The kernels' CUDA tests, then the CUDA cases of the device-fixture tests, each in a child."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    kernel_tests = ["tests/test_kernels.py", "tests/test_flash_backward.py"]
    return {
        "runs": [
            run_pytest([*pytest, *kernel_tests, "-m", "gpu"]),
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


def sweep_tiles(budget_s: float) -> list[dict]:
    """Time every forward tile of SWEEP_TILES at N = 4096, multi-head, for up to budget_s."""
    from selfattn_course.kernels.flash_attention import _launch_forward

    started = time.perf_counter()
    results = []
    for shape in shapes(dry_run=False):
        if shape.n != 4096 or shape.kv_heads != shape.heads:
            continue
        (q, k, v), _ = inputs(shape, "cuda")
        q3, k3, v3 = (x.detach().flatten(0, 1) for x in (q, k, v))
        for tile in SWEEP_TILES:
            if time.perf_counter() - started > budget_s:
                print(f"sweep budget of {budget_s:.0f} s spent", flush=True)
                return results
            config = dict(zip(("BLOCK_M", "BLOCK_N", "num_warps", "num_stages"), tile, strict=True))
            entry = {**shape.describe(), "tile": list(tile)}
            try:
                run = functools.partial(
                    _launch_forward, q3, k3, v3, 1, shape.causal, shape.d**-0.5, config
                )
                entry["ms"] = round(median_ms(run, 100), 4)
                entry["tflops"] = round(shape.forward_flops() / entry["ms"] / 1e9, 1)
            except Exception as error:  # e.g. out of shared memory for this tile
                entry["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            results.append(entry)
            print(f"  sweep {shape.describe()} tile={tile}: {entry.get('tflops')}", flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
