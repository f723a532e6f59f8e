"""Specification of selfattn_course.attention.KVCache and kv_cache_bytes.

References: torch's ``scaled_dot_product_attention`` with ``is_causal=True`` over the whole
sequence (decoding step by step with the cache must give its rows), ``torch.cat`` of everything
appended (what the cache must hold), tensors' own ``nbytes``, and hand counts of a known model's
cache.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course.attention import KVCache, kv_cache_bytes
from selfattn_course.masks import causal_mask

KiB, GiB = 2**10, 2**30
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def sequence(batch, heads, n, d, dv, *, dtype=torch.float64, device="cpu", seed=0):
    """Seeded q, k ``(B, H, n, d)`` and v ``(B, H, n, dv)``."""
    generator = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(batch, heads, n, d, generator=generator, dtype=dtype) for _ in range(2))
    v = torch.randn(batch, heads, n, dv, generator=generator, dtype=dtype)
    return q.to(device), k.to(device), v.to(device)


@st.composite
def decoding_cases(draw):
    batch, heads = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    n, d, dv = draw(st.integers(1, 8)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    capacity = draw(st.integers(1, 4))
    return batch, heads, n, d, dv, dtype, capacity, draw(st.integers(0, 2**16))


# --- decoding equals full causal attention ------------------------------------------------------


@settings(max_examples=25)
@given(decoding_cases())
def test_one_token_at_a_time_cached_attention_equals_the_rows_of_full_causal_attention(case):
    batch, heads, n, d, dv, dtype, capacity, seed = case
    q, k, v = sequence(batch, heads, n, d, dv, dtype=dtype, seed=seed)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    cache = KVCache(batch, heads, d, value_dim=dv, dtype=dtype, capacity=capacity)
    for t in range(n):
        keys, values = cache.append(k[:, :, t : t + 1], v[:, :, t : t + 1])
        step = F.scaled_dot_product_attention(q[:, :, t : t + 1], keys, values)
        torch.testing.assert_close(
            step, full[:, :, t : t + 1], atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype]
        )


@settings(max_examples=25)
@given(decoding_cases(), st.data())
def test_appends_of_several_tokens_with_a_bottom_right_mask_equal_full_causal_attention(case, data):
    batch, heads, n, d, dv, dtype, capacity, seed = case
    q, k, v = sequence(batch, heads, n, d, dv, dtype=dtype, seed=seed)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    cache = KVCache(batch, heads, d, value_dim=dv, dtype=dtype, capacity=capacity)
    start = 0
    while start < n:
        stop = data.draw(st.integers(start + 1, n))
        keys, values = cache.append(k[:, :, start:stop], v[:, :, start:stop])
        mask = causal_mask(stop - start, stop, align="bottom-right")  # new queries are the last
        chunk = F.scaled_dot_product_attention(q[:, :, start:stop], keys, values, attn_mask=mask)
        torch.testing.assert_close(
            chunk, full[:, :, start:stop], atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype]
        )
        start = stop


def test_the_prompt_in_one_append_then_one_token_equals_full_causal_attention():
    q, k, v = sequence(1, 2, 6, 4, 4)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    cache = KVCache(1, 2, 4, dtype=torch.float64)
    keys, values = cache.append(k[:, :, :5], v[:, :, :5])
    prompt = F.scaled_dot_product_attention(q[:, :, :5], keys, values, is_causal=True)
    keys, values = cache.append(k[:, :, 5:], v[:, :, 5:])
    last = F.scaled_dot_product_attention(q[:, :, 5:], keys, values)
    torch.testing.assert_close(torch.cat([prompt, last], dim=2), full, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cached_attention_in_half_precision_matches_full_causal_attention_in_float32(dtype):
    q, k, v = sequence(1, 2, 6, 8, 8, dtype=torch.float32)
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    cache = KVCache(1, 2, 8, dtype=dtype, capacity=2)
    for t in range(6):
        keys, values = cache.append(k[:, :, t : t + 1].to(dtype), v[:, :, t : t + 1].to(dtype))
        step = F.scaled_dot_product_attention(q[:, :, t : t + 1].to(dtype), keys, values)
        assert step.dtype == dtype and not torch.isnan(step).any()
        # bfloat16 keeps 8 significant bits (float16 11): a few hundredths on values of order 1.
        torch.testing.assert_close(step.float(), full[:, :, t : t + 1], atol=5e-2, rtol=5e-2)


# --- what the cache holds -----------------------------------------------------------------------


@settings(max_examples=25)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=8), st.integers(1, 5))
def test_growth_keeps_every_entry_appended_so_far(chunk_sizes, capacity):
    _, k, v = sequence(2, 3, sum(chunk_sizes), 4, 2)
    cache = KVCache(2, 3, 4, value_dim=2, dtype=torch.float64, capacity=capacity)
    start = 0
    for size in chunk_sizes:
        keys, values = cache.append(k[:, :, start : start + size], v[:, :, start : start + size])
        start += size
        assert len(cache) == start
        assert torch.equal(keys, k[:, :, :start]) and torch.equal(values, v[:, :, :start])
        assert torch.equal(cache.keys, keys) and torch.equal(cache.values, values)


def test_a_new_cache_is_empty():
    cache = KVCache(2, 3, 4, value_dim=5)
    assert len(cache) == 0 and cache.nbytes == 0
    assert cache.keys.shape == (2, 3, 0, 4) and cache.values.shape == (2, 3, 0, 5)


def test_buffer_doubles_when_full():
    # capacity 4, float32, B = H = 1, d_k = d_v = 2: 1·1·(2 + 2)·4 = 16 bytes a position.
    cache = KVCache(1, 1, 2, capacity=4)
    assert cache.capacity_bytes == 4 * 16
    cache.append(torch.zeros(1, 1, 5, 2), torch.zeros(1, 1, 5, 2))  # 5 > 4: doubles to 8
    assert cache.capacity_bytes == 8 * 16
    cache.append(torch.zeros(1, 1, 12, 2), torch.zeros(1, 1, 12, 2))  # 17 > 8: 16, then 32
    assert cache.capacity_bytes == 32 * 16 and cache.nbytes == 17 * 16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_the_cache_stores_each_dtype_exactly(dtype):
    _, k, v = sequence(1, 2, 5, 3, 4, dtype=dtype)
    cache = KVCache(1, 2, 3, value_dim=4, dtype=dtype, capacity=1)
    for t in range(5):
        keys, values = cache.append(k[:, :, t : t + 1], v[:, :, t : t + 1])
    assert keys.dtype == dtype and values.dtype == dtype
    assert torch.equal(keys, k) and torch.equal(values, v)


def test_the_cache_lives_on_its_device(device):
    _, k, v = sequence(1, 1, 3, 2, 2, dtype=torch.float32, device=device)
    cache = KVCache(1, 1, 2, device=device, capacity=1)
    keys, values = cache.append(k, v)
    assert keys.device == k.device and values.device == k.device
    assert torch.equal(keys, k) and torch.equal(values, v)


# --- bytes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, expected",
    # B = 2, H = 3, T = 5, d_k = 4, d_v = 6: 2·3·5·(4 + 6) = 300 numbers.
    [(torch.float16, 600), (torch.bfloat16, 600), (torch.float32, 1200), (torch.float64, 2400)],
)
def test_nbytes_is_b_h_t_times_dk_plus_dv_times_the_element_size_by_hand(dtype, expected):
    cache = KVCache(2, 3, 4, value_dim=6, dtype=dtype, capacity=1)
    cache.append(torch.zeros(2, 3, 5, 4, dtype=dtype), torch.zeros(2, 3, 5, 6, dtype=dtype))
    assert cache.nbytes == expected


@settings(max_examples=25)
@given(decoding_cases())
def test_nbytes_equals_the_bytes_of_the_stored_tensors(case):
    batch, heads, n, d, dv, dtype, capacity, _ = case
    _, k, v = sequence(batch, heads, n, d, dv, dtype=dtype)
    cache = KVCache(batch, heads, d, value_dim=dv, dtype=dtype, capacity=capacity)
    keys, values = cache.append(k, v)
    assert cache.nbytes == keys.nbytes + values.nbytes == k.nbytes + v.nbytes
    assert cache.capacity_bytes >= cache.nbytes


def test_kv_cache_bytes_of_a_32_layer_32_head_fp16_model_is_512_kib_a_token():
    # 2 (K and V) · 32 layers · 32 heads · 128 dims · 2 bytes = 524288 bytes = 512 KiB.
    assert kv_cache_bytes(1, 32, 32, 128, 2) == 512 * KiB
    assert kv_cache_bytes(4096, 32, 32, 128, 2) == 2 * GiB  # a 4k context: 2 GiB


def test_kv_cache_bytes_with_grouped_query_attention_shrinks_with_the_kv_heads():
    # 8 key/value heads instead of 32: a quarter; one (multi-query): 1/32.
    assert kv_cache_bytes(1, 32, 8, 128, 2) == 128 * KiB
    assert kv_cache_bytes(1, 32, 1, 128, 2) == 16 * KiB


def test_kv_cache_bytes_scale_with_batch():
    assert kv_cache_bytes(10, 2, 3, 4, 4, batch=5) == 5 * kv_cache_bytes(10, 2, 3, 4, 4)


@settings(max_examples=25)
@given(
    st.integers(0, 6),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from([torch.float16, torch.float32]),
    st.integers(1, 2),
)
def test_kv_cache_bytes_is_the_sum_of_one_kvcache_per_layer(tokens, layers, heads, d, dtype, batch):
    total = 0
    for _ in range(layers):
        cache = KVCache(batch, heads, d, dtype=dtype)
        cache.append(*(torch.zeros(batch, heads, tokens, d, dtype=dtype) for _ in range(2)))
        total += cache.nbytes
    element = torch.empty(0, dtype=dtype).element_size()
    assert kv_cache_bytes(tokens, layers, heads, d, element, batch=batch) == total


# --- bad input ------------------------------------------------------------------------------------


def test_append_rejects_keys_of_the_wrong_shape_naming_the_shape():
    cache = KVCache(2, 3, 4)
    with pytest.raises(ValueError) as info:
        cache.append(torch.zeros(2, 3, 1, 5), torch.zeros(2, 3, 1, 4))
    assert "k must have shape (B, H, t, d) = (2, 3, t, 4), got (2, 3, 1, 5)" in str(info.value)


def test_append_rejects_values_of_the_wrong_width():
    cache = KVCache(1, 1, 4, value_dim=2)
    with pytest.raises(
        ValueError, match=r"v must have shape .* = \(1, 1, t, 2\), got \(1, 1, 1, 4\)"
    ):
        cache.append(torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4))


def test_append_rejects_a_3d_tensor():
    with pytest.raises(ValueError, match=r"got \(3, 1, 4\)"):
        KVCache(1, 3, 4).append(torch.zeros(3, 1, 4), torch.zeros(3, 1, 4))


def test_append_rejects_k_and_v_of_different_lengths():
    with pytest.raises(ValueError, match=r"same number of positions, got k \(1, 1, 2, 4\)"):
        KVCache(1, 1, 4).append(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 3, 4))


def test_append_rejects_another_dtype():
    with pytest.raises(TypeError, match="k must be torch.float32 on cpu like the cache, got"):
        KVCache(1, 1, 4).append(
            torch.zeros(1, 1, 1, 4, dtype=torch.float64), torch.zeros(1, 1, 1, 4)
        )


def test_append_rejects_a_numpy_array():
    with pytest.raises(TypeError, match="k must be a torch.Tensor, got ndarray"):
        KVCache(1, 1, 4).append(np.zeros((1, 1, 1, 4)), torch.zeros(1, 1, 1, 4))


def test_a_failed_append_leaves_the_cache_unchanged():
    cache = KVCache(1, 1, 2)
    cache.append(torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))
    with pytest.raises(ValueError):
        cache.append(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 2))
    assert len(cache) == 1 and torch.equal(cache.keys, torch.ones(1, 1, 1, 2))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(batch=0, heads=1, head_dim=2), ValueError, "batch must be >= 1, got 0"),
        (dict(batch=1, heads=0, head_dim=2), ValueError, "heads must be >= 1, got 0"),
        (dict(batch=1, heads=1, head_dim=2.0), TypeError, "head_dim must be an integer"),
        (dict(batch=1, heads=1, head_dim=2, value_dim=0), ValueError, "value_dim must be >= 1"),
        (dict(batch=1, heads=1, head_dim=2, capacity=0), ValueError, "capacity must be >= 1"),
        (dict(batch=1, heads=1, head_dim=2, dtype=torch.int64), TypeError, "floating torch.dtype"),
        (dict(batch=1, heads=1, head_dim=2, dtype="float32"), TypeError, "got 'float32'"),
    ],
)
def test_kvcache_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        KVCache(**kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((-1, 32, 32, 128, 2), ValueError, "tokens must be >= 0, got -1"),
        ((1, 32, 32, 128, 2.0), TypeError, "bytes_per_number must be an integer"),
        ((1, 32, -8, 128, 2), ValueError, "kv_heads must be >= 0, got -8"),
    ],
)
def test_kv_cache_bytes_rejects_bad_arguments(args, error, words):
    with pytest.raises(error) as info:
        kv_cache_bytes(*args)
    assert words in str(info.value)
