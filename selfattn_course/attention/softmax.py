"""A numerically stable softmax that understands boolean masks.

.. math::

    \\operatorname{softmax}(x)_j = \\frac{e^{x_j - m}}{\\sum_{j'\\ \\text{allowed}} e^{x_{j'} - m}},
    \\qquad m = \\max_{j\\ \\text{allowed}} x_j

Subtracting the row maximum ``m`` changes nothing mathematically (it cancels between numerator
and denominator) but keeps ``exp`` from overflowing: ``exp(1000.0)`` is ``inf`` in float32, while
``exp(1000.0 - 1000.0)`` is 1.

Mask convention: ``mask`` is boolean, **True where an entry may take part**. Blocked entries get
weight exactly 0; a row with every entry blocked gets all zeros (never NaN, unlike a plain
softmax over ``-inf`` scores, which computes ``0 / 0``).
"""

from __future__ import annotations

from .. import _arrays as A
from .._arrays import Array


def softmax(x: Array, dim: int = -1, mask: Array | None = None) -> Array:
    """Softmax of ``x`` along ``dim``, with optional boolean ``mask`` (True = keep).

    Args:
        x: floating array of at least one dimension (NumPy or torch).
        dim: the axis to normalise over (for attention scores ``(..., Lq, Lk)``: ``-1``, the keys).
        mask: optional boolean array broadcastable to ``x.shape``; False entries get weight 0.

    Returns:
        Array of ``x``'s shape, kind, dtype and device. Each slice along ``dim`` sums to 1, except
        a slice whose entries are all masked (or all ``-inf``), which is all 0.
    """
    A.check_array("x", x, min_ndim=1, floating=True)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim={dim} is out of range for x of shape {A.shape_str(x.shape)}")
    if mask is not None:
        A.check_same_kind(x=x, mask=mask)
        A.check_bool_mask("mask", mask, "x", x.shape)
        x = A.where(mask, x, float("-inf"))
    if x.shape[dim] == 0:
        return x * 0  # no entry to normalise over (e.g. zero keys): an empty result, not an error
    row_max = A.amax(x, dim)
    # A row that is all -inf has max -inf; use 0 there so that exp(-inf - 0) = 0, not NaN.
    row_max = A.where(A.isfinite(row_max), row_max, 0.0)
    unnormalised = A.exp(x - row_max)
    total = A.sum_keep(unnormalised, dim)
    return unnormalised / A.where(total > 0, total, 1.0)
