"""Timing and peak memory of one call, as the chapters and ``benchmarks/`` measure them.

Time: a call is run ``warmup`` times first (thread pools start, caches fill, kernels load), then
``repeats`` times; :func:`best_time` keeps the fastest run (the least disturbed by the rest of
the machine), :func:`median_time` the median (the typical run). On a GPU, synchronise inside
``fn`` (kernels are asynchronous); the chapters time the CPU.

Memory, two ways, each seeing something different:

- :func:`peak_traced_bytes`: Python's ``tracemalloc`` sees every allocation made through Python's
  allocator, NumPy arrays included (not torch's), exactly, to the byte;
- :func:`peak_rss_bytes`: the growth of the process's peak resident memory during the call
  (Linux ``VmHWM``, reset just before), which sees everything, torch's CPU tensors included, but
  at page granularity and after the allocator's own caching: use it for megabytes, not bytes.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable


def best_time(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> float:
    """The fastest of ``repeats`` runs of ``fn()``, in seconds, after ``warmup`` runs."""
    return min(_times(fn, repeats, warmup))


def median_time(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """The median of ``repeats`` runs of ``fn()``, in seconds, after ``warmup`` runs."""
    return statistics.median(_times(fn, repeats, warmup))


def peak_traced_bytes(fn: Callable, *args, **kwargs) -> int:
    """Peak bytes allocated through Python's allocator while ``fn(*args, **kwargs)`` runs.

    Counts NumPy arrays and Python objects (the result included, the inputs not); torch tensors
    are invisible to it (use :func:`peak_rss_bytes`). Raises ``RuntimeError`` if tracemalloc is
    already tracing (nested measurements would be wrong).
    """
    if tracemalloc.is_tracing():
        raise RuntimeError("peak_traced_bytes: tracemalloc is already tracing")
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def peak_rss_bytes(fn: Callable, *args, **kwargs) -> int:
    """Growth of the process's peak resident memory while ``fn(*args, **kwargs)`` runs, in bytes.

    On Linux the peak counter is reset to the current resident size just before the call, so the
    result is the call's own peak above what was resident then (its temporaries and result).
    Memory the allocator kept from earlier calls is reused without growing the resident size, so
    measure each variant first in a fresh process, or larger sizes after smaller ones. Without
    ``/proc`` (macOS) only growth beyond the process's earlier peak shows.
    """
    reset_peak_rss()
    before = current_rss_bytes()
    fn(*args, **kwargs)
    return max(process_peak_rss_bytes() - before, 0)


def reset_peak_rss() -> None:
    """Reset Linux's peak-RSS counter (``VmHWM``) to the current RSS; elsewhere, do nothing."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def current_rss_bytes() -> int:
    """The process's resident memory now (Linux ``VmRSS``), in bytes."""
    return _proc_status_kib("VmRSS") * 1024 if _has_proc() else process_peak_rss_bytes()


def process_peak_rss_bytes() -> int:
    """The process's peak resident memory (Linux ``VmHWM``, else ``ru_maxrss``), in bytes."""
    if _has_proc():
        return _proc_status_kib("VmHWM") * 1024
    # ru_maxrss is in KiB on Linux and in bytes on macOS; it never resets.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _times(fn: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}"
        )
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _has_proc() -> bool:
    return os.path.exists("/proc/self/status")


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")
