"""Chapter 25's graded tasks (selfattn_course/grading/tasks/ch25.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 25 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch25


def test_additive_scores_equal_a_loop_over_query_key_pairs():
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 5, generator=generator), torch.randn(2, 4, 6, generator=generator)
    w_q, w_k = torch.randn(5, 7, generator=generator), torch.randn(6, 7, generator=generator)
    v_a = torch.randn(7, generator=generator)
    by_loop = torch.empty(2, 3, 4)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                by_loop[b, i, j] = v_a @ torch.tanh(q[b, i] @ w_q + k[b, j] @ w_k)
    torch.testing.assert_close(ch25.additive_scores(q, k, w_q, w_k, v_a), by_loop)


def test_additive_scores_by_hand():
    # a = 1, W_q = W_k = [[1]], v_a = [2]: s_ij = 2 tanh(q_i + k_j)
    q, k = torch.tensor([[0.5]]), torch.tensor([[0.0], [-0.5]])
    one = torch.tensor([[1.0]])
    expected = torch.tensor([[2 * math.tanh(0.5), 0.0]])
    torch.testing.assert_close(ch25.additive_scores(q, k, one, one, torch.tensor([2.0])), expected)


def test_grouped_query_attention_equals_torch_enable_gqa():
    inputs = ch25._gqa_inputs(batch=(2,), heads=8, kv_heads=2, lq=5, lk=6, d=8, seed=0)
    q, k, v = inputs["q"], inputs["k"], inputs["v"]
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    torch.testing.assert_close(ch25.grouped_query_attention(**inputs), expected)


def test_grouped_query_attention_gives_query_head_t_the_key_value_head_t_over_g():
    inputs = ch25._gqa_inputs(batch=(), heads=6, kv_heads=2, lq=3, lk=4, d=4, seed=1)
    out = ch25.grouped_query_attention(**inputs)
    for t in range(6):  # groups of g = 3: heads 0-2 use kv head 0, heads 3-5 kv head 1
        q, k, v = inputs["q"][t], inputs["k"][t // 3], inputs["v"][t // 3]
        expected = torch.softmax(q @ k.T / 2.0, dim=-1) @ v  # sqrt(4) = 2
        torch.testing.assert_close(out[t], expected)


def test_kv_cache_saving_by_hand():
    # multi-head: 2 · 32 layers · 32 heads · 128 · 8192 tokens · 2 bytes = 2**32 bytes = 4 GiB;
    # 8 key/value heads: a quarter of it, 1 GiB; saved: 3 GiB
    assert ch25._kv_cache_saving() == 3.0
