"""Chapter 28's graded tasks (selfattn_course/grading/tasks/ch28.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 28 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.tasks import ch28


def _qkv(lq, lk, d, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(shape, generator=generator, dtype=dtype)
        for shape in ((2, lq, d), (2, lk, d), (2, lk, d))
    )


def test_merge_blocks_equals_attention_over_all_the_keys():
    q, k, v = _qkv(4, 9, 8, seed=0)
    stats = ch28.block_statistics(q, k, v, split=4)
    torch.testing.assert_close(ch28.merge_blocks(**stats), scaled_dot_product_attention(q, k, v))


def test_merge_blocks_is_finite_and_exact_for_scores_in_the_hundreds():
    q, k, v = _qkv(3, 6, 8, seed=1)
    stats = ch28.block_statistics(q, k, v, split=2, score_scale=300.0)
    merged = ch28.merge_blocks(**stats)
    expected = scaled_dot_product_attention(q * 300.0, k, v)
    assert bool(torch.isfinite(merged).all())
    torch.testing.assert_close(merged, expected)


def test_merging_in_either_order_gives_the_same_result():
    q, k, v = _qkv(2, 5, 4, seed=2)
    s = ch28.block_statistics(q, k, v, split=3)
    torch.testing.assert_close(
        ch28.merge_blocks(s["out1"], s["lse1"], s["out2"], s["lse2"]),
        ch28.merge_blocks(s["out2"], s["lse2"], s["out1"], s["lse1"]),
    )


def test_gqa_cache_counted_by_hand():
    # 2 (keys and values) · 32 layers · 8 heads · 128 · 32768 tokens · 2 bytes = 2**32 bytes
    assert ch28.GQA_CACHE_GIB.expected == 2 * 32 * 8 * 128 * 32768 * 2 / 2**30 == 4.0
