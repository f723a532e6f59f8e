"""`make bench`: time every attention variant over a grid of sequence lengths N.

Each (variant, N, causal) runs in its own process (``measure.py``), so that its peak memory is its
own. The script prints a table, and writes the results as JSON and as a log-log plot (time and
peak memory against N) to ``benchmarks/results/``. See ``benchmarks/README.md``.

    python benchmarks/run.py            # N = 1024 ... 8192, about 5-10 minutes on 2 CPU cores
    python benchmarks/run.py --quick    # N = 256 ... 1024, about 1 minute
    python benchmarks/run.py --backward # forward + backward (training): sdpa and chunked
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from variants import SLIDING_WINDOW, VARIANTS

HERE = Path(__file__).resolve().parent
FULL_LENGTHS = (1024, 2048, 4096, 8192)
QUICK_LENGTHS = (256, 512, 1024)
FULL_TIMING = ["--min-time", "1", "--min-runs", "5"]
QUICK_TIMING = ["--min-time", "0.2", "--min-runs", "3"]
MIB = 1 << 20


def main() -> None:
    args = parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lengths = args.lengths or (QUICK_LENGTHS if args.quick else FULL_LENGTHS)
    default_names = [name for name in VARIANTS if VARIANTS[name].training == args.backward]
    names = [
        name
        for name in (args.variants or default_names)
        if device == "cuda" or not VARIANTS[name].cuda_only
    ]
    common = [
        "--device",
        device,
        "--threads",
        str(args.threads),
        *(QUICK_TIMING if args.quick else FULL_TIMING),
    ]

    started = time.time()
    load_before = load_average()
    print(
        f"device {device} ({device_name(device)}), {args.threads} threads, "
        f"load average {load_before}",
        flush=True,
    )
    results, matmuls = sweep(
        names, lengths, common, args.rounds, args.timeout, matmul_per_length=not args.quick
    )
    # The fastest matmul counts: on a shared machine the slower ones were most likely disturbed.
    matmul = max(matmuls, key=lambda m: peak_gflops(m) if "error" not in m else 0.0)
    add_ratios(results, matmul)
    print()
    print(format_table(results))
    report = {
        "device": device,
        "device_name": device_name(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "quick": args.quick,
        "rounds": args.rounds,
        "sliding_window": SLIDING_WINDOW,
        "load_average": {"before": load_before, "after": load_average()},
        "wall_seconds": round(time.time() - started, 1),
        "matmul": matmul,
        "matmul_runs": matmuls,
        "results": results,
    }
    write_outputs(report, args.output_dir, device)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N in {QUICK_LENGTHS}, short timings")
    parser.add_argument("--lengths", type=int, nargs="+", help="override the grid of N")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="only these variants")
    parser.add_argument(
        "--backward",
        action="store_true",
        help="forward + backward (the *_fwd_bwd variants) instead of the forward alone",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if present")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch CPU threads (default: torch's default)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole sweep and keep each measurement's fastest median "
        "(for machines shared with other jobs)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    parser.add_argument("--output-dir", type=Path, default=HERE / "results")
    return parser.parse_args()


def sweep(names, lengths, common, rounds: int, timeout: float, *, matmul_per_length: bool):
    """Measure every variant at every length, causal and not, ``rounds`` times over.

    Returns, per (variant, N, causal), the measurement with the fastest median, and every run
    of the matmul ceiling: measured first, last and (``matmul_per_length``) before each length.
    """
    matmuls = []

    def measure_matmul() -> None:
        matmuls.append(run_worker(["--variant", "matmul", *common], timeout))
        print(f"matmul: {matmul_summary(matmuls[-1])}", flush=True)

    best: dict[tuple, dict] = {}
    for round_number in range(1, rounds + 1):
        if rounds > 1:
            print(f"round {round_number} of {rounds}", flush=True)
        for index, n in enumerate(lengths):
            if matmul_per_length or (round_number, index) == (1, 0):
                measure_matmul()
            for causal in (False, True):
                for name in names:
                    options = ["--variant", name, "--n", str(n), *(["--causal"] if causal else [])]
                    result = run_worker([*options, *common], timeout)
                    result.update(variant=name, n=n, causal=causal)
                    if "flops" in result:  # measure.py counts the forward's FLOPs
                        result["flops"] *= VARIANTS[name].flops_per_forward
                    print(
                        f"  {name:>15} N={n:<5} causal={causal!s:<5} {summary(result)}", flush=True
                    )
                    key = (n, causal, name)
                    if key not in best or median_seconds(result) < median_seconds(best[key]):
                        best[key] = result
    measure_matmul()
    return list(best.values()), matmuls


def run_worker(arguments: list[str], timeout: float) -> dict:
    """Run ``measure.py`` with ``arguments`` in a fresh process; its JSON, or ``{"error": ...}``."""
    command = [sys.executable, str(HERE / "measure.py"), *arguments]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if finished.returncode != 0:
        lines = (finished.stderr or finished.stdout).strip().splitlines() or ["(no output)"]
        reason = "killed (out of memory?)" if finished.returncode < 0 else lines[-1]
        return {"error": f"exit {finished.returncode}: {reason}"}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def add_ratios(results: list[dict], matmul: dict) -> None:
    """Add time and memory ratios to SDPA (same N and causal; forward + backward ones to SDPA's
    forward + backward), GFLOP/s and % of the matmul."""
    measured = {(r["variant"], r["n"], r["causal"]): r for r in results if "error" not in r}
    ceiling = peak_gflops(matmul) if "error" not in matmul else float("nan")
    for result in results:
        if "error" in result:
            continue
        result["gflops"] = median_gflops(result)
        result["percent_of_matmul"] = 100 * result["gflops"] / ceiling
        baseline = VARIANTS[result["variant"]].baseline
        reference = measured.get((baseline, result["n"], result["causal"]))
        if reference is not None:
            result["time_vs_sdpa"] = result["seconds"]["median"] / reference["seconds"]["median"]
            result["memory_vs_sdpa"] = result["peak_bytes"] / max(reference["peak_bytes"], 1)


COLUMNS = (  # title, width
    ("variant", 15),
    ("N", 5),
    ("causal", 6),
    ("time ms", 9),
    ("min ms", 9),
    ("x SDPA", 6),
    ("peak MiB", 8),
    ("x SDPA", 6),
    ("GFLOP/s", 7),
    ("% mm", 4),
    ("max err", 7),
)


def format_table(results: list[dict]) -> str:
    header = " ".join(f"{title:>{width}}" for title, width in COLUMNS)
    lines = [header, "-" * len(header)]
    order = list(VARIANTS)
    for r in sorted(results, key=lambda r: (r["causal"], r["n"], order.index(r["variant"]))):
        first = (r["variant"], r["n"], str(r["causal"]))
        if "error" in r:
            cells = [f"{value:>{width}}" for value, (_, width) in zip(first, COLUMNS, strict=False)]
            lines.append(" ".join(cells) + "  " + r["error"])
            continue
        values = (
            *first,
            f"{1e3 * r['seconds']['median']:.1f}",
            f"{1e3 * r['seconds']['min']:.1f}",
            f"{r['time_vs_sdpa']:.2f}" if "time_vs_sdpa" in r else "-",
            f"{r['peak_bytes'] / MIB:.1f}",
            f"{r['memory_vs_sdpa']:.2f}" if "memory_vs_sdpa" in r else "-",
            f"{r['gflops']:.1f}",
            f"{r['percent_of_matmul']:.0f}",
            f"{r['max_error']:.0e}",
        )
        lines.append(
            " ".join(f"{value:>{width}}" for value, (_, width) in zip(values, COLUMNS, strict=True))
        )
    return "\n".join(lines)


def write_outputs(report: dict, output_dir: Path, device: str) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = output_dir / f"bench-{device}-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {json_path}")
    png_path = stem.with_suffix(".png")
    plot(report, png_path)
    print(f"wrote {png_path}")


def plot(report: dict, path: Path) -> None:
    """Median time and peak memory against N, log-log, one column per causal setting."""
    import matplotlib

    matplotlib.use("Agg")
    from selfattn_course.plotting import loglog, new_figure

    results = [r for r in report["results"] if "error" not in r]
    lengths = sorted({r["n"] for r in report["results"]})
    names = list(dict.fromkeys(r["variant"] for r in results))
    fig, axes = new_figure(ncols=2, nrows=2, width=11, height=8)
    for column, causal in enumerate((False, True)):
        times, memory = {}, {}
        for name in names:
            by_n = {r["n"]: r for r in results if r["variant"] == name and r["causal"] == causal}
            times[name] = [by_n[n]["seconds"]["median"] if n in by_n else NAN for n in lengths]
            memory[name] = [
                by_n[n]["peak_bytes"] / MIB if n in by_n and by_n[n]["peak_bytes"] > 0 else NAN
                for n in lengths
            ]
        if not names:
            continue
        which = "causal" if causal else "full"
        loglog(
            lengths,
            times,
            ax=axes[0][column],
            xlabel="N",
            ylabel="median time (s)",
            title=f"time, {which}",
            slopes=(1, 2),
        )
        loglog(
            lengths,
            memory,
            ax=axes[1][column],
            xlabel="N",
            ylabel="peak extra memory (MiB)",
            title=f"memory, {which}",
            slopes=(1, 2),
        )
    fig.suptitle(
        f"attention on {report['device_name']}, {report['threads']} threads, "
        "float32, B=1, H=8, d=64"
    )
    fig.savefig(path, dpi=120)


NAN = float("nan")


def median_seconds(result: dict) -> float:
    return result["seconds"]["median"] if "error" not in result else float("inf")


def median_gflops(result: dict) -> float:
    return result["flops"] / result["seconds"]["median"] / 1e9


def peak_gflops(matmul: dict) -> float:
    """GFLOP/s of the matmul at its fastest run: the ceiling the variants are compared with."""
    return matmul["flops"] / matmul["seconds"]["min"] / 1e9


def matmul_summary(matmul: dict) -> str:
    if "error" in matmul:
        return f"failed: {matmul['error']}"
    size = matmul["n"]
    return (
        f"{peak_gflops(matmul):.1f} GFLOP/s at best, {median_gflops(matmul):.1f} at the "
        f"median (float32, ({size}, {size}) @ ({size}, {size}))"
    )


def summary(result: dict) -> str:
    if "error" in result:
        return result["error"]
    return (
        f"{1e3 * result['seconds']['median']:9.1f} ms  {result['peak_bytes'] / MIB:8.1f} MiB"
        f"  err {result['max_error']:.1e}"
    )


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
