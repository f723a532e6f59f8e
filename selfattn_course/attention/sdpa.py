"""Scaled dot-product attention: the reference implementation every other path is checked against.

.. math::

    \\operatorname{Attention}(Q, K, V) = \\operatorname{softmax}\\!\\left(
        \\frac{Q K^\\top}{\\sqrt{d_k}} + B\\right) V

Shapes (any number of leading batch dims ``...``, which must broadcast between the inputs):

- ``q``: ``(..., Lq, d)``  queries
- ``k``: ``(..., Lk, d)``  keys
- ``v``: ``(..., Lk, dv)`` values
- ``mask``: boolean, broadcastable to ``(..., Lq, Lk)``; **True = query i may attend to key j**
  (the convention of ``torch.nn.functional.scaled_dot_product_attention``; note that
  ``nn.MultiheadAttention``'s ``attn_mask``/``key_padding_mask`` use the opposite, True = blocked)
- ``bias``: float, broadcastable to ``(..., Lq, Lk)``, added to the scaled scores (ALiBi,
  relative-position biases)
- output: ``(..., Lq, dv)``; weights ``(..., Lq, Lk)``

This version materialises the full ``(Lq, Lk)`` weight matrix: it costs O(Lq·Lk·d) time and
O(Lq·Lk) memory. :func:`~selfattn_course.attention.chunked_attention` gives the same numbers in
O(Lq + Lk) extra memory.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import _arrays as A
from .._arrays import Array
from ..masks import causal_mask
from .heads import repeat_kv_heads
from .softmax import softmax


def check_qkv(q: Array, k: Array, v: Array) -> tuple[int, ...]:
    """Validate ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)``.

    Returns the broadcast score shape ``(..., Lq, Lk)``. Raises ``TypeError`` for mixed kinds,
    devices or dtypes, ``ValueError`` for wrong ranks or mismatched dims.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        A.check_array(name, x, min_ndim=2, floating=True)
    A.check_same_kind(q=q, k=k, v=v)
    A.check_same_float_dtype(q=q, k=k, v=v)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dim d: q has shape {A.shape_str(q.shape)}, "
            f"k has shape {A.shape_str(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same sequence length Lk: k has shape {A.shape_str(k.shape)}, "
            f"v has shape {A.shape_str(v.shape)}"
        )
    batch = A.leading_shape("q", q.shape[:-2], "k", k.shape[:-2])
    batch = A.leading_shape("q/k", batch, "v", v.shape[:-2])
    return (*batch, q.shape[-2], k.shape[-2])


def check_mask_and_bias(q: Array, mask: Array | None, bias: Array | None, score_shape) -> None:
    """Validate the optional boolean ``mask`` and float ``bias`` against the score shape."""
    if mask is not None:
        A.check_same_kind(q=q, mask=mask)
        A.check_bool_mask("mask", mask, "scores", score_shape)
    if bias is not None:
        A.check_same_kind(q=q, bias=bias)
        A.check_same_float_dtype(q=q, bias=bias)
        A.broadcast_shape("bias", bias.shape, "scores", score_shape)


def resolve_scale(scale: float | None, d: int) -> float:
    """The score scale: ``scale`` if given, else ``1 / sqrt(d)``."""
    if scale is None:
        return 1.0 / math.sqrt(d)
    return float(scale)


def allowed_positions(q: Array, mask: Array | None, causal: bool, lq: int, lk: int) -> Array | None:
    """The boolean (True = may attend) mask combining ``mask`` and a top-left causal mask."""
    if not causal:
        return mask
    lower = causal_mask(lq, lk, device=q.device if A.is_tensor(q) else None)
    if not A.is_tensor(q):
        lower = lower.numpy()
    return lower if mask is None else A.logical_and(mask, lower)


def scaled_dot_product_attention(
    q: Array,
    k: Array,
    v: Array,
    mask: Array | None = None,
    *,
    bias: Array | None = None,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
    generator: torch.Generator | np.random.Generator | int | None = None,
    enable_gqa: bool = False,
):
    """Attention ``softmax(q kᵀ · scale + bias, masked) v``, the course's reference.

    Args:
        q: ``(..., Lq, d)`` queries (NumPy array or torch tensor, floating point).
        k: ``(..., Lk, d)`` keys, same kind, dtype and device as ``q``.
        v: ``(..., Lk, dv)`` values.
        mask: optional boolean, broadcastable to ``(..., Lq, Lk)``, True = may attend.
        bias: optional additive score bias of ``q``'s dtype, broadcastable to ``(..., Lq, Lk)``.
        causal: if True, query ``i`` attends only to keys ``j <= i`` (top-left aligned, like
            torch's ``is_causal``); combined with ``mask`` by logical AND.
        scale: multiplier of ``q kᵀ``; default ``1 / sqrt(d)``.
        dropout_p: probability of zeroing each weight (survivors scaled by ``1 / (1 - p)``).
        return_weights: also return the attention weights (after dropout).
        generator: randomness for dropout: a ``torch.Generator`` for tensors; a
            ``numpy.random.Generator`` or an int seed for arrays.
        enable_gqa: grouped-query attention, as torch's ``enable_gqa``: ``q`` is
            ``(..., h, Lq, d)`` and ``k``, ``v`` have ``h_kv`` heads, ``(..., h_kv, Lk, d)``,
            ``h_kv`` dividing ``h``; query head ``t`` attends with key/value head
            ``t // (h / h_kv)`` (:func:`~selfattn_course.attention.heads.repeat_kv_heads`).
            With ``h_kv = h`` it is multi-head attention.

    Returns:
        ``out`` of shape ``(..., Lq, dv)``, or ``(out, weights)`` with weights ``(..., Lq, Lk)``.
        A query row with no allowed key gets weights 0 and output 0 (never NaN).
    """
    if enable_gqa:
        k, v = _grouped_keys_and_values(q, k, v)
    score_shape = check_qkv(q, k, v)
    check_mask_and_bias(q, mask, bias, score_shape)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")

    lq, lk = score_shape[-2], score_shape[-1]
    # Scale q before the product, as torch's math path does: q·kᵀ itself can pass float16's
    # largest value (65504) where the scaled scores do not.
    scores = (q * resolve_scale(scale, q.shape[-1])) @ A.swap_last_two(k)  # (..., Lq, Lk)
    if bias is not None:
        scores = scores + bias
    weights = softmax(scores, dim=-1, mask=allowed_positions(q, mask, causal, lq, lk))
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, generator)
    out = weights @ v  # (..., Lq, dv)
    return (out, weights) if return_weights else out


def _grouped_keys_and_values(q: Array, k: Array, v: Array) -> tuple[Array, Array]:
    """``k`` and ``v`` with their ``h_kv`` heads repeated to ``q``'s ``h`` (``enable_gqa``)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        A.check_array(name, x, min_ndim=3, floating=True)
    if k.shape[-3] != v.shape[-3]:
        raise ValueError(
            f"k and v must have the same number of heads (dim -3): k has shape "
            f"{A.shape_str(k.shape)}, v has shape {A.shape_str(v.shape)}"
        )
    heads = q.shape[-3]
    if heads % k.shape[-3]:
        raise ValueError(
            f"with enable_gqa the key/value heads must divide the query heads (dim -3): q has "
            f"shape {A.shape_str(q.shape)}, k has shape {A.shape_str(k.shape)}"
        )
    return repeat_kv_heads(k, heads), repeat_kv_heads(v, heads)


def dropout(weights: Array, p: float, generator=None) -> Array:
    """Zero each entry with probability ``p`` and scale survivors by ``1 / (1 - p)``."""
    if A.is_tensor(weights):
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                "generator for torch input must be a torch.Generator, "
                f"got {type(generator).__name__}"
            )
        noise = torch.rand(
            weights.shape, generator=generator, device=weights.device, dtype=weights.dtype
        )
    else:
        if isinstance(generator, torch.Generator):
            raise TypeError(
                "generator for NumPy input must be a numpy.random.Generator or an int seed"
            )
        noise = np.random.default_rng(generator).random(weights.shape).astype(weights.dtype)
    keep = noise >= p
    return A.where(keep, weights, 0.0) / (1.0 - p)
