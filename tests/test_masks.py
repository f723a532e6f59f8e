"""Tests for selfattn_course.masks: boolean masks, True = may attend / real token."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.masks import (
    causal_mask,
    combine,
    key_padding_to_attention,
    padding_mask,
    segment_mask,
    sliding_window_mask,
)

# --- padding_mask -------------------------------------------------------------------------


def test_padding_mask_marks_the_first_length_tokens_of_each_row():
    expected = np.array(
        [
            [True, True, True, False, False],  # length 3
            [True, True, True, True, True],  # length 5
        ]
    )
    np.testing.assert_array_equal(padding_mask([3, 5]), expected)


def test_padding_mask_of_a_list_is_numpy_and_of_a_tensor_is_torch(device):
    assert isinstance(padding_mask([1, 2]), np.ndarray)
    assert isinstance(padding_mask(np.array([1, 2])), np.ndarray)
    mask = padding_mask(torch.tensor([1, 2], device=device))
    assert isinstance(mask, torch.Tensor)
    assert mask.dtype == torch.bool and mask.device == device
    np.testing.assert_array_equal(mask.cpu().numpy(), padding_mask([1, 2]))


def test_padding_mask_max_len_pads_past_the_longest_sequence():
    mask = padding_mask([2, 0], max_len=4)
    np.testing.assert_array_equal(mask, [[True, True, False, False], [False, False, False, False]])


def test_padding_mask_of_an_empty_batch_is_empty():
    assert padding_mask(np.zeros(0, dtype=np.int64)).shape == (0, 0)


@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=6), st.integers(0, 4))
def test_padding_mask_row_sums_equal_lengths(lengths, extra):
    mask = padding_mask(torch.tensor(lengths), max_len=max(lengths) + extra)
    assert mask.shape == (len(lengths), max(lengths) + extra)
    assert mask.sum(dim=-1).tolist() == lengths


@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=6))
def test_padding_mask_rows_are_a_run_of_trues_then_falses(lengths):
    mask = padding_mask(np.array(lengths))
    # Once a row turns False it stays False: cumulative AND leaves it unchanged.
    np.testing.assert_array_equal(np.logical_and.accumulate(mask, axis=-1), mask)


def test_seed_padding_mask_is_the_future_part_of_a_causal_mask():
    # The seed Q&A's version: arange(seq_len)[:, None] < arange(max_len)[None, :]
    seq_len = max_len = 5
    seed = torch.arange(seq_len)[:, None] < torch.arange(max_len)[None, :]
    assert torch.equal(seed, ~causal_mask(seq_len))
    # A padding mask for lengths [3, 5] is something else: one row per sequence, no triangle.
    assert not torch.equal(padding_mask(torch.tensor([3, 5])), seed[:2])


@pytest.mark.parametrize(
    "lengths, max_len, error, words",
    [
        ([3, -1], None, ValueError, "non-negative, got a length of -1"),
        ([3, 6], 5, ValueError, "must not exceed max_len=5, got a length of 6"),
        (
            [[1, 2]],
            None,
            ValueError,
            "lengths must be 1-D (one length per sequence), got shape (1, 2)",
        ),
        (3, None, ValueError, "got shape ()"),
        ([1.0, 2.0], None, TypeError, "lengths must hold integers, got dtype float64"),
        ([True, False], None, TypeError, "lengths must hold integers"),
        ([1, 2], -1, ValueError, "max_len must be >= 0, got -1"),
        ([1, 2], 2.5, TypeError, "max_len must be an integer"),
    ],
)
def test_padding_mask_rejects_bad_input(lengths, max_len, error, words):
    with pytest.raises(error) as info:
        padding_mask(lengths, max_len)
    assert words in str(info.value)


# --- key_padding_to_attention -------------------------------------------------------------


def test_key_padding_to_attention_has_shape_b_1_1_l_and_repeats_valid():
    valid = padding_mask(torch.tensor([2, 4]))  # (2, 4)
    mask = key_padding_to_attention(valid)
    assert mask.shape == (2, 1, 1, 4)
    broadcast = mask.expand(2, 3, 5, 4)  # every head and query sees the same keys
    assert torch.equal(broadcast[1, 2, 4], valid[1])
    assert torch.equal(broadcast[0, 0, 0], valid[0])


def test_key_padding_to_attention_gives_padded_keys_zero_weight():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 4, 8, generator=generator) for _ in range(3))
    valid = padding_mask(torch.tensor([2, 4]))
    _, weights = scaled_dot_product_attention(
        q, k, v, key_padding_to_attention(valid), return_weights=True
    )
    assert torch.all(weights[0, :, :, 2:] == 0)  # sequence 0 has 2 real keys
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4))


def test_key_padding_to_attention_matches_torch_key_padding_mask():
    # nn.MultiheadAttention's key_padding_mask is True = pad, the opposite of ours.
    generator = torch.Generator().manual_seed(1)
    torch_layer = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8, generator=generator)
    valid = padding_mask(torch.tensor([3, 5]))
    expected, _ = torch_layer(x, x, x, key_padding_mask=~valid)
    q, k, v = F.linear(x, torch_layer.in_proj_weight, torch_layer.in_proj_bias).chunk(3, dim=-1)
    heads = lambda t: t.reshape(2, 5, 2, 4).transpose(1, 2)  # noqa: E731  (B, H, L, d)
    out = scaled_dot_product_attention(
        heads(q), heads(k), heads(v), key_padding_to_attention(valid)
    )
    out = torch_layer.out_proj(out.transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(out, expected)


def test_key_padding_to_attention_keeps_numpy_numpy():
    mask = key_padding_to_attention(padding_mask([1, 3]))
    assert isinstance(mask, np.ndarray) and mask.shape == (2, 1, 1, 3)


@pytest.mark.parametrize(
    "valid, error, words",
    [
        (np.ones((2, 3), dtype=np.int64), TypeError, "valid must be boolean"),
        (np.ones(3, dtype=bool), ValueError, "valid must have shape (B, L), got shape (3,)"),
        ([[True, False]], TypeError, "valid must be a numpy.ndarray or a torch.Tensor, got list"),
    ],
)
def test_key_padding_to_attention_rejects_bad_input(valid, error, words):
    with pytest.raises(error) as info:
        key_padding_to_attention(valid)
    assert words in str(info.value)


# --- causal_mask --------------------------------------------------------------------------


def test_causal_mask_is_lower_triangular_by_hand():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)


def test_causal_mask_with_more_keys_is_aligned_top_left():
    # Query i sees keys 0..i, also when Lk > Lq (torch's is_causal alignment).
    expected = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(causal_mask(2, 5), expected)


@pytest.mark.parametrize("lq, lk", [(4, 4), (3, 6), (6, 3)])
def test_causal_mask_matches_torch_is_causal(lq, lk):
    generator = torch.Generator().manual_seed(2)
    q = torch.randn(1, 2, lq, 4, generator=generator)
    k, v = (
        torch.randn(1, 2, lk, 4, generator=generator),
        torch.randn(1, 2, lk, 4, generator=generator),
    )
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ours = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(lq, lk))
    torch.testing.assert_close(ours, expected)


def test_causal_mask_is_a_torch_bool_tensor_on_the_requested_device(device):
    mask = causal_mask(3, 4, device=device)
    assert mask.dtype == torch.bool and mask.device == device and mask.shape == (3, 4)
    assert causal_mask(2).device == torch.device("cpu")


@given(st.integers(0, 9), st.integers(0, 9))
def test_causal_mask_allows_exactly_the_keys_up_to_the_query(lq, lk):
    mask = causal_mask(lq, lk)
    for i in range(lq):
        assert mask[i].sum().item() == min(i + 1, lk)


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((-1,), ValueError, "lq must be >= 0, got -1"),
        ((3, -2), ValueError, "lk must be >= 0, got -2"),
        ((2.0,), TypeError, "lq must be an integer"),
        ((True,), TypeError, "lq must be an integer"),
    ],
)
def test_causal_mask_rejects_bad_sizes(args, error, words):
    with pytest.raises(error) as info:
        causal_mask(*args)
    assert words in str(info.value)


# --- segment_mask -------------------------------------------------------------------------


def test_segment_mask_is_block_diagonal_for_packed_segments():
    mask = segment_mask([[0, 0, 1, 1, 1]])
    expected = np.zeros((1, 5, 5), dtype=bool)
    expected[0, :2, :2] = True  # segment 0: tokens 0, 1
    expected[0, 2:, 2:] = True  # segment 1: tokens 2, 3, 4
    np.testing.assert_array_equal(mask, expected)


def test_segment_mask_keeps_the_kind_and_device(device):
    ids = torch.tensor([[0, 1, 1]], device=device)
    mask = segment_mask(ids)
    assert mask.dtype == torch.bool and mask.device == device and mask.shape == (1, 3, 3)
    assert isinstance(segment_mask(np.array([[0, 1]])), np.ndarray)


@given(st.lists(st.lists(st.integers(0, 3), min_size=4, max_size=4), min_size=1, max_size=3))
def test_segment_mask_is_symmetric_and_true_on_the_diagonal(ids):
    mask = segment_mask(torch.tensor(ids))
    assert torch.equal(mask, mask.transpose(-2, -1))
    assert torch.all(torch.diagonal(mask, dim1=-2, dim2=-1))


@given(st.lists(st.integers(0, 3), min_size=1, max_size=8))
def test_segment_mask_is_transitive(ids):
    # "same segment" is an equivalence: if i~j and j~k then i~k.
    mask = segment_mask(np.array(ids)).astype(int)
    two_steps = (mask @ mask) > 0
    np.testing.assert_array_equal(two_steps, mask.astype(bool))


@pytest.mark.parametrize(
    "ids, error, words",
    [
        ([0.0, 1.0], TypeError, "segment_ids must hold integers, got dtype float64"),
        (3, ValueError, "segment_ids must have shape (..., L), got shape ()"),
    ],
)
def test_segment_mask_rejects_bad_input(ids, error, words):
    with pytest.raises(error) as info:
        segment_mask(ids)
    assert words in str(info.value)


# --- sliding_window_mask ------------------------------------------------------------------


def test_sliding_window_mask_is_a_band_by_hand():
    expected = torch.tensor(
        [
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [0, 1, 1, 1],
            [0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(sliding_window_mask(4, 1), expected)


def test_causal_sliding_window_sees_itself_and_window_keys_before():
    expected = torch.tensor(
        [
            [1, 0, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [0, 1, 1, 1],  # query 3 sees keys 1, 2, 3 with window 2
        ],
        dtype=torch.bool,
    )
    assert torch.equal(sliding_window_mask(4, 2, causal=True), expected)


def test_sliding_window_of_zero_is_the_identity():
    assert torch.equal(sliding_window_mask(5, 0), torch.eye(5, dtype=torch.bool))


def test_sliding_window_as_wide_as_the_sequence_is_full_or_causal_attention():
    assert torch.all(sliding_window_mask(5, 4))
    assert torch.equal(sliding_window_mask(5, 10, causal=True), causal_mask(5))


@given(st.integers(0, 10), st.integers(0, 12))
def test_sliding_window_is_the_and_of_two_triangles(length, window):
    # |i - j| <= w  <=>  j <= i + w  (a lower triangle shifted up)  and  j >= i - w  (an upper one)
    below = torch.ones(length, length, dtype=torch.bool).tril(window)
    above = torch.ones(length, length, dtype=torch.bool).triu(-window)
    assert torch.equal(sliding_window_mask(length, window), combine(below, above))
    assert torch.equal(
        sliding_window_mask(length, window, causal=True), combine(causal_mask(length), above)
    )


def test_sliding_window_mask_on_the_requested_device(device):
    mask = sliding_window_mask(3, 1, device=device)
    assert mask.device == device and mask.dtype == torch.bool


@pytest.mark.parametrize(
    "length, window, error, words",
    [
        (4, -1, ValueError, "window must be >= 0, got -1"),
        (-4, 1, ValueError, "length must be >= 0, got -4"),
        (4, 1.5, TypeError, "window must be an integer"),
    ],
)
def test_sliding_window_mask_rejects_bad_input(length, window, error, words):
    with pytest.raises(error) as info:
        sliding_window_mask(length, window)
    assert words in str(info.value)


# --- combine ------------------------------------------------------------------------------


def test_combine_of_padding_and_causal_is_a_decoder_mask():
    valid = padding_mask(torch.tensor([2, 3]))  # (2, 3)
    mask = combine(key_padding_to_attention(valid), causal_mask(3))  # (2, 1, 3, 3)
    assert mask.shape == (2, 1, 3, 3)
    expected_row0 = torch.tensor(
        [[1, 0, 0], [1, 1, 0], [1, 1, 0]], dtype=torch.bool
    )  # key 2 is padding
    assert torch.equal(mask[0, 0], expected_row0)
    assert torch.equal(mask[1, 0], causal_mask(3))


def test_combine_skips_none_and_returns_a_single_mask_unchanged():
    mask = causal_mask(3)
    assert combine(None, mask, None) is mask
    assert combine() is None
    assert combine(None, None) is None


@given(st.integers(1, 6), st.integers(0, 3), st.booleans())
def test_combine_is_commutative(length, window, causal):
    band = sliding_window_mask(length, window, causal=causal)
    lower = causal_mask(length)
    assert torch.equal(combine(band, lower), combine(lower, band))


def test_combine_works_on_numpy():
    mask = combine(padding_mask([1, 2])[:, None, :], np.tri(2, dtype=bool))
    np.testing.assert_array_equal(
        mask, [[[True, False], [True, False]], [[True, False], [True, True]]]
    )


def test_combine_names_the_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError) as info:
        combine(torch.ones(2, 5, dtype=torch.bool), None, torch.ones(3, 5, dtype=torch.bool))
    assert str(info.value) == "masks do not broadcast together: masks[0] (2, 5), masks[2] (3, 5)"


def test_combine_rejects_a_float_mask():
    with pytest.raises(TypeError, match=r"masks\[1\] must be boolean"):
        combine(causal_mask(2), torch.zeros(2, 2))


def test_combine_rejects_mixing_numpy_and_torch():
    with pytest.raises(TypeError, match="all NumPy or all torch"):
        combine(causal_mask(2), np.ones((2, 2), dtype=bool))
