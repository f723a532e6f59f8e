"""The Triton kernel of :func:`selfattn_course.kernels.flash_attention`: FlashAttention-2 forward.

(The backward pass, which reads the log-sum-exp this kernel saves, is in :mod:`._flash_bwd`.)

This module imports ``triton`` at the top, so only :mod:`.flash_attention` imports it, and only
when the kernel is first launched (a machine without Triton can still import the package).

One program computes one ``BLOCK_M``-row tile of the output of one (batch, head) pair::

    q_tile   = Q[bh, rows]                                 (BLOCK_M, HEAD_DIM), loaded once
    for each key block  cols = start_n .. start_n + BLOCK_N:
        s    = q_tile @ K[bh, cols]ᵀ · scale · log2(e)    (BLOCK_M, BLOCK_N), float32
        m'   = max(m, rowmax(s))                           running row maximum
        p    = 2 ** (s - m')                               unnormalised weights
        l    = l · 2 ** (m - m') + rowsum(p)               running row sum of weights
        acc  = acc · 2 ** (m - m') + p @ V[bh, cols]       running weighted sum of values
        m    = m'
    O[bh, rows]   = acc / l
    LSE[bh, rows] = (m + log2(l)) · ln(2)                  log Σ_j exp(scale · q·k_j), float32

The log-sum-exp is all the backward pass needs to rebuild any tile of the weights exactly,
``P = exp(scale · q kᵀ - LSE)``: one float per query row, O(Lq) memory instead of O(Lq · Lk).

Since ``2 ** (x · log2 e) = e ** x``, folding ``log2(e)`` into the scale lets the loop use the
cheaper ``exp2`` and still compute exactly ``softmax(q kᵀ · scale) v``. Only ``(BLOCK_M, BLOCK_N)``
scores exist at any time; the ``(Lq, Lk)`` matrix is never stored.

Masking is paid only where needed. Key blocks split in two runs:

- *full* blocks: every key exists (``j < Lk``) and, when causal, lies at or left of every row's
  diagonal (``j <= i``), so no mask is computed;
- *edge* blocks: the blocks that straddle the diagonal (causal) and the ragged last block
  (``Lk`` not a multiple of ``BLOCK_N``); their disallowed scores become ``-inf`` (weight 0).

Causal blocks entirely right of the diagonal are skipped: they would get weight 0 anyway.

Grouped-query attention (``GROUP = h / h_kv`` query heads share one key/value head) costs no copy:
the launcher lays the query heads of one key/value head side by side, so query row ``bh`` of
``(batch · h)`` reads key/value row ``bh // GROUP`` of ``(batch · h_kv)``. ``GROUP = 1`` is
multi-head attention.

No row is ever left without an allowed key: key 0 is allowed for every query row (``0 <= i``),
and the launcher handles ``Lk == 0`` itself. So the running maximum is finite after the first
block and ``2 ** (-inf - m)`` is a clean 0, never ``nan``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634  # log2(e): e ** x == 2 ** (x * LOG2_E)


@triton.jit
def _accumulate_key_blocks(
    acc,
    row_sum,
    row_max,  # running state: (BLOCK_M, HEAD_DIM_V), (BLOCK_M,), (BLOCK_M,) float32
    q,  # (BLOCK_M, HEAD_DIM) query tile
    k_ptrs,
    v_ptrs,  # pointers to key/value rows 0 .. BLOCK_N-1 of this (batch, head)
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
    """Fold key blocks ``start, start + BLOCK_N, ... < end`` into the running softmax state."""
    for start_n in range(start, end, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        cols = start_n + cols_in_block  # (BLOCK_N,) key indices
        if MASKED:
            key_exists = cols < lk
            k = tl.load(k_ptrs + start_n * stride_kn, mask=key_exists[:, None], other=0.0)
        else:
            k = tl.load(k_ptrs + start_n * stride_kn)
        # (BLOCK_M, BLOCK_N) scores in log2 units; scaling before the max keeps any sign of scale
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
        if MASKED:
            allowed = key_exists[None, :]
            if CAUSAL:
                allowed = allowed & (cols[None, :] <= rows[:, None])
            scores = tl.where(allowed, scores, float("-inf"))

        new_max = tl.maximum(row_max, tl.max(scores, 1))
        weights = tl.math.exp2(scores - new_max[:, None])  # unnormalised, in [0, 1]
        correction = tl.math.exp2(row_max - new_max)  # rescales what was summed so far
        row_sum = row_sum * correction + tl.sum(weights, 1)
        acc = acc * correction[:, None]

        if MASKED:
            v = tl.load(v_ptrs + start_n * stride_vn, mask=key_exists[:, None], other=0.0)
        else:
            v = tl.load(v_ptrs + start_n * stride_vn)
        acc = tl.dot(weights.to(v.dtype), v, acc, input_precision=DOT_PRECISION)
        row_max = new_max
    return acc, row_sum, row_max


# The lengths vary from call to call: compile once for all of them rather than specialise on
# each value's divisibility (Triton's default for integer arguments).
# ``group`` too: Triton would otherwise compile a separate kernel for the value 1.
@triton.jit(do_not_specialize=["lq", "lk", "lq_bucket", "lk_bucket", "group"])
def flash_attention_forward_kernel(
    Q,
    K,
    V,
    Out,  # (BH, Lq, d), (BH / group, Lk, d), (BH / group, Lk, dv), (BH, Lq, dv); stride 1 in d
    LSE,  # (BH, Lq) float32, contiguous: the row's log-sum-exp, saved for the backward pass
    stride_qb,
    stride_qm,
    stride_kb,
    stride_kn,
    stride_vb,
    stride_vn,
    stride_ob,
    stride_om,
    lq,
    lk,
    lq_bucket,
    lk_bucket,  # next powers of two of lq, lk: autotuning keys only, unused here
    qk_scale,  # scale * log2(e)
    group,  # query heads per key/value head: h / h_kv (1 without grouped-query attention)
    HEAD_DIM: tl.constexpr,
    HEAD_DIM_V: tl.constexpr,
    CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,  # "ieee" keeps float32 inputs exact; ignored for 16-bit inputs
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,  # BLOCK_M must be a multiple of BLOCK_N
):
    """Grid ``(cdiv(Lq, BLOCK_M), BH)``: program ``(m, bh)`` writes one ``BLOCK_M``-row tile.

    The tile is ``Out[bh, t*BLOCK_M : (t+1)*BLOCK_M]`` with ``t = m``, or ``t = T - 1 - m`` (``T``
    tiles) when ``CAUSAL``: the tiles with the most keys to see start first.
    """
    if CAUSAL:
        # Later row tiles see more keys; launching them first evens out the tail of the grid.
        tile = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        tile = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    kv_bh = bh // group  # the key/value head this query head reads (grouped-query attention)

    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_in_block = tl.arange(0, BLOCK_N)
    dims = tl.arange(0, HEAD_DIM)
    dims_v = tl.arange(0, HEAD_DIM_V)

    row_exists = rows < lq
    q = tl.load(
        Q + bh * stride_qb + rows[:, None] * stride_qm + dims[None, :],
        mask=row_exists[:, None],
        other=0.0,
    )
    k_ptrs = K + kv_bh * stride_kb + cols_in_block[:, None] * stride_kn + dims[None, :]
    v_ptrs = V + kv_bh * stride_vb + cols_in_block[:, None] * stride_vn + dims_v[None, :]

    row_max = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM_V], dtype=tl.float32)

    full_blocks_end = (lk // BLOCK_N) * BLOCK_N  # keys below this come in whole blocks
    if CAUSAL:
        # Keys left of the tile's first row are allowed for all its rows; keys right of its last
        # row are allowed for none. BLOCK_M is a multiple of BLOCK_N, so both ends are block edges.
        unmasked_end = tl.minimum(tile * BLOCK_M, full_blocks_end)
        end = tl.minimum((tile + 1) * BLOCK_M, lk)
    else:
        unmasked_end = full_blocks_end
        end = lk

    acc, row_sum, row_max = _accumulate_key_blocks(
        acc,
        row_sum,
        row_max,
        q,
        k_ptrs,
        v_ptrs,
        stride_kn,
        stride_vn,
        rows,
        cols_in_block,
        0,
        unmasked_end,
        lk,
        qk_scale,
        MASKED=False,
        CAUSAL=CAUSAL,
        BLOCK_N=BLOCK_N,
        DOT_PRECISION=DOT_PRECISION,
    )
    acc, row_sum, row_max = _accumulate_key_blocks(
        acc,
        row_sum,
        row_max,
        q,
        k_ptrs,
        v_ptrs,
        stride_kn,
        stride_vn,
        rows,
        cols_in_block,
        unmasked_end,
        end,
        lk,
        qk_scale,
        MASKED=True,
        CAUSAL=CAUSAL,
        BLOCK_N=BLOCK_N,
        DOT_PRECISION=DOT_PRECISION,
    )

    # row_sum >= 1 for every row (its maximum contributes 2**0); the guard only documents intent.
    out = acc / tl.where(row_sum > 0.0, row_sum, 1.0)[:, None]
    out_ptrs = Out + bh * stride_ob + rows[:, None] * stride_om + dims_v[None, :]
    tl.store(out_ptrs, out.to(Out.dtype.element_ty), mask=row_exists[:, None])
    # log Σ_j exp(scale · q·k_j) = (row_max + log2(row_sum)) · ln 2, both being in log2 units.
    log_sum_exp = (row_max + tl.math.log2(row_sum)) * 0.6931471805599453
    tl.store(LSE + bh * lq + rows, log_sum_exp, mask=row_exists)


# Interpreter (TRITON_INTERPRET=1, CPU): one small fixed tile, so short tests still cross
# several key blocks, a ragged tail and a diagonal that cuts through a row tile.
INTERPRETER_CONFIG = {"BLOCK_M": 32, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1}


# Autotuning candidates, (BLOCK_M, BLOCK_N, num_warps, num_stages). Chosen from a sweep of 14
# tiles on an H200 (sm_90, Triton 3.6; benchmarks/gpu_check.py --sweep, results in
# benchmarks/recorded/): (128, 64, 8 warps, 3 stages) was fastest at N = 4096 for 7 of 8 dtype /
# head-dim / causal shapes, 1.33-1.41x torch's flash backend. Each (dtype, head dim) tries at most
# four, because every candidate is a separate compile of a second or more; the 64-row tile is the
# one kept for short sequences (see _prune_configs).
_TILES_16BIT_SMALL_HEAD = [
    (128, 64, 8, 3),
    (128, 64, 8, 4),
    (128, 128, 4, 3),
    (64, 64, 4, 3),
]  # d <= 64
_TILES_16BIT_LARGE_HEAD = [(128, 64, 8, 3), (128, 64, 8, 4), (128, 128, 8, 3), (64, 64, 4, 3)]
# Exact float32 dots run on CUDA cores and hold whole tiles in registers: small tiles, one each.
_TILES_FLOAT32_SMALL_HEAD = [(64, 32, 8, 2)]
_TILES_FLOAT32_LARGE_HEAD = [(32, 16, 8, 2)]


def _candidate_tiles(head_dim: int, dtype_is_fp32: bool):
    if dtype_is_fp32:
        return _TILES_FLOAT32_SMALL_HEAD if head_dim <= 64 else _TILES_FLOAT32_LARGE_HEAD
    return _TILES_16BIT_SMALL_HEAD if head_dim <= 64 else _TILES_16BIT_LARGE_HEAD


def configs_of(tiles):
    """One ``triton.Config`` per distinct tile ``(BLOCK_M, BLOCK_N, num_warps, num_stages)``, in
    sorted order (the backward's kernels use it too)."""
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s)
        for m, n, w, s in sorted(set(tiles))
    ]


def tile_of(config):
    """The tile ``(BLOCK_M, BLOCK_N, num_warps, num_stages)`` of a ``triton.Config``."""
    return (config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"], config.num_warps, config.num_stages)


def _gpu_configs():
    return configs_of(
        _TILES_16BIT_SMALL_HEAD
        + _TILES_16BIT_LARGE_HEAD
        + _TILES_FLOAT32_SMALL_HEAD
        + _TILES_FLOAT32_LARGE_HEAD
    )


def _prune_configs(configs, named_args, **kwargs):
    """Keep the candidates for this call's dtype and head dims; for sequences of at most 64 keep
    only 64-row tiles (most of a 128-row tile would be padding)."""
    args = {**named_args, **kwargs}
    wanted = _candidate_tiles(
        max(args["HEAD_DIM"], args["HEAD_DIM_V"]), args["Q"].dtype == torch.float32
    )
    kept = [c for c in configs if tile_of(c) in wanted]
    if max(int(args["lq"]), int(args["lk"])) <= 64:
        return [c for c in kept if c.kwargs["BLOCK_M"] <= 64] or kept
    return kept


_autotuned = None


def autotuned_kernel():
    """The kernel wrapped in ``triton.autotune`` (built on first use: autotune needs a GPU driver).

    Tuned once per (head dims, causal, dtypes, power-of-two buckets of ``Lq`` and ``Lk``), so a
    new sequence length in a known bucket reuses the tuned tile without re-benchmarking.
    """
    global _autotuned
    if _autotuned is None:
        _autotuned = triton.autotune(
            configs=_gpu_configs(),
            key=["lq_bucket", "lk_bucket", "HEAD_DIM", "HEAD_DIM_V", "CAUSAL"],
            prune_configs_by={"early_config_prune": _prune_configs},
        )(flash_attention_forward_kernel)
    return _autotuned


# triton.jit decides at definition time: under TRITON_INTERPRET=1 it returns an interpreted
# function (runs on CPU tensors, no autotuning) instead of a JITFunction.
INTERPRETED = not isinstance(flash_attention_forward_kernel, triton.JITFunction)
