"""The masks added for chapter 19: prefix-LM and the additive (float) form of a boolean mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfattn_course.attention import scaled_dot_product_attention, softmax
from selfattn_course.masks import additive_mask, causal_mask, prefix_lm_mask


def test_prefix_lm_mask_by_hand():
    # prefix of 2: rows 0 and 1 see keys 0 and 1; row 2 sees 0..2; row 3 sees 0..3
    by_hand = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(prefix_lm_mask(4, 2), by_hand)


def test_prefix_lm_mask_without_prefix_is_causal_and_with_full_prefix_is_full():
    assert torch.equal(prefix_lm_mask(5, 0), causal_mask(5))
    assert bool(prefix_lm_mask(5, 5).all())


def test_prefix_lm_mask_rejects_a_prefix_longer_than_the_sequence():
    with pytest.raises(ValueError, match="prefix"):
        prefix_lm_mask(3, 4)


def test_additive_mask_is_zero_where_allowed_and_minus_inf_where_blocked():
    mask = torch.tensor([[True, False], [False, True]])
    expected = torch.tensor([[0.0, -np.inf], [-np.inf, 0.0]])
    result = additive_mask(mask)
    assert result.dtype == torch.float32
    assert torch.equal(result, expected)


def test_additive_mask_follows_the_kind_dtype_and_value_asked():
    numpy_result = additive_mask(np.array([True, False]), np.float64, blocked=-1e9)
    assert numpy_result.dtype == np.float64
    assert numpy_result.tolist() == [0.0, -1e9]
    assert additive_mask(torch.tensor([True]), torch.float64).dtype == torch.float64


def test_additive_mask_added_to_scores_equals_the_boolean_mask():
    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 6, 8, generator=generator).unbind(0)
    mask = causal_mask(6, align="top-left")
    boolean = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, bias=additive_mask(mask)), boolean
    )
    torch.testing.assert_close(
        F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask(mask)), boolean
    )


def test_additive_mask_of_an_all_blocked_row_gives_nan_in_a_plain_softmax_only():
    scores = torch.zeros(1, 3)
    blocked = torch.zeros(1, 3, dtype=torch.bool)
    assert bool(torch.softmax(scores + additive_mask(blocked), dim=-1).isnan().all())
    assert bool((softmax(scores, mask=blocked) == 0).all())


def test_additive_mask_rejects_a_float_mask():
    with pytest.raises(TypeError, match="boolean"):
        additive_mask(torch.zeros(2, 2))
