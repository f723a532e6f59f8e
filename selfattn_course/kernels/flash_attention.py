"""``flash_attention``: exact attention from a fused Triton kernel (FlashAttention-2 forward).

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

Supported: CUDA tensors in float16, bfloat16 or float32, head dims ``d, dv`` in {32, 64, 128},
any ``Lq`` and ``Lk``. ``causal=True`` lets query ``i`` see keys ``j <= i`` (top-left aligned,
like torch's ``is_causal``). With ``TRITON_INTERPRET=1`` set *before* ``triton`` is imported,
Triton's interpreter runs the same kernel on CPU tensors (slowly; float16/float32 only, since the
interpreter cannot multiply bfloat16).

Gradients: the kernel has no backward pass of its own. ``backward`` recomputes attention with
the float32 reference and differentiates that, which is exact but uses O(Lq · Lk) memory.

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
from ..attention.sdpa import check_qkv, resolve_scale, scaled_dot_product_attention

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
) -> torch.Tensor:
    """Exact attention ``softmax(q kᵀ · scale) v`` with a fused Triton kernel.

    Args:
        q: ``(..., Lq, d)`` queries, a CUDA tensor (a CPU tensor under ``TRITON_INTERPRET=1``).
        k: ``(..., Lk, d)`` keys, same dtype and device as ``q``.
        v: ``(..., Lk, dv)`` values, same dtype and device.
        causal: if True, query ``i`` attends only to keys ``j <= i`` (top-left aligned).
        scale: multiplier of ``q kᵀ``; default ``1 / sqrt(d)``.

    Returns:
        ``(..., Lq, dv)`` in ``q``'s dtype. With ``Lk == 0`` every row has no key and is 0.

    Raises:
        TypeError: NumPy input, mixed or unsupported dtypes (float16/bfloat16/float32 only).
        ValueError: mismatched shapes, a head dim outside {32, 64, 128}, or a CPU tensor
            without ``TRITON_INTERPRET=1``.
        RuntimeError: Triton is not installed.
    """
    _check_inputs(q, k, v)
    return _FlashAttention.apply(q, k, v, bool(causal), resolve_scale(scale, q.shape[-1]))


def _check_inputs(q, k, v) -> None:
    """Raise unless ``flash_attention`` can run on ``q, k, v``; Triton's presence is not checked."""
    check_qkv(q, k, v)
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"flash_attention takes torch tensors, got {type(q).__name__}")
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


def _interpreter_requested() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def _kernel_module():
    """Import the Triton kernel module, or explain why it cannot be imported."""
    try:
        return importlib.import_module("._flash_fwd", __package__)
    except ImportError as error:
        raise RuntimeError(
            "flash_attention needs Triton "
            "(pip install triton; wheels exist for Linux x86_64 only): "
            f"{error}"
        ) from error


class _FlashAttention(torch.autograd.Function):
    """Forward with the Triton kernel; backward by recomputing through the float32 reference."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, scale: float):
        ctx.save_for_backward(q, k, v)
        ctx.causal, ctx.scale = causal, scale
        return _launch(q, k, v, causal, scale)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        wanted = ctx.needs_input_grad[:3]
        if k.shape[-2] == 0:  # no keys: the output is 0 whatever the inputs
            return tuple(
                torch.zeros_like(x) if needs else None
                for x, needs in zip((q, k, v), wanted, strict=True)
            ) + (None, None)
        with torch.enable_grad():
            inputs = [
                x.detach().float().requires_grad_(needs)
                for x, needs in zip((q, k, v), wanted, strict=True)
            ]
            out = scaled_dot_product_attention(*inputs, causal=ctx.causal, scale=ctx.scale)
            targets = [x for x, needs in zip(inputs, wanted, strict=True) if needs]
            grads = iter(torch.autograd.grad(out, targets, grad_out.float()))
        return tuple(
            next(grads).to(x.dtype) if needs else None
            for x, needs in zip((q, k, v), wanted, strict=True)
        ) + (None, None)


def _launch(q, k, v, causal: bool, scale: float, config: dict | None = None) -> torch.Tensor:
    """Run the kernel on ``(..., L, d)`` inputs: flatten the batch dims, launch, restore them.

    ``config`` fixes the tile, ``{"BLOCK_M", "BLOCK_N", "num_warps", "num_stages"}``, instead of
    autotuning: the interpreter always uses :data:`INTERPRETER_CONFIG`, and
    ``benchmarks/gpu_check.py --sweep`` times tiles one by one through it.
    """
    kernels = _kernel_module()
    if q.device.type != "cuda" and not kernels.INTERPRETED:
        raise ValueError(
            f"flash_attention got tensors on {q.device}, but Triton was imported before "
            "TRITON_INTERPRET=1 was set, so its interpreter is off; set it before the first import"
        )
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    lq, lk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    if math.prod(batch) * lq * dv == 0 or lk == 0:  # nothing to compute, or no keys: rows are 0
        return torch.zeros(*batch, lq, dv, dtype=q.dtype, device=q.device)
    out = torch.empty(*batch, lq, dv, dtype=q.dtype, device=q.device)

    q3, k3, v3 = (
        _as_rows(x, batch, length, dim) for x, length, dim in ((q, lq, d), (k, lk, d), (v, lk, dv))
    )
    out3 = out.view(-1, lq, dv)
    batch_heads = q3.shape[0]  # one grid row per (batch, head) pair
    if batch_heads > _MAX_GRID_Y:
        raise ValueError(
            f"flash_attention launches one grid row per (batch, head) pair, at most {_MAX_GRID_Y}; "
            f"the leading dims {shape_str(batch)} give {batch_heads}"
        )
    args = (
        q3,
        k3,
        v3,
        out3,
        q3.stride(0),
        q3.stride(1),
        k3.stride(0),
        k3.stride(1),
        v3.stride(0),
        v3.stride(1),
        out3.stride(0),
        out3.stride(1),
        lq,
        lk,
        _bucket(lq),
        _bucket(lk),
        scale * kernels.LOG2_E,
    )
    constants = dict(
        HEAD_DIM=d,
        HEAD_DIM_V=dv,
        CAUSAL=causal,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )
    if kernels.INTERPRETED or config is not None:
        config = config or kernels.INTERPRETER_CONFIG
        grid = (math.ceil(lq / config["BLOCK_M"]), batch_heads)
        with torch.cuda.device(q.device) if q.device.type == "cuda" else contextlib.nullcontext():
            kernels.flash_attention_forward_kernel[grid](*args, **constants, **config)
    else:
        grid = lambda meta: (math.ceil(lq / meta["BLOCK_M"]), batch_heads)  # noqa: E731
        with torch.cuda.device(q.device):
            kernels.autotuned_kernel()[grid](*args, **constants)
    return out


def _as_rows(x: torch.Tensor, batch, length: int, dim: int) -> torch.Tensor:
    """``x`` broadcast to ``(*batch, length, dim)`` and viewed as ``(prod(batch), length, dim)``
    with a contiguous last dim (the kernel's pointer arithmetic assumes stride 1 there)."""
    rows = x.expand(*batch, length, dim).reshape(-1, length, dim)
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def _bucket(length: int) -> int:
    """The autotuning bucket of a sequence length: the next power of two, at least 16."""
    return max(16, 1 << (length - 1).bit_length())
