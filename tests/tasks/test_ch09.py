"""Chapter 9's graded tasks (selfattn_course/grading/tasks/ch09.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 9 can: each reference
against an independent computation (by hand, the package, full causal attention), one property
per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.attention import kv_cache_bytes, scaled_dot_product_attention
from selfattn_course.costs import attention_layer_flops, gru_flops
from selfattn_course.grading.tasks import ch09


def test_kv_cache_bytes_per_token_by_hand():
    # 2 layers · 4 KV heads · (key 8 + value 8) numbers · 4 bytes = 512
    assert ch09.kv_cache_bytes_per_token(2, 4, 4, 8, 4) == 512


def test_kv_cache_bytes_per_token_is_the_packages_cache_of_one_token():
    for layers, heads, kv_heads, head_dim, size in [(80, 64, 8, 128, 2), (24, 16, 1, 64, 4)]:
        expected = kv_cache_bytes(1, layers, kv_heads, head_dim, size)
        assert ch09.kv_cache_bytes_per_token(layers, heads, kv_heads, head_dim, size) == expected


def test_at_the_equal_cost_position_an_attention_step_costs_a_gru_step():
    d, t = ch09.EQUAL_COST_WIDTH, ch09._equal_cost_position(ch09.EQUAL_COST_WIDTH)

    def attention_step(cache_length):
        # whole-sequence costs differ by one token: 8d² per token of projections, and the new
        # row of scores and mixing, 4n²d - 4(n-1)²d = 4(2n-1)d, is not 4nd; count it directly
        return attention_layer_flops(1, d) - 4 * d + 4 * cache_length * d

    assert attention_step(t) == gru_flops(1, d)
    assert attention_step(t - 1) < gru_flops(1, d) < attention_step(t + 1)


def test_cached_attention_equals_the_last_rows_of_full_causal_attention():
    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 10, 8, generator=generator, dtype=torch.float64)
    full = scaled_dot_product_attention(q, k, v, causal=True)  # (2, 3, 10, 8)
    for cached in [0, 4, 9]:
        out = ch09.cached_attention(
            q[..., cached:, :],
            k[..., :cached, :],
            v[..., :cached, :],
            k[..., cached:, :],
            v[..., cached:, :],
        )
        torch.testing.assert_close(out, full[..., cached:, :])


def test_cached_attention_by_hand():
    # scores: q·[1, 0]/√2 = 1/√2 and q·[0, 0]/√2 = 0; values 0 and 1
    out = ch09.cached_attention(
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[1.0]]),
    )
    by_hand = 1 / (math.exp(1 / math.sqrt(2)) + 1)
    torch.testing.assert_close(out, torch.tensor([[by_hand]]))


def test_steps_to_vanish_is_the_first_distance_below_the_fraction():
    t, rho, fraction = ch09.STEPS_TO_VANISH.expected, ch09.DECAY_PER_STEP, ch09.VANISHED_FRACTION
    assert t == 62  # ln(1e-6) / ln(0.8) = 61.9
    assert rho**t < fraction <= rho ** (t - 1)
