"""Specification of selfattn_course.measure: timing and peak memory of one call.

References: ``time.sleep`` of a known duration (a run can only be slower than it), NumPy arrays
of a known ``nbytes`` (what tracemalloc must see), and a 64 MiB torch tensor written in full (every
page resident, so the process's peak resident memory must grow by about that much).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import torch

from selfattn_course.measure import (
    best_time,
    current_rss_bytes,
    median_time,
    peak_rss_bytes,
    peak_traced_bytes,
    process_peak_rss_bytes,
)

MiB = 2**20
SLEEP_S = 0.01


def sleep() -> None:
    time.sleep(SLEEP_S)


# --- time -----------------------------------------------------------------------------------------


def sleeps_of(durations: list[float]):
    """A function whose successive calls sleep for each of ``durations`` in turn."""
    remaining = iter(durations)
    return lambda: time.sleep(next(remaining))


def test_best_time_is_the_shortest_run_and_at_most_the_median():
    # Runs of 40, 10, 30, 20, 50 ms: the best is >= 10 ms, the median >= 30 ms; a run may only be
    # slower than its sleep, and 20 ms of scheduling noise would be needed to swap the order.
    durations = [0.04, 0.01, 0.03, 0.02, 0.05]
    best = best_time(sleeps_of(durations), repeats=5, warmup=0)
    median = median_time(sleeps_of(durations), repeats=5, warmup=0)
    assert 0.01 <= best < median
    assert median >= 0.03


def test_best_time_of_a_sleep_is_at_least_the_sleep():
    assert best_time(sleep, repeats=3, warmup=0) >= SLEEP_S


def test_median_time_of_a_sleep_is_at_least_the_sleep_and_near_it():
    median = median_time(sleep, repeats=3, warmup=0)
    assert SLEEP_S <= median < SLEEP_S + 0.5


def test_best_time_runs_warmup_then_repeats():
    calls = []
    best_time(lambda: calls.append(None), repeats=4, warmup=2)
    assert len(calls) == 6


def test_median_time_runs_warmup_then_repeats():
    calls = []
    median_time(lambda: calls.append(None), repeats=3, warmup=0)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "repeats, warmup, words",
    [(0, 1, "repeats=0, warmup=1"), (3, -1, "repeats=3, warmup=-1")],
)
@pytest.mark.parametrize("timer", [best_time, median_time])
def test_timers_reject_no_repeats_or_negative_warmup(timer, repeats, warmup, words):
    with pytest.raises(ValueError) as info:
        timer(sleep, repeats=repeats, warmup=warmup)
    assert "need repeats >= 1 and warmup >= 0" in str(info.value)
    assert words in str(info.value)


# --- memory traced by tracemalloc -----------------------------------------------------------------


@pytest.mark.parametrize("shape, dtype", [((10**6,), np.float64), ((300, 700), np.float32)])
def test_peak_traced_bytes_of_allocating_an_array_is_its_nbytes(shape, dtype):
    expected = np.empty(shape, dtype=dtype).nbytes
    peak = peak_traced_bytes(np.ones, shape, dtype=dtype)  # args and kwargs reach fn
    assert expected <= peak <= expected + 64 * 1024  # plus the array object and bookkeeping


def test_peak_traced_bytes_sees_a_temporary_freed_before_the_call_returns():
    def temporary_then_small():
        big = np.ones(500_000)  # 4 MB, freed when the function returns
        return float(big.sum())

    assert peak_traced_bytes(temporary_then_small) >= 4_000_000


def test_peak_traced_bytes_does_not_count_the_inputs():
    given = np.ones(10**6)  # 8 MB allocated before the measurement
    assert peak_traced_bytes(np.sum, given) < 64 * 1024


def test_peak_traced_bytes_refuses_to_nest_and_leaves_the_outer_trace_running():
    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match="already tracing"):
            peak_traced_bytes(np.ones, 10)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_peak_traced_bytes_stops_tracing_when_fn_raises():
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        peak_traced_bytes(fails)
    assert not tracemalloc.is_tracing()


# --- resident memory ------------------------------------------------------------------------------


def write_64_mib_tensor() -> float:
    tensor = torch.ones(64 * MiB // 4, dtype=torch.float32)  # ones: every page is written
    return float(tensor[-1])


def test_peak_rss_bytes_of_a_written_64_mib_tensor_is_at_least_60_mib():
    assert peak_rss_bytes(write_64_mib_tensor) >= 60 * MiB


def test_peak_rss_bytes_resets_the_peak_so_a_later_small_call_measures_small():
    peak_rss_bytes(write_64_mib_tensor)
    assert peak_rss_bytes(lambda: None) < 16 * MiB


def test_peak_rss_bytes_passes_args_and_kwargs():
    got = []
    peak_rss_bytes(lambda a, *, b: got.append((a, b)), 1, b=2)
    assert got == [(1, 2)]


def test_process_peak_rss_is_at_least_the_current_rss():
    assert process_peak_rss_bytes() >= current_rss_bytes() > 0
