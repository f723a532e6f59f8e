"""Chapter 26's graded tasks (selfattn_course/grading/tasks/ch26.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 26 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import pytest
import torch

from selfattn_course.grading.tasks import ch26


@pytest.mark.parametrize("shards", [1, 2, 3, 6])
def test_ring_attention_equals_torch_attention_for_any_number_of_shards(shards):
    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 6, 8, generator=generator, dtype=torch.float64).unbind(0)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(ch26.ring_attention(q, k, v, shards), expected)


def test_ring_attention_is_finite_for_scores_that_overflow_exp():
    generator = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(3, 1, 3, 4, generator=generator).unbind(0)
    q = q * 500.0  # scores of thousands: exp(score) is inf in float32
    result = ch26.ring_attention(q, k, v, shards=3)
    torch.testing.assert_close(result, torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_kept_blocks_band_counted_by_hand():
    # 4 blocks, window 1: rows keep 2, 3, 3, 2 tiles
    assert ch26.kept_blocks(4, 1, 0) == 10


def test_kept_blocks_global_rows_and_columns_counted_once():
    # 16 blocks, window 1: band 16·3 - 2 = 46; block 0 adds row 0 and column 0 outside the band,
    # 14 tiles each (columns/rows 2..15)
    assert ch26.kept_blocks(16, 1, 1) == 46 + 14 + 14


def test_kept_blocks_matches_a_loop_over_tiles():
    n, w, g = 20, 2, 3
    by_loop = sum(1 for i in range(n) for j in range(n) if abs(i - j) <= w or i < g or j < g)
    assert ch26.kept_blocks(n, w, g) == by_loop


def test_predicted_seconds_grows_by_the_two_thread_factor_per_doubling():
    times = ch26.THREAD_TIMES[2]
    growth = times[4096] / times[2048]
    assert ch26._predicted_seconds() == pytest.approx(times[4096] * growth)
    assert 3.5 < growth < 4.5  # the n² shape, as on one thread
