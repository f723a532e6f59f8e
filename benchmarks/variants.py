"""The attention implementations `make bench` compares, and what each one computes.

Every variant is a function ``(q, k, v, causal) -> out`` on ``(B, H, N, d)`` tensors. Besides the
function, a variant knows which (query, key) pairs it lets through, so that the benchmark can
count its useful FLOPs and build the float64 reference it is checked against.
"""

from __future__ import annotations

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


def _flash_attention(q, k, v, causal):
    from selfattn_course.kernels import flash_attention  # imported here: needs Triton and CUDA

    return flash_attention(q, k, v, causal=causal)


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant(
            "sdpa",
            lambda q, k, v, causal: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
            "torch.nn.functional.scaled_dot_product_attention (fused C++/CUDA kernels)",
        ),
        Variant(
            "chunked",
            lambda q, k, v, causal: chunked_attention(q, k, v, causal=causal),
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
    )
}
