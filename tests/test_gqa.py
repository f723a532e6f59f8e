"""Grouped-query attention in the reference: scaled_dot_product_attention(..., enable_gqa=True)
and heads.repeat_kv_heads, against torch's own enable_gqa and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course.attention import repeat_kv_heads, scaled_dot_product_attention
from selfattn_course.masks import causal_mask


def qkv(batch, heads, kv_heads, lq, lk, d, *, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, lq, d, generator=generator, dtype=dtype)
    k = torch.randn(batch, kv_heads, lk, d, generator=generator, dtype=dtype)
    v = torch.randn(batch, kv_heads, lk, d + 1, generator=generator, dtype=dtype)
    return q, k, v


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    kv_heads=st.sampled_from([1, 2, 3]),
    groups=st.sampled_from([1, 2, 4]),
    lq=st.integers(1, 6),
    lk=st.integers(1, 6),
    causal=st.booleans(),
)
def test_gqa_equals_torchs_enable_gqa(batch, kv_heads, groups, lq, lk, causal):
    q, k, v = qkv(batch, kv_heads * groups, kv_heads, lq, lk, 4)
    ours = scaled_dot_product_attention(q, k, v, causal=causal, enable_gqa=True)
    mask = causal_mask(lq, lk) if causal else None
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    if causal and lq > lk:  # rows with no key: ours gives 0, torch NaN
        rows = torch.arange(lq) < lk
        torch_out, ours = torch_out[..., rows, :], ours[..., rows, :]
    torch.testing.assert_close(ours, torch_out)


def test_query_head_t_uses_key_value_head_t_over_the_group_size():
    q, k, v = qkv(1, 6, 2, 3, 5, 4)
    out = scaled_dot_product_attention(q, k, v, enable_gqa=True)
    for head in range(6):
        alone = scaled_dot_product_attention(q[:, head], k[:, head // 3], v[:, head // 3])
        torch.testing.assert_close(out[:, head], alone)


def test_with_as_many_key_value_heads_as_query_heads_it_is_multi_head_attention():
    q, k, v = qkv(2, 4, 4, 3, 5, 8)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, enable_gqa=True),
        scaled_dot_product_attention(q, k, v),
    )


def test_numpy_in_numpy_out_with_a_padding_mask():
    q, k, v = qkv(2, 4, 1, 3, 5, 4)
    mask = np.array([[True] * 5, [True, True, False, False, False]])[:, None, None, :]
    ours = scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy(), mask, enable_gqa=True)
    assert isinstance(ours, np.ndarray)
    expected = scaled_dot_product_attention(q, k, v, torch.from_numpy(mask), enable_gqa=True)
    np.testing.assert_allclose(ours, expected.numpy())


def test_repeat_kv_heads_repeats_each_head_in_a_row():
    x = torch.arange(2 * 3 * 1).reshape(1, 2, 3, 1).float()  # heads [[0, 1, 2], [3, 4, 5]]
    repeated = repeat_kv_heads(x, 4)
    assert repeated.shape == (1, 4, 3, 1)
    assert repeated[0, :, :, 0].tolist() == [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]
    assert repeat_kv_heads(x, 2) is x


@pytest.mark.parametrize(
    "q_heads, kv_heads, v_heads, words",
    [(6, 4, 4, "must divide the query heads"), (4, 2, 1, "same number of heads")],
)
def test_bad_head_counts_raise_naming_the_shapes(q_heads, kv_heads, v_heads, words):
    q = torch.zeros(1, q_heads, 2, 4)
    k, v = torch.zeros(1, kv_heads, 3, 4), torch.zeros(1, v_heads, 3, 4)
    with pytest.raises(ValueError, match=words) as raised:
        scaled_dot_product_attention(q, k, v, enable_gqa=True)
    assert "(1, " in str(raised.value)


def test_repeat_kv_heads_refuses_a_head_count_that_does_not_divide():
    with pytest.raises(ValueError, match=r"x of shape \(1, 3, 2, 4\) has 3 heads"):
        repeat_kv_heads(torch.zeros(1, 3, 2, 4), 4)
