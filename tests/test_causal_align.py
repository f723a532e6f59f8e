"""Specification of ``causal_mask(..., align="bottom-right")`` in selfattn_course.masks.

References: torch's own lower-right causal bias
(``torch.nn.attention.bias.causal_lower_right``), ``torch.tril`` with diagonal ``Lk - Lq``, the
last ``Lq`` rows of the square causal mask, and a hand-written example. The queries are the last
``Lq`` of ``Lk`` positions (decoding with a KV cache), so query ``i`` sees keys ``0..i + Lk - Lq``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention.bias import causal_lower_right

from selfattn_course.masks import causal_mask

sizes_with_lk_at_least_lq = st.integers(0, 9).flatmap(
    lambda lq: st.tuples(st.just(lq), st.integers(lq, lq + 9))
)


def test_bottom_right_causal_mask_by_hand():
    # 2 queries, the last 2 of 4 positions: query 0 is position 2 (keys 0..2), query 1 is
    # position 3 (keys 0..3).
    expected = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(2, 4, align="bottom-right"), expected)


@settings(max_examples=25)
@given(sizes_with_lk_at_least_lq.filter(lambda sizes: sizes[0] > 0))
def test_bottom_right_causal_mask_equals_torch_causal_lower_right(sizes):
    lq, lk = sizes
    expected = causal_lower_right(lq, lk)._materialize()
    assert torch.equal(causal_mask(lq, lk, align="bottom-right"), expected)


@settings(max_examples=25)
@given(sizes_with_lk_at_least_lq)
def test_bottom_right_causal_mask_is_tril_with_diagonal_lk_minus_lq(sizes):
    lq, lk = sizes
    expected = torch.ones(lq, lk, dtype=torch.bool).tril(diagonal=lk - lq)
    assert torch.equal(causal_mask(lq, lk, align="bottom-right"), expected)


@settings(max_examples=25)
@given(sizes_with_lk_at_least_lq)
def test_bottom_right_causal_mask_is_the_last_lq_rows_of_the_square_causal_mask(sizes):
    lq, lk = sizes
    assert torch.equal(causal_mask(lq, lk, align="bottom-right"), causal_mask(lk)[lk - lq :])


@settings(max_examples=25)
@given(sizes_with_lk_at_least_lq)
def test_bottom_right_query_i_sees_exactly_i_plus_lk_minus_lq_plus_1_keys(sizes):
    lq, lk = sizes
    mask = causal_mask(lq, lk, align="bottom-right")
    assert mask.sum(dim=1).tolist() == [i + lk - lq + 1 for i in range(lq)]
    if lq:
        assert mask[-1].all()  # the newest query sees every key


@pytest.mark.parametrize("length", [0, 1, 5])
def test_bottom_right_equals_top_left_for_a_square_mask(length):
    assert torch.equal(causal_mask(length, align="bottom-right"), causal_mask(length))


def test_default_alignment_is_still_top_left():
    assert torch.equal(causal_mask(2, 4), causal_mask(2, 4, align="top-left"))
    assert torch.equal(causal_mask(2, 4), torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]]).bool())


@pytest.mark.parametrize("lq, lk", [(1, 6), (3, 7), (4, 4)])
def test_attention_with_a_bottom_right_mask_equals_torch_with_causal_lower_right(lq, lk):
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, lq, 4, generator=generator, dtype=torch.float64)
    k, v = (torch.randn(2, 3, lk, 4, generator=generator, dtype=torch.float64) for _ in range(2))
    ours = F.scaled_dot_product_attention(
        q, k, v, attn_mask=causal_mask(lq, lk, align="bottom-right")
    )
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(lq, lk))
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-12)


def test_bottom_right_mask_gives_the_last_rows_of_full_causal_attention():
    # Queries of the last 3 of 8 positions, against all 8 keys: the last 3 rows of is_causal.
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 8, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    mask = causal_mask(3, 8, align="bottom-right")
    last = F.scaled_dot_product_attention(q[:, :, 5:], k, v, attn_mask=mask)
    torch.testing.assert_close(last, full[:, :, 5:], atol=1e-12, rtol=1e-12)


def test_bottom_right_causal_mask_is_a_bool_tensor_on_the_requested_device(device):
    mask = causal_mask(2, 5, align="bottom-right", device=device)
    assert mask.dtype == torch.bool and mask.device == device and mask.shape == (2, 5)


def test_bottom_right_with_no_queries_is_empty():
    assert causal_mask(0, 4, align="bottom-right").shape == (0, 4)


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((3, 2), {"align": "bottom-right"}, ValueError, "needs lk >= lq"),
        ((3, 2), {"align": "bottom-right"}, ValueError, "got lq=3, lk=2"),
        ((2, 4), {"align": "bottom_right"}, ValueError, "got 'bottom_right'"),
        ((2,), {"align": "top-right"}, ValueError, "align must be 'top-left' or 'bottom-right'"),
        ((-1, 2), {"align": "bottom-right"}, ValueError, "lq must be >= 0, got -1"),
        ((2, 3.0), {"align": "bottom-right"}, TypeError, "lk must be an integer"),
    ],
)
def test_causal_mask_rejects_bad_alignment_or_sizes(args, kwargs, error, words):
    with pytest.raises(error) as info:
        causal_mask(*args, **kwargs)
    assert words in str(info.value)
