"""Measure one attention variant at one sequence length, in a fresh process; print one JSON line.

``run.py`` starts this script once per (variant, N, causal) so that each peak-memory figure
belongs to one variant alone: a process's peak memory only ever grows, and allocators keep
memory they have freed, so measuring several variants in one process would blur them.

What is measured, in this order:

1. inputs ``q, k, v`` of shape ``(B, H, N, d)``, float32, and a warm-up call (loads kernels,
   starts thread pools, compiles Triton kernels), all before the baseline;
2. peak memory of the first full-size call, above that baseline: on the CPU the process's peak
   resident set size (Linux ``VmHWM``, reset just before the call), on CUDA
   ``torch.cuda.max_memory_allocated``. So it counts the output and every temporary;
3. the max abs error of that output against a float64 reference on a subset of query rows;
4. the median time of repeated calls (after the warm-up ones).

``--variant matmul`` instead times one large float32 matrix product, the machine's practical
FLOP/s ceiling against which the attention variants are compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from variants import VARIANTS

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.measure import current_rss_bytes, process_peak_rss_bytes, reset_peak_rss

REFERENCE_ROWS = 256  # query rows checked against float64 (all rows would cost O(N²) memory)
WARMUP_LENGTH = 128


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.variant == "matmul":
        result = measure_matmul(device, args)
    else:
        result = measure_attention(device, args)
    result.update(variant=args.variant, device=args.device, threads=torch.get_num_threads())
    print(json.dumps(result))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, choices=[*VARIANTS, "matmul"])
    parser.add_argument("--n", type=int, default=4096, help="sequence length N")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-time", type=float, default=1.0, help="timed seconds, at least")
    parser.add_argument("--min-runs", type=int, default=5, help="timed calls, at least")
    parser.add_argument(
        "--max-time",
        type=float,
        default=30.0,
        help="stop timing after this many seconds (but after 3 calls at least)",
    )
    return parser.parse_args()


# --- attention ------------------------------------------------------------------------------------


def measure_attention(device: torch.device, args) -> dict:
    variant = VARIANTS[args.variant]
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (args.batch, args.heads, args.n, args.dim)
    q, k, v = (torch.randn(shape, generator=generator, device=device) for _ in range(3))

    def call(length: int | None = None):
        if length is None:
            return variant.run(q, k, v, args.causal)
        return variant.run(q[..., :length, :], k[..., :length, :], v[..., :length, :], args.causal)

    # On the CPU the warm-up stays small: memory it freed could be reused by the measured call
    # without showing in the resident set size. CUDA's allocator statistics are exact, so there
    # the warm-up is full size (and runs Triton's autotuning, which is keyed by the length).
    call(WARMUP_LENGTH if device.type == "cpu" else None)
    synchronize(device)
    out, peak_bytes = peak_memory_of(call, device)
    error = max_error(variant, q, k, v, out, args.causal)
    del out
    seconds = time_calls(call, device, args)
    flops = 4 * args.batch * args.heads * args.dim * variant.pairs(args.n, args.causal)
    return {
        "n": args.n,
        "causal": args.causal,
        "shape": list(shape),
        "seconds": seconds,
        "peak_bytes": peak_bytes,
        "max_error": error,
        "flops": flops,
    }


def peak_memory_of(call, device: torch.device):
    """``(result, bytes)``: the result of ``call()`` and its peak memory above the baseline."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        result = call()
        synchronize(device)
        return result, torch.cuda.max_memory_allocated(device) - baseline
    reset_peak_rss()
    baseline = current_rss_bytes()
    result = call()
    return result, process_peak_rss_bytes() - baseline


def max_error(variant, q, k, v, out, causal: bool) -> float:
    """Max abs difference from float64 attention on ``REFERENCE_ROWS`` evenly spaced query rows."""
    n = q.shape[-2]
    rows = torch.linspace(0, n - 1, min(n, REFERENCE_ROWS), device=q.device).round().long()
    allowed = variant.allowed(rows, n, causal)
    expected = scaled_dot_product_attention(
        q[..., rows, :].double(), k.double(), v.double(), allowed
    )
    return float((out[..., rows, :].double() - expected).abs().max())


# --- the matmul ceiling ---------------------------------------------------------------------------


def measure_matmul(device: torch.device, args) -> dict:
    """FLOP/s of a large square float32 matmul: 4096 on the CPU, 8192 on a GPU."""
    size = 8192 if device.type == "cuda" else 4096
    generator = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator, device=device) for _ in range(2))
    out = torch.empty(size, size, device=device)
    call = lambda: torch.mm(a, b, out=out)  # noqa: E731
    call()
    synchronize(device)
    seconds = time_calls(call, device, args)
    return {"n": size, "seconds": seconds, "flops": 2 * size**3}


# --- timing and memory helpers --------------------------------------------------------------------


def time_calls(call, device: torch.device, args) -> dict:
    """Median and min seconds, and the number of timed calls: at least ``min_runs`` calls and
    ``min_time`` seconds, unless ``max_time`` runs out first (but never fewer than 3 calls)."""
    times: list[float] = []
    while True:
        start = time.perf_counter()
        call()
        synchronize(device)
        times.append(time.perf_counter() - start)
        total = sum(times)
        enough = len(times) >= args.min_runs and total >= args.min_time
        if enough or (len(times) >= 3 and total >= args.max_time):
            break
    return {"median": statistics.median(times), "min": min(times), "runs": len(times)}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
