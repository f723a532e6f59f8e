"""Boolean attention masks: **True = may attend** (or, for a padding mask, True = real token).

This is the convention of ``torch.nn.functional.scaled_dot_product_attention`` and of every
function in the course. ``torch.nn.MultiheadAttention`` uses the opposite for its ``attn_mask``
and ``key_padding_mask`` (True = blocked): pass ``~mask`` there.

A mask decides which *scores* are kept; the blocked ones are set to -inf before the softmax, so
the kept weights of a row still sum to 1. A row with no allowed key gets weights 0 (never NaN).

Which kind comes back:

- Masks built from data (:func:`padding_mask`, :func:`key_padding_to_attention`,
  :func:`segment_mask`, :func:`combine`) follow their input: a ``torch.Tensor`` gives a
  ``torch.bool`` tensor on the same device; a NumPy array, a list or a tuple gives a NumPy
  ``bool`` array.
- Masks built from sizes alone (:func:`causal_mask`, :func:`sliding_window_mask`) return a
  ``torch.bool`` tensor on ``device`` (the CPU when ``device=None``); call ``.numpy()`` on it for
  the NumPy code paths.

Shapes, with ``B`` batch, ``H`` heads, ``Lq`` queries and ``Lk`` (or ``L``) keys:

============================  ======================  =========================================
function                      shape                   True where
============================  ======================  =========================================
``padding_mask``              ``(B, L)``              position ``j`` is a real token
``key_padding_to_attention``  ``(B, 1, 1, L)``        key ``j`` is real (for every head, query)
``causal_mask``               ``(Lq, Lk)``            ``j <= i``
``segment_mask``              ``(B, L, L)``           ``i`` and ``j`` share a segment
``sliding_window_mask``       ``(L, L)``              ``|i - j| <= w`` (causal: ``0 <= i - j <= w``)
``prefix_lm_mask``            ``(L, L)``              ``j <= i`` or ``j < prefix``
============================  ======================  =========================================

:func:`combine` ANDs any of these together with broadcasting, e.g. a decoder's
``combine(key_padding_to_attention(valid), causal_mask(L))`` has shape ``(B, 1, L, L)``.
:func:`additive_mask` turns any of them into the float form (0 = keep, -inf = block) that torch's
``attn_mask`` also accepts.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import torch

from . import _arrays as A
from ._arrays import Array

__all__ = [
    "padding_mask",
    "key_padding_to_attention",
    "causal_mask",
    "segment_mask",
    "sliding_window_mask",
    "prefix_lm_mask",
    "combine",
    "additive_mask",
]


def padding_mask(lengths, max_len: int | None = None) -> Array:
    """Mark the real tokens of a right-padded batch: ``mask[b, j] = j < lengths[b]``.

    .. math::

        \\text{mask} = \\text{arange}(L)[\\text{None}, :] < \\text{lengths}[:, \\text{None}]

    Args:
        lengths: ``(B,)`` integer length of each sequence (a torch tensor, a NumPy array or a
            list of ints).
        max_len: ``L``, the padded length; default ``max(lengths)`` (0 for an empty batch).

    Returns:
        ``(B, L)`` boolean, True for a real token, False for padding. A torch tensor on the
        device of ``lengths`` when ``lengths`` is a tensor, otherwise a NumPy array.

    Raises:
        TypeError: ``lengths`` does not hold integers.
        ValueError: ``lengths`` is not 1-D, has a negative entry or one longer than ``max_len``.

    Example::

        >>> padding_mask([3, 5])
        array([[ True,  True,  True, False, False],
               [ True,  True,  True,  True,  True]])

    The seed Q&A's ``arange(seq_len)[:, None] < arange(max_len)[None, :]`` is not a padding mask:
    it knows no per-sequence length, and its True entries (``j > i``) are exactly the future
    positions that a causal mask blocks.

    To use it as an attention mask over keys, see :func:`key_padding_to_attention`.
    """
    lengths = _as_array(lengths)
    A.check_integer_dtype("lengths", lengths)
    if lengths.ndim != 1:
        raise ValueError(
            f"lengths must be 1-D (one length per sequence), got shape {A.shape_str(lengths.shape)}"
        )
    longest = int(lengths.max()) if lengths.shape[0] > 0 else 0
    shortest = int(lengths.min()) if lengths.shape[0] > 0 else 0
    if shortest < 0:
        raise ValueError(f"lengths must be non-negative, got a length of {shortest}")
    if max_len is None:
        max_len = longest
    max_len = A.check_int("max_len", max_len, minimum=0)
    if longest > max_len:
        raise ValueError(f"lengths must not exceed max_len={max_len}, got a length of {longest}")

    if A.is_tensor(lengths):
        positions = torch.arange(max_len, device=lengths.device)
    else:
        positions = np.arange(max_len)
    return positions[None, :] < lengths[:, None]


def key_padding_to_attention(valid: Array) -> Array:
    """Reshape a ``(B, L)`` key padding mask so it broadcasts over scores ``(B, H, Lq, L)``.

    ``mask[b, h, i, j] = valid[b, j]``: every head and every query sees the same real keys.

    Args:
        valid: ``(B, L)`` boolean, True for a real token (as from :func:`padding_mask`).
            ``nn.MultiheadAttention``'s ``key_padding_mask`` is the opposite (True = pad):
            ``valid = ~key_padding_mask``.

    Returns:
        ``(B, 1, 1, L)`` boolean view of ``valid``, of the same kind and device.

    Raises:
        TypeError: ``valid`` is not boolean.
        ValueError: ``valid`` is not 2-D.
    """
    _check_bool("valid", valid)
    if valid.ndim != 2:
        raise ValueError(f"valid must have shape (B, L), got shape {A.shape_str(valid.shape)}")
    return valid[:, None, None, :]


def causal_mask(
    lq: int, lk: int | None = None, *, align: str = "top-left", device=None
) -> torch.Tensor:
    """The look-ahead mask of decoders and language models: no query sees a later key.

    ``align="top-left"`` (the default, like torch's ``is_causal=True`` and the course's
    ``causal=True``): ``mask[i, j] = j <= i``, query ``i`` sees keys ``0..i`` whatever ``Lk``.
    ``align="bottom-right"``: the queries are the *last* ``Lq`` of the ``Lk`` positions, as with
    a KV cache, so ``mask[i, j] = j <= i + Lk - Lq``; the last query sees every key. The two agree
    when ``Lq == Lk``.

    Args:
        lq: number of queries, ``Lq >= 0``.
        lk: number of keys, ``Lk >= 0``; default ``Lq``. With ``"bottom-right"``, ``Lk >= Lq``.
        align: ``"top-left"`` or ``"bottom-right"``.
        device: where to build the mask; ``None`` means the CPU.

    Returns:
        ``(Lq, Lk)`` ``torch.bool`` tensor. ``.numpy()`` gives the NumPy mask.

    Example::

        >>> causal_mask(3).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
        >>> causal_mask(2, 4, align="bottom-right").int()
        tensor([[1, 1, 1, 0],
                [1, 1, 1, 1]], dtype=torch.int32)
    """
    lq = A.check_int("lq", lq, minimum=0)
    lk = lq if lk is None else A.check_int("lk", lk, minimum=0)
    if align not in ("top-left", "bottom-right"):
        raise ValueError(f"align must be 'top-left' or 'bottom-right', got {align!r}")
    offset = 0
    if align == "bottom-right":
        if lk < lq:
            raise ValueError(
                f"a bottom-right causal mask needs lk >= lq (the queries are the last lq of the "
                f"lk positions), got lq={lq}, lk={lk}"
            )
        offset = lk - lq
    queries = torch.arange(lq, device=device)[:, None]
    keys = torch.arange(lk, device=device)[None, :]
    return keys <= queries + offset


def segment_mask(segment_ids) -> Array:
    """Let tokens attend only within their own segment: ``mask[..., i, j] = ids[i] == ids[j]``.

    Used for packed sequences (several documents in one row) and block-diagonal attention.
    Padding positions that share a padding id attend to each other; AND the result with a padding
    mask (:func:`combine`) to block them.

    Args:
        segment_ids: ``(B, L)`` (or any ``(..., L)``) integer segment id of each token, e.g.
            ``[[0, 0, 1, 1, 1]]`` for two segments of 2 and 3 tokens.

    Returns:
        ``(B, L, L)`` (``(..., L, L)``) boolean, symmetric, True on the diagonal; of the kind and
        device of ``segment_ids`` (a list gives NumPy). Add a head dim, ``mask[:, None]``, to
        broadcast over scores ``(B, H, L, L)``.

    Raises:
        TypeError: ``segment_ids`` does not hold integers.
        ValueError: ``segment_ids`` is a scalar.
    """
    segment_ids = _as_array(segment_ids)
    A.check_integer_dtype("segment_ids", segment_ids)
    if segment_ids.ndim < 1:
        raise ValueError(
            f"segment_ids must have shape (..., L), got shape {A.shape_str(segment_ids.shape)}"
        )
    return segment_ids[..., :, None] == segment_ids[..., None, :]


def sliding_window_mask(
    length: int, window: int, *, causal: bool = False, device=None
) -> torch.Tensor:
    """Local attention: query ``i`` sees the keys at most ``window`` positions away.

    .. math::

        \\text{mask}[i, j] = |i - j| \\le w \\qquad\\text{or, causal:}\\qquad i - w \\le j \\le i

    So each query sees ``2w + 1`` keys (``w + 1`` when causal), fewer near the edges. This is the
    pattern of Longformer's local attention and of Mistral's sliding window (causal).

    Args:
        length: sequence length ``L >= 0`` (queries and keys).
        window: ``w >= 0``; ``w = 0`` lets each token see only itself.
        causal: also block the future (``j > i``).
        device: where to build the mask; ``None`` means the CPU.

    Returns:
        ``(L, L)`` ``torch.bool`` tensor, a band around the diagonal (its lower half when causal).

    Raises:
        ValueError: ``window`` or ``length`` is negative.
    """
    length = A.check_int("length", length, minimum=0)
    window = A.check_int("window", window, minimum=0)
    positions = torch.arange(length, device=device)
    offset = positions[:, None] - positions[None, :]  # offset[i, j] = i - j
    if causal:
        return (offset >= 0) & (offset <= window)
    return offset.abs() <= window


def prefix_lm_mask(length: int, prefix: int, *, device=None) -> torch.Tensor:
    """The mask of a prefix language model: the prefix is read both ways, the rest causally.

    .. math::

        \\text{mask}[i, j] = (j \\le i) \\lor (j < p)

    Every query sees the whole prefix of ``p`` tokens (the "input", e.g. a prompt or a source
    sentence) and, past it, the keys up to itself (the "target"). Used by UniLM's
    sequence-to-sequence objective and by T5's prefix-LM variant. ``prefix=0`` is the causal mask,
    ``prefix=length`` the full (encoder) mask.

    Args:
        length: sequence length ``L >= 0`` (queries and keys).
        prefix: ``p``, with ``0 <= p <= L``.
        device: where to build the mask; ``None`` means the CPU.

    Returns:
        ``(L, L)`` ``torch.bool`` tensor.

    Raises:
        ValueError: ``length`` or ``prefix`` is negative, or ``prefix > length``.

    Example::

        >>> prefix_lm_mask(4, 2).int()
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [1, 1, 1, 0],
                [1, 1, 1, 1]], dtype=torch.int32)
    """
    length = A.check_int("length", length, minimum=0)
    prefix = A.check_int("prefix", prefix, minimum=0)
    if prefix > length:
        raise ValueError(f"prefix must be at most length={length}, got prefix={prefix}")
    keys = torch.arange(length, device=device)[None, :]
    return causal_mask(length, device=device) | (keys < prefix)


def combine(*masks: Array | None) -> Array | None:
    """AND boolean masks together, with NumPy broadcasting: allowed only where all allow.

    ``None`` entries stand for "no mask" and are skipped, so optional masks can be passed as they
    are: ``combine(padding, None, causal)``. With no mask left the result is ``None`` (everything
    allowed), which every attention function accepts as ``mask=``.

    Args:
        *masks: boolean arrays of one kind (all NumPy or all torch, on one device) whose shapes
            broadcast together, e.g. ``(B, 1, 1, L)`` and ``(L, L)`` give ``(B, 1, L, L)``.

    Returns:
        The elementwise AND, of the broadcast shape; or the single mask given; or ``None``.

    Raises:
        TypeError: a mask is not boolean, or NumPy and torch are mixed (convert with
            ``torch.as_tensor(mask)`` or ``mask.numpy()``).
        ValueError: the shapes do not broadcast; the message lists them.
    """
    given = {f"masks[{index}]": mask for index, mask in enumerate(masks) if mask is not None}
    if not given:
        return None
    for name, mask in given.items():
        _check_bool(name, mask)
    A.check_same_kind(**given)
    shapes = [tuple(mask.shape) for mask in given.values()]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        named = zip(given, shapes, strict=True)
        listing = ", ".join(f"{name} {A.shape_str(shape)}" for name, shape in named)
        raise ValueError(f"masks do not broadcast together: {listing}") from None
    return reduce(A.logical_and, given.values())


def additive_mask(mask: Array, dtype=None, *, blocked: float = float("-inf")) -> Array:
    """The float form of a boolean mask: 0 where ``mask`` is True, ``blocked`` where False.

    Added to the scores before the softmax it does what the boolean mask does:
    ``softmax(scores + additive_mask(mask))`` equals ``softmax(scores, mask=mask)`` on every row
    with at least one allowed key. torch's ``F.scaled_dot_product_attention`` and
    ``nn.MultiheadAttention`` take it as a float ``attn_mask``; the course's functions take it as
    ``bias=``. With ``blocked=-inf`` an all-blocked row gives NaN in a plain softmax; a large
    finite negative (``torch.finfo(dtype).min``) gives that row uniform weights instead. The
    course's softmax gives it 0.

    Args:
        mask: boolean array, True = may attend (NumPy or torch), any shape.
        dtype: the float dtype of the result; default float32 (``torch.float32`` or
            ``np.float32`` following ``mask``'s kind).
        blocked: the value of a blocked entry, ``-inf`` or a large negative number.

    Returns:
        Array of ``mask``'s shape, kind and device, of ``dtype``.

    Raises:
        TypeError: ``mask`` is not boolean.
    """
    _check_bool("mask", mask)
    if A.is_tensor(mask):
        dtype = torch.float32 if dtype is None else dtype
        zeros = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return zeros.masked_fill(~mask, blocked)
    dtype = np.float32 if dtype is None else dtype
    return np.where(mask, 0.0, blocked).astype(dtype)


# --- argument checks ----------------------------------------------------------------------


def _as_array(x) -> Array:
    """A tensor stays a tensor; anything else (list, tuple, int, NumPy) becomes a NumPy array."""
    return x if A.is_tensor(x) else np.asarray(x)


def _check_bool(name: str, mask: Array) -> None:
    """Raise ``TypeError`` unless ``mask`` is a boolean NumPy array or torch tensor."""
    A.check_array(name, mask)
    is_bool = mask.dtype == torch.bool if A.is_tensor(mask) else mask.dtype == np.bool_
    if not is_bool:
        raise TypeError(f"{name} must be boolean (True = may attend), got dtype {mask.dtype}")
