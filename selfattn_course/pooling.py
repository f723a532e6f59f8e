"""Pooling: one vector per sequence from a padded batch of hidden states.

Self-attention maps a sequence to a sequence, ``(B, L, d) -> (B, L, d)``; a classifier needs
one vector per sequence, ``(B, d)``, before its head. Two standard ways:

- :func:`masked_mean`: the mean over the real positions only,
  ``pooled[b] = Σ_j valid[b, j] · h[b, j] / Σ_j valid[b, j]``;
- :func:`cls_pool`: the hidden state of a [CLS] token put at the start of every sequence
  (Devlin et al. 2019); with attention it can gather what it needs from every position.

:func:`last_pool` (the last real position) is the pooling of causal decoders, where only the
last position has seen the whole sequence.

Mask convention (as in :mod:`selfattn_course.masks`): ``valid`` ``(B, L)`` bool, **True = real
token**, False = padding. A row with no real token pools to the zero vector, never NaN.
"""

from __future__ import annotations

import torch

__all__ = ["masked_mean", "cls_pool", "last_pool"]


def _check(hidden: torch.Tensor, valid: torch.Tensor | None) -> None:
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        shape = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else type(hidden).__name__
        raise ValueError(f"hidden must be a (B, L, d) tensor, got {shape}")
    if valid is None:
        return
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise TypeError("valid must be a torch.bool tensor (True = real token)")
    if tuple(valid.shape) != tuple(hidden.shape[:2]):
        raise ValueError(
            f"valid of shape {tuple(valid.shape)} does not match hidden of shape "
            f"{tuple(hidden.shape)}: expected {tuple(hidden.shape[:2])}"
        )


def masked_mean(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The mean of ``hidden`` ``(B, L, d)`` over the positions where ``valid`` ``(B, L)`` is True.

    .. math::

        \\text{pooled}_b = \\frac{\\sum_j \\text{valid}_{bj} \\, h_{bj}}
        {\\max(1, \\sum_j \\text{valid}_{bj})}

    Returns ``(B, d)`` in ``hidden``'s dtype. Padding positions contribute nothing, whatever they
    hold (even inf or NaN); a row with no real token gives 0 (the ``max(1, ·)``).
    """
    _check(hidden, valid)
    kept = torch.where(
        valid[..., None], hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)
    )
    counts = valid.sum(dim=1, keepdim=True).clamp(min=1).to(hidden.dtype)
    return kept.sum(dim=1) / counts


def _pick(hidden: torch.Tensor, index: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    picked = hidden[rows, index]
    return torch.where(
        found[:, None], picked, torch.zeros((), dtype=hidden.dtype, device=hidden.device)
    )


def cls_pool(hidden: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The hidden state of each sequence's first real token, the [CLS] position: ``(B, d)``.

    Without ``valid`` that is ``hidden[:, 0]`` (right padding puts [CLS] at position 0). With
    ``valid`` ``(B, L)`` it is the first position where ``valid`` is True, so left-padded
    batches work too; a row with no real token gives 0.
    """
    _check(hidden, valid)
    if valid is None:
        return hidden[:, 0]
    if hidden.shape[1] == 0:
        return hidden.new_zeros(hidden.shape[0], hidden.shape[2])
    first = valid.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximum
    return _pick(hidden, first, valid.any(dim=1))


def last_pool(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The hidden state of each sequence's last real token: ``(B, d)``; 0 for a row with none.

    The pooling of a causal decoder, where only the last position has attended to every token.
    """
    _check(hidden, valid)
    if hidden.shape[1] == 0:
        return hidden.new_zeros(hidden.shape[0], hidden.shape[2])
    length = hidden.shape[1]
    last = length - 1 - valid.flip(dims=[1]).to(torch.uint8).argmax(dim=1)
    return _pick(hidden, last, valid.any(dim=1))
