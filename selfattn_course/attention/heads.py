"""The reshapes of multi-head attention: a layer's features split into heads and merged back.

A layer of width ``d_model`` with ``h`` heads gives head ``t`` the block of features
``t·d_k .. (t+1)·d_k - 1``, where ``d_k = d_model / h``::

    split_heads:  (B, L, d_model) -> (B, h, L, d_k)   reshape to (B, L, h, d_k), then swap L and h
    merge_heads:  (B, h, L, d_k)  -> (B, L, h·d_k)    the inverse: swap back, then flatten

A reshape alone, ``(B, L, d) -> (B, h, L, d_k)``, would run without an error and mix positions
between heads: the transpose is what keeps every token's features together.

Grouped-query attention (Ainslie et al., 2023; multi-query attention, Shazeer, 2019, is one
group) gives the ``h`` query heads only ``h_kv`` key/value heads, ``h_kv`` dividing ``h``: query
head ``t`` uses key/value head ``t // (h / h_kv)``. :func:`repeat_kv_heads` repeats each
key/value head that many times, so that plain multi-head attention computes it.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _arrays as A
from .._arrays import Array

__all__ = ["split_heads", "merge_heads", "repeat_kv_heads"]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, L, d_model) -> (B, h, L, d_k)``, ``d_k = d_model / h``: the features in head blocks.

    Head ``t`` gets features ``t·d_k .. (t+1)·d_k - 1`` of every position.

    Raises:
        ValueError: ``x`` is not 3-D, or ``num_heads`` does not divide its last dim.
    """
    if x.dim() != 3:
        raise ValueError(f"x must have shape (B, L, d_model), got shape {tuple(x.shape)}")
    batch, length, width = x.shape
    if num_heads < 1 or width % num_heads:
        raise ValueError(
            f"num_heads={num_heads} must divide the last dim of x, got x of shape {tuple(x.shape)}"
        )
    return x.reshape(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, h, L, d_k) -> (B, L, h·d_k)``: the heads side by side; inverts :func:`split_heads`.

    Raises:
        ValueError: ``x`` is not 4-D.
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, h, L, d_k), got shape {tuple(x.shape)}")
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def repeat_kv_heads(x: Array, num_heads: int) -> Array:
    """``(..., h_kv, L, d) -> (..., h, L, d)``: each key/value head repeated ``h / h_kv`` times
    in a row, so that query head ``t`` meets key/value head ``t // (h / h_kv)`` (grouped-query
    attention; ``h_kv = 1`` is multi-query attention, ``h_kv = h`` returns ``x`` as it is).

    NumPy in, NumPy out; torch in, torch out (a copy, like ``repeat_interleave``).

    Raises:
        ValueError: ``x`` has fewer than 3 dims, or its head count ``h_kv`` does not divide
            ``num_heads``.
    """
    A.check_array("x", x, min_ndim=3)
    kv_heads = x.shape[-3]
    if num_heads < 1 or num_heads % kv_heads:
        raise ValueError(
            f"the key/value heads must divide the query heads: x of shape "
            f"{A.shape_str(x.shape)} has {kv_heads} heads (dim -3), num_heads={num_heads}"
        )
    groups = num_heads // kv_heads
    if groups == 1:
        return x
    if A.is_tensor(x):
        return x.repeat_interleave(groups, dim=-3)
    return np.repeat(x, groups, axis=-3)
