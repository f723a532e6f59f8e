"""``flash_attention``: exact attention from fused Triton kernels (FlashAttention-2, both passes).

.. math::

    \\operatorname{Attention}(Q, K, V) =
    \\operatorname{softmax}\\!\\left(Q K^\\top \\cdot s\\right) V,
    \\qquad s = 1/\\sqrt{d} \\text{ by default}

Same numbers as :func:`selfattn_course.attention.scaled_dot_product_attention` (up to rounding),
but the kernel walks over key blocks with an online softmax and never stores the ``(Lq, Lk)``
weights: O(Lq + Lk) memory per head instead of O(Lq · Lk), and far less traffic to and from HBM
(the GPU's main memory). It is not one pass over HBM: each program reads its tile of
``BLOCK_M`` queries once and writes its output once, but reads every block of K and V it needs
again, so K and V are read up to ``ceil(Lq / BLOCK_M)`` times. With tiles sized to an on-chip
memory of ``M`` elements that is Θ(N²d²/M) HBM accesses for ``Lq = Lk = N``, against
Θ(Nd + N²) for attention that writes its scores and weights to HBM (Dao et al., 2022,
Theorem 2).

Shapes (leading dims ``...`` broadcast between the inputs, as in the reference):

- ``q``: ``(..., Lq, d)``, ``k``: ``(..., Lk, d)``, ``v``: ``(..., Lk, dv)``
- output: ``(..., Lq, dv)``, the dtype and device of ``q``

Grouped-query attention, ``enable_gqa=True`` as in torch's SDPA: ``q`` is ``(..., h, Lq, d)``
and ``k``, ``v`` have ``h_kv`` heads, ``(..., h_kv, Lk, d)``, with ``h_kv`` dividing ``h``
(multi-query attention: ``h_kv = 1``). Query head ``t`` attends with key/value head
``t // (h / h_kv)``, read in place: the kernels never copy the repeated heads.

Supported: CUDA tensors in float16, bfloat16 or float32, head dims ``d, dv`` in {32, 64, 128},
any ``Lq`` and ``Lk``. ``causal=True`` lets query ``i`` see keys ``j <= i`` (top-left aligned,
like torch's ``is_causal``). With ``TRITON_INTERPRET=1`` set *before* ``triton`` is imported,
Triton's interpreter runs the same kernel on CPU tensors (slowly; float16/float32 only, since the
interpreter cannot multiply bfloat16).

Gradients: the forward saves its output ``O`` and, per query row, the log-sum-exp of the scores
``LSE = log Σ_j exp(scale · q·k_j)`` (float32): O(Lq) numbers, not the ``(Lq, Lk)`` weights.
The backward kernels (:mod:`._flash_bwd`, FlashAttention-2's Algorithm 2) first compute
``D = rowsum(dO ∘ O)``, then rebuild each tile of weights ``exp(scale · q kᵀ - LSE)`` on chip and
accumulate ``dQ``, ``dK``, ``dV`` from it: O(Lq + Lk) extra memory per head, no atomics, the same
result on every run. With grouped-query attention, the ``dK``, ``dV`` of a key/value head are
summed over its query heads inside the kernel. Gradients of inputs broadcast over leading dims are
summed by autograd, as for any broadcast.

Triton is imported on the first call, not at import time, so this module loads on machines
without Triton (macOS, Windows) and only calling it fails there, with a message saying why.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os

import torch

from .._arrays import shape_str
from ..attention.sdpa import check_qkv, resolve_scale

SUPPORTED_HEAD_DIMS = (32, 64, 128)
SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_MAX_GRID_Y = 65535  # CUDA's limit on the grid's second axis, which indexes (batch, head) pairs


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """Exact attention ``softmax(q kᵀ · scale) v`` with fused Triton kernels, differentiable.

    Args:
        q: ``(..., Lq, d)`` queries, a CUDA tensor (a CPU tensor under ``TRITON_INTERPRET=1``);
            ``(..., h, Lq, d)`` with ``enable_gqa``.
        k: ``(..., Lk, d)`` keys, same dtype and device as ``q``; ``(..., h_kv, Lk, d)`` with
            ``enable_gqa``.
        v: ``(..., Lk, dv)`` values, same dtype and device; ``(..., h_kv, Lk, dv)`` with
            ``enable_gqa``.
        causal: if True, query ``i`` attends only to keys ``j <= i`` (top-left aligned).
        scale: multiplier of ``q kᵀ``; default ``1 / sqrt(d)``.
        enable_gqa: grouped-query attention, as torch's ``enable_gqa``: query head ``t`` uses
            key/value head ``t // (h / h_kv)``; ``h_kv`` must divide ``h`` (``h_kv = h`` is
            multi-head attention, ``h_kv = 1`` multi-query attention).

    Returns:
        ``(..., Lq, dv)`` in ``q``'s dtype. With ``Lk == 0`` every row has no key and is 0.

    Raises:
        TypeError: NumPy input, mixed or unsupported dtypes (float16/bfloat16/float32 only).
        ValueError: mismatched shapes, a head dim outside {32, 64, 128}, head counts that
            ``enable_gqa`` cannot group, or a CPU tensor without ``TRITON_INTERPRET=1``.
        RuntimeError: Triton is not installed.
    """
    _check_inputs(q, k, v, enable_gqa)
    return _attention_of_grouped_heads(
        q, k, v, causal=bool(causal), scale=resolve_scale(scale, q.shape[-1]), gqa=enable_gqa
    )


def _check_inputs(q, k, v, enable_gqa: bool = False) -> None:
    """Raise unless ``flash_attention`` can run on ``q, k, v``; Triton's presence is not checked."""
    if not isinstance(q, torch.Tensor):
        check_qkv(q, k, v)  # names the offending argument's kind
        raise TypeError(f"flash_attention takes torch tensors, got {type(q).__name__}")
    if enable_gqa:
        _check_heads_group(q, k, v)
        # Compare the rest as the kernel will see it: q's h heads as (h_kv, h / h_kv).
        heads_kv = k.shape[-3]
        check_qkv(q.unflatten(-3, (heads_kv, -1)), k.unsqueeze(-3), v.unsqueeze(-3))
    else:
        check_qkv(q, k, v)
    if q.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"flash_attention supports float16, bfloat16 and float32, got dtype {q.dtype}"
        )
    for name, x in (("q", q), ("v", v)):
        if x.shape[-1] not in SUPPORTED_HEAD_DIMS:
            raise ValueError(
                f"flash_attention supports head dims d in {SUPPORTED_HEAD_DIMS}, "
                f"got d={x.shape[-1]} ({name} of shape {shape_str(x.shape)})"
            )
    if q.device.type != "cuda" and not _interpreter_requested():
        raise ValueError(
            f"flash_attention runs on CUDA tensors, got tensors on {q.device}; "
            "set TRITON_INTERPRET=1 before importing triton to run it on the CPU (slowly), "
            "or use selfattn_course.attention.scaled_dot_product_attention there"
        )


def _check_heads_group(q, k, v) -> None:
    """With ``enable_gqa``: heads at dim -3, ``k`` and ``v`` alike, ``h_kv`` dividing ``h``."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.ndim < 3:
            shape = shape_str(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(
                f"with enable_gqa, {name} must be (..., heads, L, d) with at least 3 dims, "
                f"got {name} of shape {shape}"
            )
    if k.shape[-3] != v.shape[-3]:
        raise ValueError(
            f"with enable_gqa, k and v must have the same number of heads (dim -3): k has shape "
            f"{shape_str(k.shape)}, v has shape {shape_str(v.shape)}"
        )
    if k.shape[-3] == 0 or q.shape[-3] % k.shape[-3]:
        raise ValueError(
            f"with enable_gqa, the key/value heads h_kv must divide the query heads h (dim -3): "
            f"q has shape {shape_str(q.shape)}, k has shape {shape_str(k.shape)}"
        )


def _interpreter_requested() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def _kernel_module(name: str = "_flash_fwd"):
    """Import a Triton kernel module (``_flash_fwd`` or ``_flash_bwd``), or explain why not."""
    try:
        return importlib.import_module(f".{name}", __package__)
    except ImportError as error:
        raise RuntimeError(
            "flash_attention needs Triton "
            "(pip install triton; wheels exist for Linux x86_64 only): "
            f"{error}"
        ) from error


def _attention_of_grouped_heads(q, k, v, *, causal: bool, scale: float, gqa: bool):
    """Lay ``q, k, v`` out as the kernels read them, run the autograd Function, shape the result.

    The kernels see three-dimensional tensors: queries ``(BH, Lq, d)`` and keys/values
    ``(BH / group, Lk, d)``, where the ``group`` query heads of one key/value head are adjacent,
    so query row ``bh`` reads key/value row ``bh // group``. Here that layout is built with
    ``unflatten``/``expand``/``reshape``, ordinary differentiable torch ops: a view where the
    strides allow it, and autograd sums the gradient of anything broadcast over leading dims.
    """
    lq, lk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    if gqa:  # (..., h, Lq, d) -> (..., h_kv, group, Lq, d)
        group = q.shape[-3] // k.shape[-3]
        q_grouped = q.unflatten(-3, (k.shape[-3], group))
    else:  # a group of one query head per key/value head
        group = 1
        q_grouped = q.unsqueeze(-3)
    outer = torch.broadcast_shapes(q_grouped.shape[:-3], k.shape[:-2], v.shape[:-2])
    kv_rows = math.prod(outer)
    q3 = _as_rows(q_grouped.expand(*outer, group, lq, d), kv_rows * group, lq, d)
    k3 = _as_rows(k.expand(*outer, lk, d), kv_rows, lk, d)
    v3 = _as_rows(v.expand(*outer, lk, dv), kv_rows, lk, dv)
    out3 = _FlashAttention.apply(q3, k3, v3, group, causal, scale)
    out = out3.view(*outer, group, lq, dv)
    return out.flatten(-4, -3) if gqa else out.squeeze(-3)


def _as_rows(x: torch.Tensor, rows: int, length: int, dim: int) -> torch.Tensor:
    """``x`` viewed as ``(rows, length, dim)`` with a contiguous last dim (the kernels' pointer
    arithmetic assumes stride 1 there); a copy only where no view exists."""
    flat = x.reshape(rows, length, dim)
    return flat if flat.stride(-1) == 1 or flat.numel() == 0 else flat.contiguous()


class _FlashAttention(torch.autograd.Function):
    """Both passes with Triton kernels, on ``(BH, L, d)`` tensors laid out by
    :func:`_attention_of_grouped_heads`.

    Saved for backward: ``q, k, v``, the output and its per-row log-sum-exp, all O(L) per head.
    """

    @staticmethod
    def forward(ctx, q, k, v, group: int, causal: bool, scale: float):
        out, lse = _launch_forward(q, k, v, group, causal, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.group, ctx.causal, ctx.scale = group, causal, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _launch_backward(q, k, v, out, lse, grad_out, ctx.group, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None, None


def _nothing_to_compute(q, k, v) -> bool:
    """No rows, no query, no value dim, or no keys (then every output row is 0)."""
    return q.shape[0] * q.shape[1] * v.shape[2] == 0 or k.shape[1] == 0


def _check_launchable(q, kernels) -> None:
    if q.device.type != "cuda" and not kernels.INTERPRETED:
        raise ValueError(
            f"flash_attention got tensors on {q.device}, but Triton was imported before "
            "TRITON_INTERPRET=1 was set, so its interpreter is off; set it before the first import"
        )
    if q.shape[0] > _MAX_GRID_Y:
        raise ValueError(
            f"flash_attention launches one grid row per (batch, head) pair, at most {_MAX_GRID_Y}; "
            f"q of shape {shape_str(q.shape)} gives {q.shape[0]}"
        )


def _on_device(x: torch.Tensor):
    """Launch on ``x``'s GPU (a no-op context on the CPU, under the interpreter)."""
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def _dot_precision(dtype: torch.dtype) -> str:
    # "ieee" keeps float32 (and, under the interpreter, float64) products exact; 16-bit inputs
    # ignore the setting.
    return "tf32" if dtype in (torch.float16, torch.bfloat16) else "ieee"


def _launch_forward(q, k, v, group: int, causal: bool, scale: float, config: dict | None = None):
    """The forward kernel on ``q (BH, Lq, d)``, ``k (BH/group, Lk, d)``, ``v (BH/group, Lk, dv)``.

    Returns ``(out (BH, Lq, dv), lse (BH, Lq) float32)``. ``config`` fixes the tile,
    ``{"BLOCK_M", "BLOCK_N", "num_warps", "num_stages"}``, instead of autotuning: the interpreter
    always uses the kernel module's ``INTERPRETER_CONFIG``, and ``benchmarks/gpu_check.py
    --sweep`` times tiles one by one through it.
    """
    batch_heads, lq, _ = q.shape
    lk, dv = k.shape[1], v.shape[2]
    if _nothing_to_compute(q, k, v):
        # Rows with no key are 0, and their log-sum-exp, log 0 = -inf, is never read.
        lse = torch.full((batch_heads, lq), float("-inf"), dtype=torch.float32, device=q.device)
        return torch.zeros(batch_heads, lq, dv, dtype=q.dtype, device=q.device), lse
    out = torch.empty(batch_heads, lq, dv, dtype=q.dtype, device=q.device)
    lse = torch.empty(batch_heads, lq, dtype=torch.float32, device=q.device)
    kernels = _kernel_module("_flash_fwd")
    _check_launchable(q, kernels)
    args = (
        q, k, v, out, lse,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        out.stride(0), out.stride(1),
        lq, lk, _bucket(lq), _bucket(lk), scale * kernels.LOG2_E, group,
    )  # fmt: skip
    constants = dict(
        HEAD_DIM=q.shape[2], HEAD_DIM_V=dv, CAUSAL=causal, DOT_PRECISION=_dot_precision(q.dtype)
    )
    with _on_device(q):
        if kernels.INTERPRETED or config is not None:
            config = config or kernels.INTERPRETER_CONFIG
            grid = (math.ceil(lq / config["BLOCK_M"]), batch_heads)
            kernels.flash_attention_forward_kernel[grid](*args, **constants, **config)
        else:
            grid = lambda meta: (math.ceil(lq / meta["BLOCK_M"]), batch_heads)  # noqa: E731
            kernels.autotuned_kernel()[grid](*args, **constants)
    return out, lse


def _launch_backward(q, k, v, out, lse, grad_out, group: int, causal: bool, scale: float):
    """The backward kernels: ``(dq, dk, dv)`` shaped like ``(q, k, v)``, in their dtype.

    Three launches: ``D = rowsum(dO ∘ O)`` (float32, ``(BH, Lq)``), then dK/dV over key blocks
    of each key/value head, then dQ over query blocks of each query head.
    """
    if _nothing_to_compute(q, k, v):  # e.g. no keys: the output was 0 whatever the inputs
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)  # all written
    kernels = _kernel_module("_flash_bwd")
    _check_launchable(q, kernels)
    batch_heads, lq, d = q.shape
    kv_heads, lk, d_v = v.shape
    grad_out = grad_out if grad_out.stride(-1) == 1 else grad_out.contiguous()
    delta = torch.empty(batch_heads, lq, dtype=torch.float32, device=q.device)
    qk_scale = scale * _kernel_module("_flash_fwd").LOG2_E  # the kernels use exp2, like the forward
    constants = dict(
        HEAD_DIM=d, HEAD_DIM_V=d_v, CAUSAL=causal, DOT_PRECISION=_dot_precision(q.dtype)
    )
    common = (
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        grad_out.stride(0), grad_out.stride(1),
    )  # fmt: skip
    dkdv_args = (
        q, k, v, grad_out, lse, delta, dk, dv, *common,
        dk.stride(0), dk.stride(1), dv.stride(0), dv.stride(1),
        lq, lk, _bucket(lq), _bucket(lk), scale, qk_scale, group,
    )  # fmt: skip
    dq_args = (
        q, k, v, grad_out, lse, delta, dq, *common, dq.stride(0), dq.stride(1),
        lq, lk, _bucket(lq), _bucket(lk), scale, qk_scale, group,
    )  # fmt: skip
    with _on_device(q):
        block = kernels.DELTA_BLOCK_M
        kernels.flash_attention_delta_kernel[(math.ceil(lq / block), batch_heads)](
            out, grad_out, delta,
            out.stride(0), out.stride(1), grad_out.stride(0), grad_out.stride(1), lq,
            HEAD_DIM_V=d_v, BLOCK_M=block,
        )  # fmt: skip
        if kernels.INTERPRETED:  # fixed tiles: autotuning needs a GPU driver
            dkdv_kernel = kernels.flash_attention_dkdv_kernel
            dq_kernel = kernels.flash_attention_dq_kernel
            dkdv_config, dq_config = kernels.INTERPRETER_DKDV_CONFIG, kernels.INTERPRETER_DQ_CONFIG
        else:  # the autotuner picks each tile and passes it to the grid as `meta`
            dkdv_kernel, dq_kernel = kernels.autotuned_kernels()
            dkdv_config, dq_config = {}, {}
        # dK/dV: one program per key block of each key/value head
        dkdv_kernel[lambda meta: (math.ceil(lk / meta["BLOCK_N"]), kv_heads)](
            *dkdv_args, **constants, **dkdv_config
        )
        # dQ: one program per query block of each query head
        dq_kernel[lambda meta: (math.ceil(lq / meta["BLOCK_M"]), batch_heads)](
            *dq_args, **constants, **dq_config
        )
    return dq, dk, dv


def _bucket(length: int) -> int:
    """The autotuning bucket of a sequence length: the next power of two, at least 16."""
    return max(16, 1 << (length - 1).bit_length())
