"""How strongly a layer's output at one position depends on each input position.

For a layer ``f`` mapping a sequence ``x`` of shape ``(1, n, d)`` to ``y`` of shape ``(1, n, d')``,
the sensitivity of output position ``p`` to input position ``j`` is the Frobenius norm of the
Jacobian block

    s_j = ‖∂y_p / ∂x_j‖_F,      an (d', d) matrix for each j.

It is 0 exactly where ``y_p`` does not depend on ``x_j``, so it draws a layer's receptive field
(chapter 6: a convolution stack sees ``1 + L(k-1)`` positions, one attention layer all ``n``),
and its decay with distance shows vanishing gradients (chapters 3 and 9: an RNN's falls
exponentially with ``|p - j|``, attention's does not).

The layers are any callables on batch-first ``(1, n, d)`` tensors that return such a tensor or a
tuple whose first item is one (``nn.RNN``, ``nn.LSTM`` with ``batch_first=True``, the package's
``SelfAttention`` and ``MultiHeadAttention``). Wrap a ``Conv1d`` (channels first) in a function
that transposes. Computed in float64 by default, so that the tiny values far from ``p`` in an
RNN do not underflow to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def input_sensitivity(layer: Callable, x: torch.Tensor, position: int) -> torch.Tensor:
    """``(n,)``: ``‖∂y[0, position] / ∂x[0, j]‖_F`` for every input position ``j``.

    Args:
        layer: maps ``(1, n, d)`` to ``(1, n, d')`` (or a tuple starting with it); its
            parameters must have ``x``'s dtype.
        x: ``(1, n, d)`` floating tensor, the input at which the Jacobian is taken.
        position: the output position ``p``, ``-n <= p < n`` (negative counts from the end).

    Returns:
        A tensor of shape ``(n,)`` and ``x``'s dtype; entry ``j`` is 0 where ``y_p`` does not
        depend on ``x_j``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[0] != 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a (1, n, d) tensor, got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point, got {x.dtype}")
    n = x.shape[1]
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
        raise TypeError(f"position must be an int, got {type(position).__name__} {position!r}")
    position = int(position)
    if not -n <= position < n:
        raise ValueError(f"position must be an int in [-{n}, {n}), got {position!r} for n = {n}")

    def output_at_position(inputs: torch.Tensor) -> torch.Tensor:
        out = layer(inputs)
        if isinstance(out, tuple):  # (out, state) from nn.RNN / nn.LSTM, (out, weights) from ours
            out = out[0]
        if out.dim() != 3 or out.shape[:2] != (1, n):
            raise ValueError(f"layer must return (1, {n}, d'), got {tuple(out.shape)}")
        return out[0, position]  # (d',)

    jacobian = torch.autograd.functional.jacobian(output_at_position, x)  # (d', 1, n, d)
    return jacobian[:, 0].pow(2).sum(dim=(0, 2)).sqrt()


def gradient_by_distance(
    layer: Callable,
    n: int = 64,
    d: int = 32,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``(n,)``: ``‖∂y_{n-1} / ∂x_{n-1-t}‖_F`` for distances ``t = 0, ..., n-1``.

    How much the output at the last position depends on the input ``t`` positions earlier, at a
    standard-normal input drawn from ``seed`` (``(1, n, d)``, ``dtype``): chapter 3's
    experiment. ``layer`` must already have ``dtype`` (``layer.double()``).
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n, d, generator=generator, dtype=dtype)
    return input_sensitivity(layer, x, n - 1).flip(0)  # index t = distance from the last position
