"""split_heads / merge_heads: the reshapes of multi-head attention, against hand-worked cases and
against what nn.MultiheadAttention computes per head."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from selfattn_course.attention import merge_heads, split_heads


def test_split_heads_by_hand_gives_each_head_a_block_of_features():
    x = torch.arange(8.0).reshape(1, 2, 4)  # 2 tokens [0..3] and [4..7], 2 heads of width 2
    heads = split_heads(x, 2)
    assert heads.shape == (1, 2, 2, 2)
    assert heads[0, 0].tolist() == [[0.0, 1.0], [4.0, 5.0]]  # head 0: features 0, 1
    assert heads[0, 1].tolist() == [[2.0, 3.0], [6.0, 7.0]]  # head 1: features 2, 3


@given(
    batch=st.integers(1, 3),
    length=st.integers(1, 5),
    heads=st.integers(1, 4),
    head_dim=st.integers(1, 4),
)
def test_merge_heads_inverts_split_heads(batch, length, heads, head_dim):
    x = torch.randn(batch, length, heads * head_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(merge_heads(split_heads(x, heads)), x)


def test_split_heads_matches_the_heads_of_nn_multihead_attention():
    # torch's own per-head weights equal softmax(q_t k_tᵀ / √d_k) with q_t = split_heads(q)[:, t].
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True, bias=False).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    _, torch_weights = mha(x, x, x, average_attn_weights=False)
    w_q, w_k, _ = mha.in_proj_weight.chunk(3)
    q, k = split_heads(x @ w_q.T, 2), split_heads(x @ w_k.T, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # d_k = 4, √d_k = 2
    torch.testing.assert_close(weights, torch_weights)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: split_heads(torch.zeros(2, 3, 6), 4), "num_heads=4 must divide"),
        (lambda: split_heads(torch.zeros(3, 6), 2), "x must have shape (B, L, d_model)"),
        (lambda: merge_heads(torch.zeros(2, 3, 4)), "x must have shape (B, h, L, d_k)"),
    ],
)
def test_bad_shapes_are_refused_with_the_shape(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()
