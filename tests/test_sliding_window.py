"""Specification of selfattn_course.attention.sliding_window_attention.

Query ``i`` sees keys ``j`` with ``|i - j| <= w`` (``i - w <= j <= i`` when causal); the result
must equal the reference attention with that band mask (and torch's fused attention), in NumPy
and torch, with gradients, while computing only the band: never an ``(Lq, Lk)`` array.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import random_qkv
from hypothesis import given
from hypothesis import strategies as st

from selfattn_course.attention import scaled_dot_product_attention, sliding_window_attention
from selfattn_course.attention.sliding_window import QUERY_BLOCK
from selfattn_course.masks import sliding_window_mask

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def band(lq: int, lk: int, window: int, causal: bool) -> np.ndarray:
    """``(Lq, Lk)`` boolean band written from the definition, one entry at a time."""
    allowed = np.zeros((lq, lk), dtype=bool)
    for i in range(lq):
        for j in range(lk):
            allowed[i, j] = (i - window <= j <= i) if causal else abs(i - j) <= window
    return allowed


@st.composite
def cases(draw):
    """Leading dims 0-2, lengths up to 2.5 query blocks (so blocks and their key ranges vary),
    Lq != Lk sometimes, windows from 0 to beyond the length, float32/float64."""
    batch = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2))))
    lq = draw(st.integers(1, 2 * QUERY_BLOCK + QUERY_BLOCK // 2))
    lk = draw(st.sampled_from([lq, draw(st.integers(1, 2 * QUERY_BLOCK + QUERY_BLOCK // 2))]))
    d, dv = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((*batch, lq, d)).astype(dtype)
    k = rng.standard_normal((*batch, lk, d)).astype(dtype)
    v = rng.standard_normal((*batch, lk, dv)).astype(dtype)
    window = draw(st.integers(0, 8) | st.integers(0, max(lq, lk) + 2))
    causal = draw(st.booleans())
    scale = draw(st.none() | st.floats(0.1, 2.0))
    return q, k, v, window, causal, scale


# --- equal to the reference with the band mask ----------------------------------------------------


@given(cases())
def test_matches_reference_with_band_mask_in_numpy_and_torch(case):
    q, k, v, window, causal, scale = case
    mask = band(q.shape[-2], k.shape[-2], window, causal)
    expected = scaled_dot_product_attention(q, k, v, mask, scale=scale)
    tolerance = TOLERANCE[q.dtype.type]

    out_numpy = sliding_window_attention(q, k, v, window, causal=causal, scale=scale)
    assert isinstance(out_numpy, np.ndarray) and out_numpy.dtype == q.dtype
    np.testing.assert_allclose(out_numpy, expected, atol=tolerance, rtol=0)

    out_torch = sliding_window_attention(
        *(torch.from_numpy(x) for x in (q, k, v)), window, causal=causal, scale=scale
    )
    np.testing.assert_allclose(out_torch.numpy(), expected, atol=tolerance, rtol=0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", [0, 5, 100, 300])
def test_matches_torch_fused_attention_with_the_course_mask(window, causal):
    q, k, v = random_qkv((2, 4, 300, 16), (2, 4, 300, 16), 8, dtype=torch.float32)
    mask = sliding_window_mask(300, window, causal=causal)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = sliding_window_attention(q, k, v, window, causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_window_zero_returns_the_values():
    # w = 0: query i sees only key i, whose weight is then 1, so out_i = v_i.
    q, k, v = random_qkv((3, 7, 4), (3, 7, 4), 5)
    for causal in (False, True):
        out = sliding_window_attention(q, k, v, 0, causal=causal)
        torch.testing.assert_close(out, v, atol=1e-15, rtol=0)


def test_window_covering_the_sequence_is_full_attention():
    q, k, v = random_qkv((2, 200, 4), (2, 200, 4), 4)
    for causal in (False, True):
        out = sliding_window_attention(q, k, v, 199, causal=causal)
        expected = scaled_dot_product_attention(q, k, v, causal=causal)
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_query_with_no_key_in_its_window_gives_zero():
    # Lq = 300, Lk = 10, w = 2: queries 12..299 are more than 2 positions past the last key 9.
    q, k, v = random_qkv((300, 4), (10, 4), 3)
    out = sliding_window_attention(q, k, v, 2)
    assert not torch.isnan(out).any()
    assert (out[12:] == 0).all()
    assert (out[:12] != 0).all()


def test_leading_dims_broadcast_between_q_and_kv():
    q, _, _ = random_qkv((2, 3, 20, 4), (20, 4), 4, seed=1)
    _, k, v = random_qkv((20, 4), (1, 3, 20, 4), 4, seed=2)
    out = sliding_window_attention(q, k, v, 3)
    expected = scaled_dot_product_attention(q, k, v, torch.from_numpy(band(20, 20, 3, False)))
    assert out.shape == (2, 3, 20, 4)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


# --- gradients and devices ------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal):
    q, k, v = random_qkv((2, QUERY_BLOCK + 3, 2), (2, QUERY_BLOCK + 3, 2), 2, requires_grad=True)

    def attention(q, k, v):
        return sliding_window_attention(q, k, v, 2, causal=causal)

    assert torch.autograd.gradcheck(attention, (q, k, v), fast_mode=True)


def test_runs_on_every_device(device):
    q, k, v = random_qkv((2, 150, 8), (2, 150, 8), 8, dtype=torch.float32)
    expected = sliding_window_attention(q, k, v, 7, causal=True)
    out = sliding_window_attention(*(x.to(device) for x in (q, k, v)), 7, causal=True)
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)


# --- only the band is computed --------------------------------------------------------------------


def test_memory_grows_with_the_window_not_with_the_length():
    # L = 4096, w = 16: an (L, L) float32 array would be 64 MiB; the band in blocks needs at
    # most QUERY_BLOCK x (QUERY_BLOCK + 2w) scores at a time, under 1 MiB.
    length, window = 4096, 16
    q, k, v = (x.numpy() for x in random_qkv((length, 8), (length, 8), 8, dtype=torch.float32))
    tracemalloc.start()
    try:
        sliding_window_attention(q, k, v, window)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20)  # 1/64 of the (L, L) array


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window, error, message",
    [
        (-1, ValueError, "window must be >= 0, got -1"),
        (1.5, TypeError, "window must be an integer"),
        (True, TypeError, "window must be an integer"),
        (None, TypeError, "window must be an integer"),
    ],
)
def test_bad_window_raises(window, error, message):
    q, k, v = random_qkv((3, 4), (3, 4), 4)
    with pytest.raises(error, match=message):
        sliding_window_attention(q, k, v, window)


def test_bad_inputs_raise_like_the_reference():
    q, k, v = random_qkv((2, 3, 4), (2, 5, 4), 4)
    with pytest.raises(ValueError, match="k and v must have the same sequence length"):
        sliding_window_attention(q, k, v[..., :4, :], 1)
    with pytest.raises(TypeError, match="one kind"):
        sliding_window_attention(q.numpy(), k, v, 1)
