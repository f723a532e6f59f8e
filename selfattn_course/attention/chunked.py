"""Chunked attention: exact attention, block by block, without the ``(Lq, Lk)`` matrix.

The reference :func:`~selfattn_course.attention.scaled_dot_product_attention` builds every
score ``S = q kᵀ · scale`` at once: O(Lq · Lk) memory, 2 GiB for 8 heads at L = 8192 in float32.
But softmax-then-average can be computed one block of keys at a time, keeping only three running
quantities per query row (Milakov & Gimelshein's *online softmax*):

- ``m``: the largest score seen so far (the softmax shift that keeps ``exp`` from overflowing),
- ``l``: the sum of ``exp(score - m)`` over the keys seen so far,
- ``acc``: the sum of ``exp(score - m) · v_j`` over the keys seen so far, a ``(dv,)`` vector.

For the next block of scores ``S`` (one row per query, one column per key of the block):

.. math::

    m_{new} &= \\max(m, \\operatorname{rowmax}(S)) \\\\
    l &\\leftarrow l \\, e^{m - m_{new}} + \\operatorname{rowsum}(e^{S - m_{new}}) \\\\
    acc &\\leftarrow acc \\, e^{m - m_{new}} + e^{S - m_{new}} V_{block} \\\\
    m &\\leftarrow m_{new}

and after the last block ``out = acc / l``. The factor ``exp(m - m_new) <= 1`` re-expresses what
was summed under the old shift in terms of the new one, so the result is exactly
``softmax(S) V`` (up to rounding), whatever the block size. Rabe & Staats (2021) showed that
attention computed this way needs only O(log L) memory beyond its inputs and output (O(1) for a
single query), and O(√L) in their practical implementation for accelerators; FlashAttention
(Dao et al., 2022) also tiles the queries and fuses every step into one GPU kernel so that the
scores never leave on-chip memory. Here the queries are tiled too, in tiles of ``b = block_size``:
besides the ``(..., Lq, dv)`` output, what is stored per (batch, head) is one ``(b, b)`` tile of
scores, a ``(b, dv)`` accumulator and a few ``(b,)`` running statistics, O(b²) extra memory
whatever ``Lq`` and ``Lk`` are. (That holds without gradients; with autograd every tile is saved
for the backward pass, O(Lq · Lk) again.)

Masking fits in unchanged: a blocked score is ``-inf`` and contributes ``exp(-inf) = 0``. A row
whose keys are all blocked (so far) has ``m = -inf``; it is shifted by 0 instead, so that
``exp(-inf - 0) = 0`` rather than ``exp(-inf + inf) = NaN``, and it ends with ``l = 0`` and output
0, as in the reference. With ``causal=True`` a key block lying entirely right of the diagonal
(every ``j > i``) is skipped, not computed and thrown away: about half the work of full attention.

Two code paths compute the same formula:

- ``_chunked_reference``, written with whole-array expressions for NumPy arrays and for
  tensors that need gradients (autograd records the loop);
- ``_chunked_torch_inplace``, for tensors without gradients: the same loop with in-place
  torch operations into buffers allocated once (``baddbmm(out=)``, ``exp2_``, ``mul_``), so its
  memory is the output plus one tile of scores. On an otherwise idle CPU it takes about 1.0-1.2x
  the time of torch's fused C++ ``scaled_dot_product_attention`` (see ``benchmarks/``).

References:
    Maxim Milakov and Natalia Gimelshein, *Online normalizer calculation for softmax*, 2018,
    arXiv:1805.02867.
    Markus N. Rabe and Charles Staats, *Self-attention does not need O(n²) memory*, 2021,
    arXiv:2112.05682.
    Tri Dao, Daniel Y. Fu, Stefano Ermon, Atri Rudra and Christopher Ré, *FlashAttention: fast
    and memory-efficient exact attention with IO-awareness*, NeurIPS 2022, arXiv:2205.14135.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import _arrays as A
from .._arrays import Array
from .sdpa import check_mask_and_bias, check_qkv, resolve_scale

_NEG_INF = float("-inf")
_LOG2_E = 1.0 / math.log(2.0)  # e^x = 2^(x · log2 e)


def chunked_attention(
    q: Array,
    k: Array,
    v: Array,
    mask: Array | None = None,
    *,
    bias: Array | None = None,
    causal: bool = False,
    scale: float | None = None,
    block_size: int = 256,
):
    """Exact attention ``softmax(q kᵀ · scale + bias, masked) v``, computed tile by tile.

    Same arguments and result as
    :func:`~selfattn_course.attention.scaled_dot_product_attention` (without dropout or weights),
    but the ``(Lq, Lk)`` scores are never stored: queries and keys are taken ``block_size`` rows
    at a time and combined with the online softmax described in this module's docstring.

    Args:
        q: ``(..., Lq, d)`` queries (NumPy array or torch tensor, floating point).
        k: ``(..., Lk, d)`` keys, same kind, dtype and device as ``q``.
        v: ``(..., Lk, dv)`` values.
        mask: optional boolean, broadcastable to ``(..., Lq, Lk)``, True = may attend.
        bias: optional additive score bias of ``q``'s dtype, broadcastable to ``(..., Lq, Lk)``.
        causal: if True, query ``i`` attends only to keys ``j <= i`` (top-left aligned); key
            blocks with every ``j > i`` are skipped.
        scale: multiplier of ``q kᵀ``; default ``1 / sqrt(d)``.
        block_size: queries and keys per tile, ``>= 1``. Memory beyond the output is one
            ``(..., block_size, block_size)`` tile of scores; larger tiles mean fewer Python
            steps. 256 is fast on CPUs (a tile per head fits in the L2 cache).

    Returns:
        ``(..., Lq, dv)``, of ``q``'s kind, dtype and device. A query row with no allowed key
        gives 0, never NaN. float16/bfloat16 inputs are computed in float32 and rounded back.

    Raises:
        TypeError / ValueError: as the reference for ``q``, ``k``, ``v``, ``mask`` and ``bias``;
            ``block_size`` not an integer or ``< 1``.
    """
    score_shape = check_qkv(q, k, v)
    check_mask_and_bias(q, mask, bias, score_shape)
    block_size = A.check_int("block_size", block_size, minimum=1)
    scale = resolve_scale(scale, q.shape[-1])
    lq, lk = score_shape[-2], score_shape[-1]
    mask = _expand_last_two(mask, lq, lk)
    bias = _expand_last_two(bias, lq, lk)

    out_dtype = q.dtype
    q, k, v, bias = (_at_least_float32(x) for x in (q, k, v, bias))
    if A.is_tensor(q) and not _needs_grad(q, k, v, bias):
        out = _chunked_torch_inplace(q, k, v, mask, bias, causal, scale, block_size, score_shape)
    else:
        out = _chunked_reference(q, k, v, mask, bias, causal, scale, block_size, score_shape)
    return out.to(out_dtype) if A.is_tensor(out) else out.astype(out_dtype, copy=False)


def _chunked_reference(q, k, v, mask, bias, causal, scale, block_size, score_shape):
    """The online softmax written as the formula, for NumPy and for torch with autograd."""
    *batch, lq, lk = score_shape
    dv = v.shape[-1]
    out_blocks = []
    for q_start in range(0, lq, block_size):
        q_stop = min(q_start + block_size, lq)
        rows = (*batch, q_stop - q_start)
        q_block = q[..., q_start:q_stop, :]
        running_max = _full(q, (*rows, 1), _NEG_INF)  # m
        running_sum = _full(q, (*rows, 1), 0.0)  # l
        acc = _full(q, (*rows, dv), 0.0)  # sum of exp(score - m) * v_j
        for k_start, k_stop in _key_blocks(q_start, q_stop, lk, block_size, causal):
            scores = (q_block @ A.swap_last_two(k[..., k_start:k_stop, :])) * scale
            if bias is not None:
                scores = scores + bias[..., q_start:q_stop, k_start:k_stop]
            allowed = _allowed_in_block(q, mask, causal, q_start, q_stop, k_start, k_stop)
            if allowed is not None:
                scores = A.where(allowed, scores, _NEG_INF)
            new_max = _maximum(running_max, A.amax(scores, -1))
            shift = A.where(A.isfinite(new_max), new_max, 0.0)  # all blocked so far: shift by 0
            rescale = A.exp(running_max - shift)  # exp(m - m_new), 0 on the first block
            unnormalised = A.exp(scores - shift)
            running_sum = running_sum * rescale + A.sum_keep(unnormalised, -1)
            acc = acc * rescale + unnormalised @ v[..., k_start:k_stop, :]
            running_max = new_max
        out_blocks.append(acc / A.where(running_sum > 0, running_sum, 1.0))
    if not out_blocks:  # Lq = 0
        return _full(q, (*batch, 0, dv), 0.0)
    return torch.cat(out_blocks, dim=-2) if A.is_tensor(q) else np.concatenate(out_blocks, axis=-2)


@torch.no_grad()
def _chunked_torch_inplace(q, k, v, mask, bias, causal, scale, block_size, score_shape):
    """The same loop for tensors without gradients, in place in buffers allocated once.

    Leading dims are flattened into one batch dim ``n`` so that each product is one ``baddbmm``.
    Scores are kept in base 2: with ``S2 = S · log2(e)``, ``exp(S - m) = 2^(S2 - m2)``, and
    torch's ``exp2`` is several times faster than its ``exp`` on CPUs. ``m`` and ``l`` mean what
    they mean in the formula; ``m`` is just measured in units of ``log2``.
    """
    *batch, lq, lk = score_shape
    dv = v.shape[-1]
    queries = _flatten_batch(q, batch)  # (n, Lq, d)
    keys_t = _flatten_batch(k, batch).transpose(-2, -1)  # (n, d, Lk)
    values = _flatten_batch(v, batch)  # (n, Lk, dv)
    n = queries.shape[0]
    out = q.new_empty((n, lq, dv))
    tile_rows, tile_cols = min(block_size, lq), min(block_size, lk)
    scores_buffer = q.new_empty(n * tile_rows * tile_cols)
    acc_buffer = q.new_empty((n, tile_rows, dv))
    # Per query row: running max m (and the next one), running sum l, block sum, shift, rescale.
    row_stats = q.new_empty((6, n, tile_rows, 1))

    for q_start in range(0, lq, block_size):
        q_stop = min(q_start + block_size, lq)
        n_rows = q_stop - q_start
        query_block = queries[:, q_start:q_stop]
        running_max, new_max, running_sum, block_sum, shift, rescale = row_stats[:, :, :n_rows]
        acc = acc_buffer[:, :n_rows]
        acc.zero_()
        running_max.fill_(_NEG_INF)
        running_sum.zero_()
        for k_start, k_stop in _key_blocks(q_start, q_stop, lk, block_size, causal):
            n_cols = k_stop - k_start
            scores = scores_buffer[: n * n_rows * n_cols].view(n, n_rows, n_cols)
            torch.baddbmm(  # scores = q kᵀ · scale · log2(e), written into the tile buffer
                scores,
                query_block,
                keys_t[:, :, k_start:k_stop],
                beta=0.0,
                alpha=scale * _LOG2_E,
                out=scores,
            )
            if bias is not None or mask is not None:
                scores_nd = scores.view(*batch, n_rows, n_cols)
                if bias is not None:
                    scores_nd.add_(bias[..., q_start:q_stop, k_start:k_stop], alpha=_LOG2_E)
                if mask is not None:
                    scores_nd.masked_fill_(~mask[..., q_start:q_stop, k_start:k_stop], _NEG_INF)
            if causal and k_stop - 1 > q_start:  # only tiles crossing the diagonal need a mask
                lower = _causal_block(q, q_start, q_stop, k_start, k_stop)
                scores.masked_fill_(~lower, _NEG_INF)
            torch.amax(scores, dim=-1, keepdim=True, out=new_max)
            torch.maximum(new_max, running_max, out=new_max)
            torch.nan_to_num(new_max, neginf=0.0, out=shift)  # all blocked so far: shift by 0
            torch.sub(running_max, shift, out=rescale).exp2_()  # exp(m - m_new)
            scores.sub_(shift).exp2_()  # the unnormalised weights exp(S - m_new)
            torch.sum(scores, dim=-1, keepdim=True, out=block_sum)
            torch.addcmul(block_sum, running_sum, rescale, out=running_sum)  # l = l·rescale + sum
            acc.mul_(rescale).baddbmm_(scores, values[:, k_start:k_stop])
            running_max, new_max = new_max, running_max
        running_sum.masked_fill_(running_sum == 0, 1.0)  # rows with no allowed key: 0 / 1 = 0
        torch.div(acc, running_sum, out=out[:, q_start:q_stop])
    return out.view(*batch, lq, dv)


def _key_blocks(q_start: int, q_stop: int, lk: int, block_size: int, causal: bool):
    """``(start, stop)`` of the key blocks that queries ``q_start..q_stop-1`` can see.

    With ``causal``, keys ``j >= q_stop`` are right of the diagonal for every query of the
    block, so the blocks stop there.
    """
    stop = min(lk, q_stop) if causal else lk
    return [(start, min(start + block_size, stop)) for start in range(0, stop, block_size)]


def _allowed_in_block(like, mask, causal, q_start, q_stop, k_start, k_stop):
    """Boolean tile (True = may attend) for queries ``q_start:q_stop`` and keys ``k_start:k_stop``.

    ``None`` when every pair of the tile is allowed.
    """
    allowed = None if mask is None else mask[..., q_start:q_stop, k_start:k_stop]
    if causal and k_stop - 1 > q_start:
        lower = _causal_block(like, q_start, q_stop, k_start, k_stop)
        allowed = lower if allowed is None else A.logical_and(allowed, lower)
    return allowed


def _causal_block(like, q_start, q_stop, k_start, k_stop):
    """``(q_stop - q_start, k_stop - k_start)`` boolean tile, True where key ``j <= query i``."""
    if A.is_tensor(like):
        rows = torch.arange(q_start, q_stop, device=like.device)
        cols = torch.arange(k_start, k_stop, device=like.device)
    else:
        rows, cols = np.arange(q_start, q_stop), np.arange(k_start, k_stop)
    return cols[None, :] <= rows[:, None]


def _expand_last_two(x: Array | None, lq: int, lk: int) -> Array | None:
    """A view of ``x`` (broadcastable to ``(..., Lq, Lk)``) whose last two dims are ``(Lq, Lk)``.

    Then ``x[..., i0:i1, j0:j1]`` slices a tile even where ``x`` had size 1 (a key padding mask
    ``(B, 1, 1, Lk)``, say). No memory is copied.
    """
    if x is None:
        return None
    shape = (1,) * max(0, 2 - x.ndim) + tuple(x.shape)
    target = (*shape[:-2], lq, lk)
    if A.is_tensor(x):
        return x.reshape(shape).expand(target)
    return np.broadcast_to(x.reshape(shape), target)


def _flatten_batch(x: torch.Tensor, batch) -> torch.Tensor:
    """``(..., L, d)`` broadcast to ``(*batch, L, d)`` and viewed as ``(n, L, d)``."""
    return x.expand(*batch, *x.shape[-2:]).reshape(math.prod(batch), *x.shape[-2:])


def _at_least_float32(x: Array | None) -> Array | None:
    """float16/bfloat16 promoted to float32 (sums of many small weights need the precision)."""
    if x is None:
        return None
    if A.is_tensor(x):
        return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _full(like: Array, shape, value: float) -> Array:
    """An array of ``shape`` filled with ``value``, of ``like``'s kind, dtype and device."""
    if A.is_tensor(like):
        return torch.full(shape, value, dtype=like.dtype, device=like.device)
    return np.full(shape, value, dtype=like.dtype)


def _maximum(a: Array, b: Array) -> Array:
    return torch.maximum(a, b) if A.is_tensor(a) else np.maximum(a, b)
