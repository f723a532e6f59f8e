"""Chapter 30's graded tasks (selfattn_course/grading/tasks/ch30.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 30 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch30
from selfattn_course.masks import causal_mask


def test_fixed_attention_matches_torch_sdpa_with_a_causal_mask():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8, generator=generator) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ch30.fixed_attention(q, k, v, causal_mask(5)), expected)


def test_fixed_attention_gives_zero_for_a_query_with_no_allowed_key():
    q, k, v = torch.ones(1, 2, 4), torch.ones(1, 3, 4), torch.ones(1, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False]])
    out = ch30.fixed_attention(q, k, v, mask)
    torch.testing.assert_close(out[0, 0], torch.zeros(4))
    torch.testing.assert_close(out[0, 1], torch.ones(4))


def test_head_entropy_by_a_loop_over_rows():
    generator = torch.Generator().manual_seed(1)
    weights = torch.softmax(torch.randn(2, 3, 4, 5, generator=generator, dtype=torch.float64), -1)
    by_loop = torch.zeros(3, dtype=torch.float64)
    for b in range(2):
        for h in range(3):
            for i in range(4):
                by_loop[h] -= sum(float(w) * math.log(float(w)) for w in weights[b, h, i]) / 8
    torch.testing.assert_close(ch30.head_entropy(weights), by_loop)


def test_head_entropy_of_causal_rows_by_hand():
    # rows [1, 0] and [0.5, 0.5]: entropies 0 and log 2, mean log(2) / 2
    weights = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    torch.testing.assert_close(ch30.head_entropy(weights), torch.tensor([math.log(2) / 2]))


def test_unscaled_variance_matches_a_simulation():
    generator = torch.Generator().manual_seed(2)
    q, k = torch.randn(2, 200_000, ch30.HEAD_DIM, generator=generator)
    variance = float((q * k).sum(-1).var())
    assert abs(variance - ch30.UNSCALED_VARIANCE.expected) < 0.02 * ch30.HEAD_DIM
