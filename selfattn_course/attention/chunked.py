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
whatever ``Lq`` and ``Lk`` are. Training keeps that bound too (see *The backward pass* below).

Masking fits in unchanged: a blocked score is ``-inf`` and contributes ``exp(-inf) = 0``. A row
whose keys are all blocked (so far) has ``m = -inf``; it is shifted by 0 instead, so that
``exp(-inf - 0) = 0`` rather than ``exp(-inf + inf) = NaN``, and it ends with ``l = 0`` and output
0, as in the reference. With ``causal=True`` a key block lying entirely right of the diagonal
(every ``j > i``) is skipped, not computed and thrown away: about half the work of full attention.

**The backward pass.** Left to itself, autograd would record the loop above and save every
tile of scores and weights for the backward pass: O(Lq · Lk) memory again (over 2 GB at
L = 4096 with 8 heads, several ``(Lq, Lk)`` arrays' worth). FlashAttention saves, besides
the inputs and the output, one number per query row, the log-sum-exp of its scores
``L = m + log(l)``, and *recomputes* each tile in the backward: ``P = exp(S - L)`` is the
tile's softmax weights, exactly, without any running max, because ``L`` is already the final
normaliser. With ``O = P V`` and ``dO`` the gradient of the loss with respect to ``O``, each
tile then contributes (Dao, 2023, FlashAttention-2):

.. math::

    dV &\\mathrel{+}= P^T dO, \\qquad dP = dO \\, V^T, \\qquad dS = P \\circ (dP - D), \\\\
    dQ &\\mathrel{+}= dS \\, K \\cdot scale, \\qquad dK \\mathrel{+}= dS^T Q \\cdot scale,
    \\qquad dBias \\mathrel{+}= dS,

where ``D_i = sum_j P_ij dP_ij`` is the softmax's correction term (the derivative of
``softmax`` is ``diag(p) - p pᵀ``). ``D`` needs a whole row of ``P``, which no single tile
has, but it equals ``dO_i · O_i``, so it is computed once from the output, before the loop.
Masked scores have ``P = 0`` and so ``dS = 0``; a row with no allowed key has ``L = +inf``
(``P = 0`` again: gradient 0, never NaN). The backward does five tile products where the forward
does two (one of them recomputing ``S``), so a training step costs about 3.5 forwards, and its
memory is the inputs, the output, ``L``, the gradients and a few tiles: O(L · d + b²).

Three code paths compute the same formula:

- ``_chunked_reference``, written with whole-array expressions, for NumPy arrays (no gradients
  there). It works on tensors too, and autograd could differentiate it as written, storing
  every tile: the memory the backward below avoids;
- ``_chunked_torch_inplace``, for tensors: the same loop with in-place torch operations into
  buffers allocated once (``baddbmm(out=)``, ``exp2_``, ``mul_``), so its memory is the output
  plus one tile of scores. On an otherwise idle CPU it takes about 1.0-1.2x the time of torch's
  fused C++ ``scaled_dot_product_attention`` (see ``benchmarks/``);
- ``_ChunkedAttention``, a ``torch.autograd.Function`` for tensors that need gradients: its
  forward is ``_chunked_torch_inplace``, which also writes ``L``, and its backward
  (``_chunked_backward``) recomputes the tiles as above. Forward and backward together take
  about 1.15-1.4x the time of torch's fused forward and backward, with about the same peak
  memory. The backward is not itself differentiable (no second derivatives).

References:
    Maxim Milakov and Natalia Gimelshein, *Online normalizer calculation for softmax*, 2018,
    arXiv:1805.02867.
    Markus N. Rabe and Charles Staats, *Self-attention does not need O(n²) memory*, 2021,
    arXiv:2112.05682.
    Tri Dao, Daniel Y. Fu, Stefano Ermon, Atri Rudra and Christopher Ré, *FlashAttention: fast
    and memory-efficient exact attention with IO-awareness*, NeurIPS 2022, arXiv:2205.14135.
    Tri Dao, *FlashAttention-2: faster attention with better parallelism and work
    partitioning*, ICLR 2024, arXiv:2307.08691.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.autograd.function import once_differentiable

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

    Torch tensors are differentiable (``q``, ``k``, ``v`` and ``bias``): the forward keeps one
    log-sum-exp per query row and the backward recomputes the tiles, so training needs no
    ``(Lq, Lk)`` array either (see *The backward pass* in the module docstring). Second
    derivatives are not supported: differentiating the gradients raises a ``RuntimeError``.

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
    out_dtype = q.dtype
    q, k, v, bias_given = (_at_least_float32(x) for x in (q, k, v, bias))
    mask = _expand_last_two(mask, lq, lk)
    bias = _expand_last_two(bias_given, lq, lk)
    if not A.is_tensor(q):
        out = _chunked_reference(q, k, v, mask, bias, causal, scale, block_size, score_shape)
        return out.astype(out_dtype, copy=False)
    if _needs_grad(q, k, v, bias):
        # The original (not expanded) bias goes in, so that its gradient keeps its own shape.
        out = _ChunkedAttention.apply(
            q, k, v, mask, bias_given, causal, scale, block_size, score_shape
        )
    else:
        out = _chunked_torch_inplace(q, k, v, mask, bias, causal, scale, block_size, score_shape)
    return out.to(out_dtype)


def _chunked_reference(q, k, v, mask, bias, causal, scale, block_size, score_shape):
    """The online softmax written as the formula, for NumPy (and, unused, for torch)."""
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
def _chunked_torch_inplace(q, k, v, mask, bias, causal, scale, block_size, score_shape, lse=None):
    """The same loop for tensors, in place in buffers allocated once (no autograd here).

    Leading dims are flattened into one batch dim ``n`` so that each product is one ``baddbmm``.
    Scores are kept in base 2: with ``S2 = S · log2(e)``, ``exp(S - m) = 2^(S2 - m2)``, and
    torch's ``exp2`` is several times faster than its ``exp`` on CPUs. ``m`` and ``l`` mean what
    they mean in the formula; ``m`` is just measured in units of ``log2``.

    If ``lse``, an ``(n, Lq, 1)`` float tensor, is given, it receives each row's log-sum-exp
    ``L = m + log(l)``, also in base 2 (``m2 + log2(l)``), for the backward pass; ``+inf`` for a
    row with no allowed key, so that the backward's ``2^(S2 - L2)`` is 0 there, never NaN.
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
            _bias_and_mask_(scores, batch, mask, bias, causal, q_start, q_stop, k_start, k_stop)
            torch.amax(scores, dim=-1, keepdim=True, out=new_max)
            torch.maximum(new_max, running_max, out=new_max)
            torch.nan_to_num(new_max, neginf=0.0, out=shift)  # all blocked so far: shift by 0
            torch.sub(running_max, shift, out=rescale).exp2_()  # exp(m - m_new)
            scores.sub_(shift).exp2_()  # the unnormalised weights exp(S - m_new)
            torch.sum(scores, dim=-1, keepdim=True, out=block_sum)
            torch.addcmul(block_sum, running_sum, rescale, out=running_sum)  # l = l·rescale + sum
            acc.mul_(rescale).baddbmm_(scores, values[:, k_start:k_stop])
            running_max, new_max = new_max, running_max
        no_key = running_sum == 0  # rows with no allowed key
        if lse is not None:
            row_lse = lse[:, q_start:q_stop]
            torch.log2(running_sum, out=row_lse).add_(running_max).masked_fill_(no_key, math.inf)
        running_sum.masked_fill_(no_key, 1.0)  # their output: 0 / 1 = 0
        torch.div(acc, running_sum, out=out[:, q_start:q_stop])
    return out.view(*batch, lq, dv)


def _bias_and_mask_(scores, batch, mask, bias, causal, q_start, q_stop, k_start, k_stop):
    """Add the bias tile to a base-2 ``(n, rows, cols)`` tile of scores and set blocked ones to
    ``-inf``, in place."""
    n_rows, n_cols = scores.shape[-2:]
    if bias is not None or mask is not None:
        scores_nd = scores.view(*batch, n_rows, n_cols)
        if bias is not None:
            scores_nd.add_(bias[..., q_start:q_stop, k_start:k_stop], alpha=_LOG2_E)
        if mask is not None:
            scores_nd.masked_fill_(~mask[..., q_start:q_stop, k_start:k_stop], _NEG_INF)
    if causal and k_stop - 1 > q_start:  # only tiles crossing the diagonal need a mask
        lower = _causal_block(scores, q_start, q_stop, k_start, k_stop)
        scores.masked_fill_(~lower, _NEG_INF)


class _ChunkedAttention(torch.autograd.Function):
    """Chunked attention with a backward pass that recomputes its tiles (FlashAttention-2's).

    The forward is ``_chunked_torch_inplace``, which also writes each row's log-sum-exp ``L``.
    Saved for the backward: the inputs, the output and ``L``, O(Lq·dv + Lk·(d + dv) + Lq) memory
    (plus ``mask`` and ``bias``, which are inputs too). No tile of scores is kept.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, bias, causal, scale, block_size, score_shape):
        *batch, lq, lk = score_shape
        lse = q.new_empty((math.prod(batch), lq, 1))
        expanded_bias = _expand_last_two(bias, lq, lk)
        out = _chunked_torch_inplace(
            q, k, v, mask, expanded_bias, causal, scale, block_size, score_shape, lse
        )
        ctx.save_for_backward(q, k, v, mask, bias, out, lse)
        ctx.options = causal, scale, block_size, score_shape
        return out

    @staticmethod
    @once_differentiable  # double backward is not supported: it raises a clear error
    def backward(ctx, grad_out):
        q, k, v, mask, bias, out, lse = ctx.saved_tensors
        grads = _chunked_backward(
            grad_out, q, k, v, mask, bias, out, lse, *ctx.options, ctx.needs_input_grad[:5]
        )
        return (*grads, None, None, None, None)


@torch.no_grad()
def _chunked_backward(
    grad_out, q, k, v, mask, bias, out, lse, causal, scale, block_size, score_shape, needs
):
    """Gradients ``(dq, dk, dv, None, dbias)`` (None where ``needs`` says no), tile by tile.

    Each tile of weights is recomputed from the saved log-sum-exp, ``P = 2^(S2 - L2)`` (base 2 as
    in the forward), and used at once, in the formulas of this module's docstring:
    ``dV += Pᵀ dO``, ``dP = dO Vᵀ``, ``dS = P ∘ (dP - D)``, ``dQ += dS K · scale``,
    ``dK += dSᵀ Q · scale`` and ``dBias += dS``.

    As in FlashAttention-2 the key blocks are the outer loop: a key block's ``dK`` and ``dV``
    are summed over the query blocks in two small contiguous buffers (a matrix product into a
    strided slice of a larger tensor is much slower in torch: it runs one product per batch
    entry) and written out once. Memory beyond the gradients: a few tiles.
    """
    needs_q, needs_k, needs_v, _, needs_bias = needs
    *batch, lq, lk = score_shape
    d, dv = q.shape[-1], v.shape[-1]
    queries = _flatten_batch(q, batch)  # (n, Lq, d)
    keys = _flatten_batch(k, batch)  # (n, Lk, d)
    values = _flatten_batch(v, batch)  # (n, Lk, dv)
    grad_out = _flatten_batch(grad_out, batch)  # dO, (n, Lq, dv)
    n = queries.shape[0]
    # D_i = sum_j P_ij dP_ij = dO_i · O_i: one number per query row, computed once.
    delta = torch.linalg.vecdot(grad_out, out.reshape(n, lq, dv)).unsqueeze(-1)
    grad_q = q.new_zeros((n, lq, d)) if needs_q else None
    grad_k = q.new_zeros((n, lk, d)) if needs_k else None
    grad_v = q.new_zeros((n, lk, dv)) if needs_v else None
    grad_bias = None
    if needs_bias:  # the bias's own shape, with at least two dims
        grad_bias = q.new_zeros((1,) * max(0, 2 - bias.ndim) + tuple(bias.shape))
    expanded_bias = _expand_last_two(bias, lq, lk)
    tile_rows, tile_cols = min(block_size, lq), min(block_size, lk)
    buffers = q.new_empty((2, n * tile_rows * tile_cols))  # P and dP (then dS)
    row_buffers = q.new_empty((3, n * max(tile_rows, tile_cols) * max(d, dv)))  # dQ, dK, dV

    def tile(buffer, rows, cols):  # a contiguous (n, rows, cols) view of the front of a buffer
        return buffer[: n * rows * cols].view(n, rows, cols)

    for k_start in range(0, lk, block_size):
        k_stop = min(k_start + block_size, lk)
        n_cols = k_stop - k_start
        key_block, value_block = keys[:, k_start:k_stop], values[:, k_start:k_stop]
        grad_k_block = tile(row_buffers[1], n_cols, d).zero_()
        grad_v_block = tile(row_buffers[2], n_cols, dv).zero_()
        for q_start, q_stop in _query_blocks(k_start, lq, block_size, causal):
            n_rows = q_stop - q_start
            query_block, grad_out_block = queries[:, q_start:q_stop], grad_out[:, q_start:q_stop]
            probs = tile(buffers[0], n_rows, n_cols)
            torch.baddbmm(  # S2 = q kᵀ · scale · log2(e), as in the forward
                probs,
                query_block,
                key_block.transpose(-2, -1),
                beta=0.0,
                alpha=scale * _LOG2_E,
                out=probs,
            )
            _bias_and_mask_(
                probs, batch, mask, expanded_bias, causal, q_start, q_stop, k_start, k_stop
            )
            probs.sub_(lse[:, q_start:q_stop]).exp2_()  # P = exp(S - L), the softmax weights
            if needs_v:
                grad_v_block.baddbmm_(probs.transpose(-2, -1), grad_out_block)  # dV += Pᵀ dO
            if not (needs_q or needs_k or needs_bias):
                continue
            grad_scores = tile(buffers[1], n_rows, n_cols)
            torch.bmm(grad_out_block, value_block.transpose(-2, -1), out=grad_scores)  # dP
            grad_scores.sub_(delta[:, q_start:q_stop]).mul_(probs)  # dS = P ∘ (dP - D)
            if needs_q:  # dQ += dS K · scale, computed in a buffer and added to the slice
                grad_q_block = tile(row_buffers[0], n_rows, d)
                torch.bmm(grad_scores, key_block, out=grad_q_block)
                grad_q[:, q_start:q_stop].add_(grad_q_block, alpha=scale)
            if needs_k:
                grad_k_block.baddbmm_(grad_scores.transpose(-2, -1), query_block)  # dK += dSᵀ Q
            if needs_bias:
                _add_bias_grad_(grad_bias, grad_scores, batch, q_start, q_stop, k_start, k_stop)
        if needs_k:
            torch.mul(grad_k_block, scale, out=grad_k[:, k_start:k_stop])  # the · scale of dK
        if needs_v:
            grad_v[:, k_start:k_stop] = grad_v_block

    def unflatten(grad, like):  # (n, L, x) back to the input's shape, summing broadcast dims
        if grad is None:
            return None
        return grad.view(*batch, *grad.shape[-2:]).sum_to_size(like.shape)

    if grad_bias is not None:
        grad_bias = grad_bias.view(bias.shape)
    return unflatten(grad_q, q), unflatten(grad_k, k), unflatten(grad_v, v), None, grad_bias


def _add_bias_grad_(grad_bias, grad_scores, batch, q_start, q_stop, k_start, k_stop):
    """``grad_bias[..., tile] += dS``, dS summed over the dims where the bias broadcasts."""
    *lead, bias_rows, bias_cols = grad_bias.shape
    rows = slice(q_start, q_stop) if bias_rows > 1 else slice(0, 1)
    cols = slice(k_start, k_stop) if bias_cols > 1 else slice(0, 1)
    tile = grad_bias[..., rows, cols]
    tile += grad_scores.view(*batch, *grad_scores.shape[-2:]).sum_to_size(tile.shape)


def _key_blocks(q_start: int, q_stop: int, lk: int, block_size: int, causal: bool):
    """``(start, stop)`` of the key blocks that queries ``q_start..q_stop-1`` can see.

    With ``causal``, keys ``j >= q_stop`` are right of the diagonal for every query of the
    block, so the blocks stop there.
    """
    stop = min(lk, q_stop) if causal else lk
    return [(start, min(start + block_size, stop)) for start in range(0, stop, block_size)]


def _query_blocks(k_start: int, lq: int, block_size: int, causal: bool):
    """``(start, stop)`` of the query blocks that see keys from ``k_start`` on (the backward's
    inner loop; the blocks and the skipped tiles are those of ``_key_blocks``).

    Blocks start at multiples of ``block_size``. With ``causal``, the query blocks before
    ``k_start`` end at or before it, so they see none of these keys and are skipped.
    """
    first = k_start if causal else 0
    return [(start, min(start + block_size, lq)) for start in range(first, lq, block_size)]


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
