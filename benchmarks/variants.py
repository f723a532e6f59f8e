"""The attention implementations `make bench` compares, and what each one computes.

Every variant is a function ``(q, k, v, causal) -> out`` on ``(B, H, N, d)`` tensors. Besides the
function, a variant knows which (query, key) pairs it lets through, so that the benchmark can
count its useful FLOPs and build the float64 reference it is checked against.

The ``*_fwd_bwd`` variants are training steps: the forward pass and then the gradients of
``q``, ``k`` and ``v`` for a fixed random ``dO`` (what a training step asks of attention). They
return the forward's output, which is what the error is measured on, and are compared with
``sdpa_fwd_bwd``; ``run.py`` measures them with ``--backward``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selfattn_course.attention import (
    chunked_attention,
    scaled_dot_product_attention,
    sliding_window_attention,
)

SLIDING_WINDOW = 256
"""Keys each side of a query that the sliding-window variant sees (``w``; ``w + 1`` when causal)."""


@dataclass(frozen=True)
class Variant:
    name: str
    run: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]
    description: str
    window: int | None = None  # None: full attention (causal or not)
    cuda_only: bool = False
    baseline: str = "sdpa"  # the variant its time and memory ratios are taken against
    flops_per_forward: float = 1.0  # its FLOPs in units of the forward's (3.5 with the backward)

    @property
    def training(self) -> bool:
        return self.baseline != "sdpa"

    def allowed(self, rows: torch.Tensor, n: int, causal: bool) -> torch.Tensor:
        """``(len(rows), n)`` boolean: which keys each of the query positions ``rows`` sees."""
        offset = rows[:, None] - torch.arange(n, device=rows.device)[None, :]  # i - j
        allowed = offset >= 0 if causal else torch.ones_like(offset, dtype=torch.bool)
        if self.window is not None:
            allowed = allowed & (offset.abs() <= self.window)
        return allowed

    def pairs(self, n: int, causal: bool) -> int:
        """How many (query, key) pairs are allowed: ``N²`` for full attention, ``N(N+1)/2``
        causal, about ``N(2w+1)`` (``N(w+1)`` causal) in a window of ``w``."""
        i = torch.arange(n, dtype=torch.int64)
        reach = n if self.window is None else self.window  # how far a query sees to either side
        first = (i - reach).clamp(min=0)
        last = i if causal else (i + reach).clamp(max=n - 1)
        return int((last - first + 1).sum())


def _forward_backward(attention):
    """``attention`` followed by its backward pass: ``dq, dk, dv`` for a seeded random ``dO``.

    The backward is counted as 2.5 forwards (FlashAttention-2's convention: five matrix products
    of the size of the forward's two, the scores recomputed), so a step is 3.5 forwards of FLOPs.
    """

    def run(q, k, v, causal):
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))  # views: nothing is copied
        out = attention(q, k, v, causal)
        torch.autograd.grad(out, (q, k, v), _grad_out(out.shape, out.device))
        return out.detach()

    return run


@functools.cache
def _grad_out(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """The ``dO`` of every call of one shape: made (and its memory counted) once, not timed."""
    generator = torch.Generator(device=device).manual_seed(1)
    return torch.randn(shape, generator=generator, device=device)


def _sdpa(q, k, v, causal):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _chunked(q, k, v, causal):
    return chunked_attention(q, k, v, causal=causal)


def _flash_attention(q, k, v, causal):
    from selfattn_course.kernels import flash_attention  # imported here: needs Triton and CUDA

    return flash_attention(q, k, v, causal=causal)


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant(
            "sdpa",
            _sdpa,
            "torch.nn.functional.scaled_dot_product_attention (fused C++/CUDA kernels)",
        ),
        Variant(
            "chunked",
            _chunked,
            "selfattn_course chunked_attention: online softmax in pure PyTorch",
        ),
        Variant(
            "naive",
            lambda q, k, v, causal: scaled_dot_product_attention(q, k, v, causal=causal),
            "selfattn_course scaled_dot_product_attention: materialises the (N, N) weights",
        ),
        Variant(
            "sliding_window",
            lambda q, k, v, causal: sliding_window_attention(
                q, k, v, SLIDING_WINDOW, causal=causal
            ),
            f"selfattn_course sliding_window_attention, w = {SLIDING_WINDOW} (different work)",
            window=SLIDING_WINDOW,
        ),
        Variant(
            "triton",
            _flash_attention,
            "selfattn_course.kernels.flash_attention: fused Triton kernel",
            cuda_only=True,
        ),
        Variant(
            "sdpa_fwd_bwd",
            _forward_backward(_sdpa),
            "sdpa, forward and backward (torch's fused backward kernels)",
            baseline="sdpa_fwd_bwd",
            flops_per_forward=3.5,
        ),
        Variant(
            "chunked_fwd_bwd",
            _forward_backward(_chunked),
            "chunked, forward and backward (tiles recomputed in the backward, FlashAttention-2)",
            baseline="sdpa_fwd_bwd",
            flops_per_forward=3.5,
        ),
    )
}
