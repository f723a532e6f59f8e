"""The training loop of the chapters' tiny models: Adam, a fixed number of steps, a loss function.

Every chapter that trains something trains a tiny model for a few dozen to a few hundred steps
on synthetic data; the loop is always the same five lines, written here once::

    losses = fit(model, lambda: F.cross_entropy(model(x), y), steps=100, lr=3e-2)

``loss_fn`` takes no argument and returns the scalar loss of one step: it closes over the model
and draws its own batch (from a ``torch.Generator`` it holds, so runs are reproducible), or uses
the same full batch each time. Seed the model's initial weights before building it
(``torch.manual_seed``); nothing here draws random numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def fit(
    model: nn.Module,
    loss_fn: Callable[[], torch.Tensor],
    steps: int,
    *,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
) -> list[float]:
    """Train ``model`` with Adam (``torch.optim.AdamW`` when ``weight_decay > 0``) for ``steps``
    steps of ``loss_fn()``; return the loss of every step, as floats.

    The model is put in training mode for the loop and back in evaluation mode after it.
    ``ValueError`` for ``steps < 0`` or a loss that is not a scalar.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if weight_decay > 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor, got {shape}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
