"""Approximate attention in linear time: Linformer's low-rank projection and Performer's FAVOR+.

Both replace the ``(Lq, Lk)`` softmax weights by something cheaper and are therefore *not* equal
to exact attention (chapter 28 measures by how much):

- **Linformer** (Wang et al., 2020) projects the ``Lk`` keys and values down to ``r`` rows with
  fixed matrices ``E, F`` of shape ``(r, Lk)``:
  ``softmax(q (E k)ᵀ · scale) (F v)``, work ``O(Lq · r · d)``. With ``E = F = I`` it is exact
  attention.
- **Performer FAVOR+** (Choromanski et al., 2021) writes ``exp(q·k) = E_ω[φ(q)·φ(k)]`` with the
  positive random features ``φ(x) = exp(ω x − |x|²/2) / √m`` for ``m`` rows ``ω ~ N(0, I_d)``,
  and computes ``φ(Q) (φ(K)ᵀ V)`` normalised by ``φ(Q) (φ(K)ᵀ 1)``: work ``O((Lq + Lk) · m · d)``,
  never an ``(Lq, Lk)`` array. The estimate is unbiased for every pair and its error shrinks
  like ``1/√m``.

Shapes follow the package: ``q (..., Lq, d)``, ``k (..., Lk, d)``, ``v (..., Lk, dv)``. The
random matrices are drawn from a seeded ``torch.Generator`` so that every call is reproducible.
"""

from __future__ import annotations

import math
import numbers

import torch

from selfattn_course.attention import scaled_dot_product_attention

__all__ = [
    "gaussian_features",
    "linformer_attention",
    "linformer_projection",
    "performer_attention",
    "performer_kernel",
    "positive_random_features",
]


def linformer_projection(
    rank: int, length: int, *, seed: int, dtype=torch.float32, device="cpu"
) -> torch.Tensor:
    """A seeded ``(rank, length)`` Gaussian projection with entries ``N(0, 1/rank)``.

    (Wang et al. use learned projections; a random one is the Johnson–Lindenstrauss starting
    point of their argument.)
    """
    rank = _check_positive("rank", rank)
    length = _check_positive("length", length)
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn((rank, length), generator=generator, dtype=torch.float64)
    return (matrix / math.sqrt(rank)).to(dtype=dtype, device=device)


def linformer_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    proj_k: torch.Tensor,
    proj_v: torch.Tensor | None = None,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """``softmax(q (E k)ᵀ · scale) (F v)`` with ``E = proj_k``, ``F = proj_v`` (default ``E``).

    Args:
        q: ``(..., Lq, d)``; k: ``(..., Lk, d)``; v: ``(..., Lk, dv)``.
        proj_k, proj_v: ``(r, Lk)`` projections of the key and value sequences.
        scale: multiplier of the scores; default ``1 / sqrt(d)``.

    Returns:
        ``(..., Lq, dv)``. With ``proj_k = proj_v = I`` it equals exact attention.
    """
    proj_v = proj_k if proj_v is None else proj_v
    for name, proj in (("proj_k", proj_k), ("proj_v", proj_v)):
        if proj.dim() != 2 or proj.shape[1] != k.shape[-2]:
            raise ValueError(
                f"{name} must have shape (r, Lk) with Lk = {k.shape[-2]}, got {tuple(proj.shape)}"
            )
    if proj_k.shape[0] != proj_v.shape[0]:
        raise ValueError(
            f"proj_k and proj_v must have as many rows, got {proj_k.shape[0]} and {proj_v.shape[0]}"
        )
    keys = proj_k.to(k.dtype) @ k  # (..., r, d)
    values = proj_v.to(v.dtype) @ v  # (..., r, dv)
    return scaled_dot_product_attention(q, keys, values, scale=scale)  # exact attention over r


def gaussian_features(
    num_features: int, dim: int, *, seed: int, orthogonal: bool = False, dtype=torch.float32
) -> torch.Tensor:
    """``(m, d)`` seeded rows ``ω ~ N(0, I_d)``.

    With ``orthogonal=True``, each block of ``d`` rows is made orthogonal (QR of a Gaussian
    matrix) and rescaled to the norms of Gaussian vectors: FAVOR+'s variance reduction.
    """
    num_features = _check_positive("num_features", num_features)
    dim = _check_positive("dim", dim)
    generator = torch.Generator().manual_seed(seed)
    if not orthogonal:
        return torch.randn((num_features, dim), generator=generator, dtype=torch.float64).to(dtype)
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        gaussian = torch.randn((dim, dim), generator=generator, dtype=torch.float64)
        orthonormal, triangular = torch.linalg.qr(gaussian)
        # Fix QR's sign ambiguity so that the directions are uniform (Haar) on the sphere.
        orthonormal = orthonormal * torch.sign(torch.diagonal(triangular))
        blocks.append(orthonormal.T)
    directions = torch.cat(blocks)[:num_features]
    norms = torch.randn((num_features, dim), generator=generator, dtype=torch.float64).norm(dim=1)
    return (directions * norms[:, None]).to(dtype)


def positive_random_features(x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """FAVOR+'s ``φ(x) = exp(x ωᵀ − |x|²/2) / √m``: ``(..., L, d)``, ``(m, d)`` → ``(..., L, m)``.

    Every feature is positive, and ``E[φ(q)·φ(k)] = exp(q·k)`` for ``ω ~ N(0, I)``.
    """
    if omega.dim() != 2 or omega.shape[1] != x.shape[-1]:
        raise ValueError(f"omega must have shape (m, {x.shape[-1]}), got {tuple(omega.shape)}")
    num_features = omega.shape[0]
    projected = x @ omega.to(x.dtype).T
    squared_norm = (x * x).sum(dim=-1, keepdim=True) / 2
    return torch.exp(projected - squared_norm) / math.sqrt(num_features)


def performer_kernel(q: torch.Tensor, k: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """The FAVOR+ estimate ``φ(q) φ(k)ᵀ`` of ``exp(q kᵀ)``: ``(..., Lq, Lk)`` (for checking)."""
    return positive_random_features(q, omega) @ positive_random_features(k, omega).transpose(-2, -1)


def performer_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    omega: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """Linear-time approximate attention ``φ(q') (φ(k')ᵀ v) / φ(q') (φ(k')ᵀ 1)``.

    ``q' = q · √scale`` and ``k' = k · √scale`` so that ``q'·k' = scale · q·k``; ``scale``
    defaults to ``1 / sqrt(d)``. No ``(Lq, Lk)`` array is formed: the work is
    ``O((Lq + Lk) · m · (d + dv))`` for ``m = omega.shape[0]`` features.

    Args:
        q: ``(..., Lq, d)``; k: ``(..., Lk, d)``; v: ``(..., Lk, dv)``.
        omega: ``(m, d)`` feature directions (:func:`gaussian_features`).

    Returns:
        ``(..., Lq, dv)``, an unbiased-per-pair, consistent estimate of exact attention.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    root = math.sqrt(scale)
    query_features = positive_random_features(q * root, omega)  # (..., Lq, m)
    key_features = positive_random_features(k * root, omega)  # (..., Lk, m)
    key_value = key_features.transpose(-2, -1) @ v  # (..., m, dv)
    normaliser = query_features @ key_features.sum(dim=-2).unsqueeze(-1)  # (..., Lq, 1)
    return (query_features @ key_value) / normaliser


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
