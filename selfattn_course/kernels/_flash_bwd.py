"""The Triton kernels of the backward pass of :func:`selfattn_course.kernels.flash_attention`.

Like :mod:`._flash_fwd`, this module imports ``triton`` at the top and is imported only when a
backward pass first runs.

The forward computed, per (batch, head), with ``s`` the scale::

    S = s · Q Kᵀ          P = softmax(S) = exp(S - LSE)          O = P V

and saved ``O`` and the row log-sum-exp ``LSE`` (one float per query row). Given ``dO``, the
gradient of the loss with respect to ``O``, the chain rule gives (Dao, 2023, Algorithm 2)::

    dV = Pᵀ dO                                   (Lk, dv)
    dP = dO Vᵀ                                   (Lq, Lk)
    dS = P ∘ (dP - D),   D = rowsum(dO ∘ O)      the softmax's Jacobian, row by row
    dQ = s · dS K                                (Lq, d)
    dK = s · dSᵀ Q                               (Lk, d)

``D`` is the softmax's correction term ``D_i = Σ_j P_ij dP_ij``; since ``Σ_j P_ij V_j = O_i`` it
equals ``dO_i · O_i``, one float per row that :func:`flash_attention_delta_kernel` computes first.

``P``, ``dP`` and ``dS`` are ``(Lq, Lk)`` matrices: they are never stored. Each kernel rebuilds
the tiles it needs from ``Q``, ``K`` and the saved ``LSE``: ``P_tile = exp(s · Q_tile K_tileᵀ -
LSE_rows)`` is exactly the forward's weights, with no running maximum to track this time. So the
backward uses O(Lq + Lk) memory per head besides its inputs and outputs: ``D`` and ``LSE``.

Two kernels, each the only writer of what it writes (so no atomics, and the results are the
same from run to run):

- :func:`flash_attention_dkdv_kernel`: one program per block of ``BLOCK_N`` keys. It keeps that
  block's ``K``, ``V`` and its ``dK``, ``dV`` accumulators on chip and walks over the query blocks.
- :func:`flash_attention_dq_kernel`: one program per block of ``BLOCK_M`` queries, walking over
  the key blocks, like the forward.

Both recompute ``S`` and ``P`` (7 matrix products in all, against 5 for one kernel that adds its
``dQ`` tiles into memory with atomics, as FlashAttention-2's paper does); the price of clarity
and determinism. Triton's fused-attention tutorial makes the same choice.

Grouped-query attention: the ``GROUP = h / h_kv`` query heads of one key/value head all
contribute to its ``dK``, ``dV``. The dK/dV program loops over them and adds into the same
on-chip accumulator, rather than writing a ``(batch · h, Lk, d)`` partial per query head and
summing afterwards: no extra memory, GROUP times fewer writes, and no atomics. The cost is
parallelism: the grid has ``batch · h_kv`` rows instead of ``batch · h``, which can leave a big
GPU part idle for multi-query attention (``h_kv = 1``) with a small batch and short sequences.

Masks, as in the forward: tiles that cross the causal diagonal or a ragged end (``Lq`` or ``Lk``
not a multiple of the block) set the weights of disallowed pairs to 0; whole tiles skip the mask.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._flash_fwd import configs_of, tile_of


@triton.jit
def flash_attention_delta_kernel(
    Out,
    DOut,  # (BH, Lq, dv) each, last dim contiguous
    Delta,  # (BH, Lq) float32, contiguous: written here
    stride_ob,
    stride_om,
    stride_dob,
    stride_dom,
    lq,
    HEAD_DIM_V: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """Grid ``(cdiv(Lq, BLOCK_M), BH)``: ``Delta[bh, rows] = rowsum(dO ∘ O)`` in float32."""
    bh = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    dims_v = tl.arange(0, HEAD_DIM_V)
    row_exists = rows < lq
    out = tl.load(
        Out + bh * stride_ob + rows[:, None] * stride_om + dims_v[None, :],
        mask=row_exists[:, None],
        other=0.0,
    )
    grad_out = tl.load(
        DOut + bh * stride_dob + rows[:, None] * stride_dom + dims_v[None, :],
        mask=row_exists[:, None],
        other=0.0,
    )
    delta = tl.sum(out.to(tl.float32) * grad_out.to(tl.float32), 1)
    tl.store(Delta + bh * lq + rows, delta, mask=row_exists)


# --- dK and dV: one program per key block ---------------------------------------------------


@triton.jit
def _dkdv_over_query_blocks(
    dk,
    dv,  # (BLOCK_N, HEAD_DIM), (BLOCK_N, HEAD_DIM_V) float32 accumulators
    k,
    v,  # (BLOCK_N, HEAD_DIM), (BLOCK_N, HEAD_DIM_V): this program's key block
    q_ptrs,
    do_ptrs,  # pointers to rows 0 .. BLOCK_M-1 of Q and dO of one query head
    lse_ptr,
    delta_ptr,  # row 0 of LSE and Delta of that head
    stride_qm,
    stride_dom,
    cols,  # (BLOCK_N,) key indices of the block
    start,
    end,
    lq,
    qk_scale,
    MASKED: tl.constexpr,
    CAUSAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Add the contributions of query rows ``start, start + BLOCK_M, ... < end`` to dK, dV.

    Everything is computed transposed, keys as rows, ``(BLOCK_N, BLOCK_M)``, so that ``dV += Pᵀ
    dO`` and ``dK += dSᵀ Q`` are plain products with no transpose of the big tiles.
    """
    rows_in_block = tl.arange(0, BLOCK_M)
    for start_m in range(start, end, BLOCK_M):
        start_m = tl.multiple_of(start_m, BLOCK_M)
        rows = start_m + rows_in_block  # (BLOCK_M,) query indices
        if MASKED:
            row_exists = rows < lq
            q = tl.load(q_ptrs + start_m * stride_qm, mask=row_exists[:, None], other=0.0)
            do = tl.load(do_ptrs + start_m * stride_dom, mask=row_exists[:, None], other=0.0)
            lse = tl.load(lse_ptr + rows, mask=row_exists, other=0.0)
            delta = tl.load(delta_ptr + rows, mask=row_exists, other=0.0)
        else:
            q = tl.load(q_ptrs + start_m * stride_qm)
            do = tl.load(do_ptrs + start_m * stride_dom)
            lse = tl.load(lse_ptr + rows)
            delta = tl.load(delta_ptr + rows)

        # Pᵀ = exp(Sᵀ - LSE), in log2 units like the forward: 2 ** (x · log2 e) = e ** x.
        scores_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * qk_scale
        weights_t = tl.math.exp2(scores_t - lse[None, :] * 1.4426950408889634)  # (BLOCK_N, BLOCK_M)
        if MASKED:
            allowed = row_exists[None, :]
            if CAUSAL:
                allowed = allowed & (cols[:, None] <= rows[None, :])
            weights_t = tl.where(allowed, weights_t, 0.0)

        dv = tl.dot(weights_t.to(do.dtype), do, dv, input_precision=DOT_PRECISION)  # += Pᵀ dO
        grad_weights_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # dPᵀ = V dOᵀ
        grad_scores_t = weights_t * (grad_weights_t - delta[None, :])  # dSᵀ = Pᵀ ∘ (dPᵀ - D)
        dk = tl.dot(grad_scores_t.to(q.dtype), q, dk, input_precision=DOT_PRECISION)  # += dSᵀ Q
    return dk, dv


# The lengths and the group vary from call to call: compile once for all their values rather
# than specialise on each one's divisibility (and on the value 1), Triton's default.
@triton.jit(do_not_specialize=["lq", "lk", "lq_bucket", "lk_bucket", "group"])
def flash_attention_dkdv_kernel(
    Q,
    K,
    V,
    DOut,  # (BH, Lq, d), (BH / GROUP, Lk, d), (BH / GROUP, Lk, dv), (BH, Lq, dv)
    LSE,
    Delta,  # (BH, Lq) float32 each, contiguous
    DK,
    DV,  # (BH / GROUP, Lk, d), (BH / GROUP, Lk, dv): written here
    stride_qb,
    stride_qm,
    stride_kb,
    stride_kn,
    stride_vb,
    stride_vn,
    stride_dob,
    stride_dom,
    stride_dkb,
    stride_dkn,
    stride_dvb,
    stride_dvn,
    lq,
    lk,
    lq_bucket,
    lk_bucket,  # next powers of two of lq, lk: autotuning keys only, unused here
    scale,
    qk_scale,  # scale * log2(e)
    group,  # query heads per key/value head: h / h_kv
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_V: tl.constexpr,
    CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,  # BLOCK_N must be a multiple of BLOCK_M
):
    """Grid ``(cdiv(Lk, BLOCK_N), BH / GROUP)``: program ``(n, kv_bh)`` writes ``dK``, ``dV`` of
    keys ``n·BLOCK_N .. (n+1)·BLOCK_N - 1`` of key/value head ``kv_bh``, summed over the query
    heads ``kv_bh·GROUP .. kv_bh·GROUP + GROUP - 1`` that read them."""
    kv_bh = tl.program_id(1).to(tl.int64)
    start_n = tl.program_id(0) * BLOCK_N
    cols = start_n + tl.arange(0, BLOCK_N)
    rows_in_block = tl.arange(0, BLOCK_M)
    dims = tl.arange(0, HEAD_DIM)
    dims_v = tl.arange(0, HEAD_DIM_V)

    # Keys past Lk load as 0; their rows of dK, dV are computed but never stored, and a key's
    # row depends on no other key's, so they change nothing else.
    key_exists = cols < lk
    k = tl.load(
        K + kv_bh * stride_kb + cols[:, None] * stride_kn + dims[None, :],
        mask=key_exists[:, None],
        other=0.0,
    )
    v = tl.load(
        V + kv_bh * stride_vb + cols[:, None] * stride_vn + dims_v[None, :],
        mask=key_exists[:, None],
        other=0.0,
    )
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM_V], dtype=tl.float32)

    # Query rows in three runs. Causal: rows below start_n see none of these keys (skipped);
    # rows start_n .. start_n + BLOCK_N - 1 straddle the diagonal (masked); later rows see them
    # all. Then whole query blocks need no mask, and a ragged last block (Lq % BLOCK_M) does.
    full_rows_end = (lq // BLOCK_M) * BLOCK_M
    if CAUSAL:
        band_start = start_n
        band_end = tl.minimum(start_n + BLOCK_N, lq)
    else:
        band_start = 0
        band_end = 0
    tail_start = tl.maximum(full_rows_end, band_end)

    for head in range(group):  # the query heads sharing this key/value head, added up on chip
        bh = kv_bh * group + head
        q_ptrs = Q + bh * stride_qb + rows_in_block[:, None] * stride_qm + dims[None, :]
        do_ptrs = DOut + bh * stride_dob + rows_in_block[:, None] * stride_dom + dims_v[None, :]
        lse_ptr = LSE + bh * lq
        delta_ptr = Delta + bh * lq
        dk, dv = _dkdv_over_query_blocks(
            dk, dv, k, v, q_ptrs, do_ptrs, lse_ptr, delta_ptr, stride_qm, stride_dom, cols,
            band_start, band_end, lq, qk_scale,
            MASKED=True, CAUSAL=CAUSAL, BLOCK_M=BLOCK_M, DOT_PRECISION=DOT_PRECISION,
        )  # fmt: skip
        dk, dv = _dkdv_over_query_blocks(
            dk, dv, k, v, q_ptrs, do_ptrs, lse_ptr, delta_ptr, stride_qm, stride_dom, cols,
            band_end, full_rows_end, lq, qk_scale,
            MASKED=False, CAUSAL=CAUSAL, BLOCK_M=BLOCK_M, DOT_PRECISION=DOT_PRECISION,
        )  # fmt: skip
        dk, dv = _dkdv_over_query_blocks(
            dk, dv, k, v, q_ptrs, do_ptrs, lse_ptr, delta_ptr, stride_qm, stride_dom, cols,
            tail_start, lq, lq, qk_scale,
            MASKED=True, CAUSAL=CAUSAL, BLOCK_M=BLOCK_M, DOT_PRECISION=DOT_PRECISION,
        )  # fmt: skip

    # S = scale · Q Kᵀ, so dK = scale · dSᵀ Q: the scale applied once, at the end.
    dk = dk * scale
    tl.store(
        DK + kv_bh * stride_dkb + cols[:, None] * stride_dkn + dims[None, :],
        dk.to(DK.dtype.element_ty),
        mask=key_exists[:, None],
    )
    tl.store(
        DV + kv_bh * stride_dvb + cols[:, None] * stride_dvn + dims_v[None, :],
        dv.to(DV.dtype.element_ty),
        mask=key_exists[:, None],
    )


# --- dQ: one program per query block, like the forward --------------------------------------


@triton.jit
def _dq_over_key_blocks(
    dq,  # (BLOCK_M, HEAD_DIM) float32 accumulator
    q,
    do,  # (BLOCK_M, HEAD_DIM), (BLOCK_M, HEAD_DIM_V): this program's query tile and its dO
    lse,
    delta,  # (BLOCK_M,) float32
    k_ptrs,
    v_ptrs,  # pointers to key/value rows 0 .. BLOCK_N-1 of the key/value head
    stride_kn,
    stride_vn,
    rows,
    cols_in_block,  # (BLOCK_M,) query indices, (BLOCK_N,) 0 .. BLOCK_N-1
    start,
    end,
    lk,
    qk_scale,
    MASKED: tl.constexpr,
    CAUSAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Add ``dS K`` of key blocks ``start, start + BLOCK_N, ... < end`` to dQ (scale left out)."""
    for start_n in range(start, end, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        cols = start_n + cols_in_block  # (BLOCK_N,) key indices
        if MASKED:
            key_exists = cols < lk
            k = tl.load(k_ptrs + start_n * stride_kn, mask=key_exists[:, None], other=0.0)
            v = tl.load(v_ptrs + start_n * stride_vn, mask=key_exists[:, None], other=0.0)
        else:
            k = tl.load(k_ptrs + start_n * stride_kn)
            v = tl.load(v_ptrs + start_n * stride_vn)

        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
        weights = tl.math.exp2(scores - lse[:, None] * 1.4426950408889634)  # P, (BLOCK_M, BLOCK_N)
        if MASKED:
            allowed = key_exists[None, :]
            if CAUSAL:
                allowed = allowed & (cols[None, :] <= rows[:, None])
            weights = tl.where(allowed, weights, 0.0)

        grad_weights = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)  # dP = dO Vᵀ
        grad_scores = weights * (grad_weights - delta[:, None])  # dS = P ∘ (dP - D)
        dq = tl.dot(grad_scores.to(k.dtype), k, dq, input_precision=DOT_PRECISION)  # += dS K
    return dq


@triton.jit(do_not_specialize=["lq", "lk", "lq_bucket", "lk_bucket", "group"])
def flash_attention_dq_kernel(
    Q,
    K,
    V,
    DOut,  # (BH, Lq, d), (BH / GROUP, Lk, d), (BH / GROUP, Lk, dv), (BH, Lq, dv)
    LSE,
    Delta,  # (BH, Lq) float32 each, contiguous
    DQ,  # (BH, Lq, d): written here
    stride_qb,
    stride_qm,
    stride_kb,
    stride_kn,
    stride_vb,
    stride_vn,
    stride_dob,
    stride_dom,
    stride_dqb,
    stride_dqm,
    lq,
    lk,
    lq_bucket,
    lk_bucket,  # next powers of two of lq, lk: autotuning keys only, unused here
    scale,
    qk_scale,  # scale * log2(e)
    group,  # query heads per key/value head: h / h_kv
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_V: tl.constexpr,
    CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,  # BLOCK_M must be a multiple of BLOCK_N
):
    """Grid ``(cdiv(Lq, BLOCK_M), BH)``: program ``(m, bh)`` writes ``dQ`` of one query tile,
    the tile order and the split into unmasked and masked key blocks those of the forward."""
    if CAUSAL:
        tile = tl.num_programs(0) - 1 - tl.program_id(0)  # the longest rows first
    else:
        tile = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    kv_bh = bh // group

    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_in_block = tl.arange(0, BLOCK_N)
    dims = tl.arange(0, HEAD_DIM)
    dims_v = tl.arange(0, HEAD_DIM_V)

    # Rows past Lq load as 0; their dQ is computed but never stored.
    row_exists = rows < lq
    q = tl.load(
        Q + bh * stride_qb + rows[:, None] * stride_qm + dims[None, :],
        mask=row_exists[:, None],
        other=0.0,
    )
    do = tl.load(
        DOut + bh * stride_dob + rows[:, None] * stride_dom + dims_v[None, :],
        mask=row_exists[:, None],
        other=0.0,
    )
    lse = tl.load(LSE + bh * lq + rows, mask=row_exists, other=0.0)
    delta = tl.load(Delta + bh * lq + rows, mask=row_exists, other=0.0)
    k_ptrs = K + kv_bh * stride_kb + cols_in_block[:, None] * stride_kn + dims[None, :]
    v_ptrs = V + kv_bh * stride_vb + cols_in_block[:, None] * stride_vn + dims_v[None, :]
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    full_blocks_end = (lk // BLOCK_N) * BLOCK_N
    if CAUSAL:
        unmasked_end = tl.minimum(tile * BLOCK_M, full_blocks_end)
        end = tl.minimum((tile + 1) * BLOCK_M, lk)
    else:
        unmasked_end = full_blocks_end
        end = lk

    dq = _dq_over_key_blocks(
        dq, q, do, lse, delta, k_ptrs, v_ptrs, stride_kn, stride_vn, rows, cols_in_block,
        0, unmasked_end, lk, qk_scale,
        MASKED=False, CAUSAL=CAUSAL, BLOCK_N=BLOCK_N, DOT_PRECISION=DOT_PRECISION,
    )  # fmt: skip
    dq = _dq_over_key_blocks(
        dq, q, do, lse, delta, k_ptrs, v_ptrs, stride_kn, stride_vn, rows, cols_in_block,
        unmasked_end, end, lk, qk_scale,
        MASKED=True, CAUSAL=CAUSAL, BLOCK_N=BLOCK_N, DOT_PRECISION=DOT_PRECISION,
    )  # fmt: skip

    dq = dq * scale  # dQ = scale · dS K
    tl.store(
        DQ + bh * stride_dqb + rows[:, None] * stride_dqm + dims[None, :],
        dq.to(DQ.dtype.element_ty),
        mask=row_exists[:, None],
    )


# --- tiles ----------------------------------------------------------------------------------

# Interpreter (TRITON_INTERPRET=1, CPU): small fixed tiles, so short tests still cross several
# blocks both ways, ragged ends and a diagonal that cuts through a tile.
DELTA_BLOCK_M = 64
INTERPRETER_DKDV_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 32, "num_warps": 4, "num_stages": 1}
INTERPRETER_DQ_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1}

# Autotuning candidates (BLOCK_M, BLOCK_N, num_warps, num_stages), NOT yet measured on a GPU:
# starting points after Triton's fused-attention tutorial (dK/dV: 32 query rows per step against
# 128 keys; dQ: 128 query rows against 32-key steps), with a smaller tile for head dim 128, whose
# five tiles of (block, d) per step need more registers and shared memory. A candidate that does
# not fit the GPU's shared memory is skipped by the autotuner. benchmarks/gpu_check.py records
# the tile each shape picked. Each candidate is one more compile, hence two or three.
_DKDV_TILES = {
    ("16bit", "small"): [(32, 128, 4, 3), (64, 64, 4, 3), (32, 64, 4, 2)],
    ("16bit", "large"): [(32, 128, 8, 2), (32, 64, 4, 2), (64, 64, 8, 2)],
    ("fp32", "small"): [(16, 32, 4, 2)],
    ("fp32", "large"): [(16, 16, 4, 1)],
}
_DQ_TILES = {
    ("16bit", "small"): [(128, 32, 4, 3), (64, 64, 4, 3), (64, 32, 4, 2)],
    ("16bit", "large"): [(128, 32, 8, 2), (64, 32, 4, 2), (64, 64, 8, 2)],
    ("fp32", "small"): [(32, 16, 4, 2)],
    ("fp32", "large"): [(16, 16, 4, 1)],
}


def _pruner(tiles: dict):
    def prune(configs, named_args, **kwargs):
        """Keep the candidates for this call's dtype and head dims."""
        args = {**named_args, **kwargs}
        kind = "fp32" if args["Q"].dtype == torch.float32 else "16bit"
        size = "small" if max(args["HEAD_DIM"], args["HEAD_DIM_V"]) <= 64 else "large"
        wanted = tiles[kind, size]
        return [c for c in configs if tile_of(c) in wanted]

    return prune


_autotuned = {}


def autotuned_kernels():
    """``(dkdv, dq)``: the two kernels wrapped in ``triton.autotune`` (built on first use, since
    autotune needs a GPU driver), tuned once per (head dims, causal, dtypes, power-of-two buckets
    of ``Lq`` and ``Lk``). Both kernels only store, never add into memory, so the autotuner may
    run them repeatedly on the same outputs."""
    if not _autotuned:
        key = ["lq_bucket", "lk_bucket", "HEAD_DIM", "HEAD_DIM_V", "CAUSAL"]
        for name, kernel, tiles in (
            ("dkdv", flash_attention_dkdv_kernel, _DKDV_TILES),
            ("dq", flash_attention_dq_kernel, _DQ_TILES),
        ):
            _autotuned[name] = triton.autotune(
                configs=configs_of(tile for group in tiles.values() for tile in group),
                key=key,
                prune_configs_by={"early_config_prune": _pruner(tiles)},
            )(kernel)
    return _autotuned["dkdv"], _autotuned["dq"]


# triton.jit decides at definition time: under TRITON_INTERPRET=1 it returns an interpreted
# function (runs on CPU tensors, no autotuning) instead of a JITFunction.
INTERPRETED = not isinstance(flash_attention_dq_kernel, triton.JITFunction)
