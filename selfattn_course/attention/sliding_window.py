"""Sliding-window (local) attention: each query sees only the keys near it.

.. math::

    \\operatorname{out}_i = \\sum_{j \\in W(i)} \\operatorname{softmax}_j\\!\\left(
        q_i \\cdot k_j \\cdot s\\right) v_j, \\qquad
    W(i) = \\{\\, j : |i - j| \\le w \\,\\} \\quad\\text{or, causal:}\\quad
    W(i) = \\{\\, j : i - w \\le j \\le i \\,\\}

The result equals :func:`~selfattn_course.attention.scaled_dot_product_attention` with the band
mask of :func:`selfattn_course.masks.sliding_window_mask`, but that would compute all ``Lq · Lk``
scores and throw most of them away. Here the queries are taken :data:`QUERY_BLOCK` rows at a time,
and each block is compared only with the keys some query of the block can see: for queries
``i0..i1-1`` that is keys ``i0 - w .. i1 - 1 + w`` (``.. i1 - 1`` when causal). Work and memory are
O(L · (w + QUERY_BLOCK)) instead of O(L²): linear in the length for a fixed window. This is the
local attention of Longformer (Beltagy et al., 2020) and the sliding window of Mistral 7B
(Jiang et al., 2023, causal).

Positions are compared as they are (top-left aligned): query ``i`` and key ``j`` are ``|i - j|``
apart even when ``Lq != Lk``. A query with no key in its window (``i > Lk - 1 + w``) gives 0.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _arrays as A
from .._arrays import Array
from .sdpa import check_qkv, resolve_scale, scaled_dot_product_attention

QUERY_BLOCK = 128
"""Queries per block. Each block computes ``QUERY_BLOCK × (QUERY_BLOCK + 2w)`` scores at most."""


def sliding_window_attention(
    q: Array,
    k: Array,
    v: Array,
    window: int,
    *,
    causal: bool = False,
    scale: float | None = None,
):
    """Attention in which query ``i`` sees only keys ``j`` with ``|i - j| <= window``.

    Args:
        q: ``(..., Lq, d)`` queries (NumPy array or torch tensor, floating point).
        k: ``(..., Lk, d)`` keys, same kind, dtype and device as ``q``.
        v: ``(..., Lk, dv)`` values.
        window: ``w >= 0``; each query sees ``2w + 1`` keys (``w + 1`` when causal), fewer at the
            edges. ``w = 0`` lets each query see only the key at its own position.
        causal: if True, query ``i`` sees keys ``i - w <= j <= i`` only.
        scale: multiplier of ``q kᵀ``; default ``1 / sqrt(d)``.

    Returns:
        ``(..., Lq, dv)``, of ``q``'s kind, dtype and device; equal (up to rounding) to
        ``scaled_dot_product_attention(q, k, v, mask)`` with ``mask[i, j] = |i - j| <= w``
        (``and j <= i`` when causal). A query with no key in its window gives 0.

    Raises:
        TypeError / ValueError: as the reference for ``q``, ``k``, ``v``; ``window`` not an
            integer or negative.
    """
    score_shape = check_qkv(q, k, v)
    window = A.check_int("window", window, minimum=0)
    scale = resolve_scale(scale, q.shape[-1])
    *batch, lq, lk = score_shape

    out_blocks = []
    for q_start in range(0, lq, QUERY_BLOCK):
        q_stop = min(q_start + QUERY_BLOCK, lq)
        k_start = max(0, q_start - window)
        k_stop = min(lk, q_stop if causal else q_stop + window)  # one past the last key seen
        if k_start >= k_stop:  # no query of this block has a key in its window
            out_blocks.append(_zeros_like_rows(q, (*batch, q_stop - q_start, v.shape[-1])))
            continue
        band = _band_mask(q, q_start, q_stop, k_start, k_stop, window, causal)
        out_blocks.append(
            scaled_dot_product_attention(
                q[..., q_start:q_stop, :],
                k[..., k_start:k_stop, :],
                v[..., k_start:k_stop, :],
                band,
                scale=scale,
            )
        )
    if not out_blocks:  # Lq = 0
        return _zeros_like_rows(q, (*batch, 0, v.shape[-1]))
    return torch.cat(out_blocks, dim=-2) if A.is_tensor(q) else np.concatenate(out_blocks, axis=-2)


def _band_mask(like, q_start, q_stop, k_start, k_stop, window, causal):
    """Boolean ``(q_stop - q_start, k_stop - k_start)`` tile of the band, True = may attend."""
    if A.is_tensor(like):
        rows = torch.arange(q_start, q_stop, device=like.device)
        cols = torch.arange(k_start, k_stop, device=like.device)
    else:
        rows, cols = np.arange(q_start, q_stop), np.arange(k_start, k_stop)
    offset = rows[:, None] - cols[None, :]  # i - j
    if causal:
        return (offset >= 0) & (offset <= window)
    return abs(offset) <= window


def _zeros_like_rows(like: Array, shape) -> Array:
    if A.is_tensor(like):
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    return np.zeros(shape, dtype=like.dtype)
