"""Small helpers shared by the NumPy and PyTorch code paths.

Every public function of the course accepts either a NumPy array (computed with NumPy, the CPU
reference) or a ``torch.Tensor`` (computed with torch on the tensor's own device) and returns the
same kind. The helpers here hide the few spelling differences between the two libraries
(``axis`` vs ``dim``, ``keepdims`` vs ``keepdim``) and produce the course's error messages, which
always name the argument, what was expected and what arrived::

    ValueError: mask of shape (2, 5) does not broadcast to scores of shape (2, 4, 7, 7)

Nothing here is specific to attention; learners can skip this file.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor; kept loose so both read naturally in signatures


def is_tensor(x: Array) -> bool:
    """True for a ``torch.Tensor``, False for anything else."""
    return isinstance(x, torch.Tensor)


def shape_str(shape: Sequence[int]) -> str:
    """Format a shape the way error messages show it: ``(2, 5)``, ``(3,)``, ``()``."""
    dims = tuple(int(s) for s in shape)
    return "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


def check_array(name: str, x: Array, *, min_ndim: int = 0, floating: bool = False) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is an array of at least ``min_ndim`` dims.

    With ``floating=True`` the array must also hold floating-point numbers.
    """
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {shape_str(x.shape)}"
        )
    if floating and not is_floating(x):
        raise TypeError(f"{name} must hold floating-point numbers, got dtype {x.dtype}")


def check_int(name: str, value, *, minimum: int) -> int:
    """``value`` as a Python int, or ``TypeError`` (not an integer) / ``ValueError`` (too small)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_integer_dtype(name: str, x: Array) -> None:
    """Raise ``TypeError`` unless ``x`` holds integers (booleans do not count)."""
    if is_tensor(x):
        integer = not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool
    else:
        integer = np.issubdtype(x.dtype, np.integer)
    if not integer:
        raise TypeError(f"{name} must hold integers, got dtype {x.dtype}")


def is_floating(x: Array) -> bool:
    """True when ``x`` holds floating-point numbers (float16/bfloat16/float32/float64)."""
    if is_tensor(x):
        return x.is_floating_point()
    return np.issubdtype(x.dtype, np.floating)


def check_same_kind(**arrays: Array) -> None:
    """Raise ``TypeError`` for a non-array or a NumPy/torch mix; ``ValueError`` across devices.

    ``None`` values are skipped, so optional arguments can be passed as they are.
    """
    given = {name: x for name, x in arrays.items() if x is not None}
    for name, x in given.items():
        check_array(name, x)
    kinds = {
        name: ("torch.Tensor" if is_tensor(x) else "numpy.ndarray") for name, x in given.items()
    }
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{name} is a {kind}" for name, kind in kinds.items())
        raise TypeError(f"all inputs must be of one kind (all NumPy or all torch): {listing}")
    tensors = {name: x for name, x in given.items() if is_tensor(x)}
    devices = {name: x.device for name, x in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"all tensors must be on one device: {listing}")


def check_same_float_dtype(**arrays: Array) -> None:
    """Raise ``TypeError`` unless every given array is floating point with the same dtype."""
    given = {name: x for name, x in arrays.items() if x is not None}
    for name, x in given.items():
        check_array(name, x, floating=True)
    dtypes = {name: x.dtype for name, x in given.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{name} is {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"inputs must share one floating dtype: {listing}")


def broadcast_shape(
    name: str, shape: Sequence[int], target_name: str, target: Sequence[int]
) -> None:
    """Raise ``ValueError`` unless ``shape`` broadcasts to ``target`` (NumPy rules, one way)."""
    shape, target = tuple(int(s) for s in shape), tuple(int(s) for s in target)
    ok = len(shape) <= len(target) and all(
        s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False)
    )
    if not ok:
        raise ValueError(
            f"{name} of shape {shape_str(shape)} does not broadcast to "
            f"{target_name} of shape {shape_str(target)}"
        )


def check_bool_mask(
    name: str,
    mask: Array,
    target_name: str,
    target: Sequence[int],
    *,
    float_hint: str = "for an additive float mask use bias=",
) -> None:
    """Raise unless ``mask`` is a boolean array that broadcasts to ``target``.

    The course's convention: True where attention is allowed (as in torch's
    ``scaled_dot_product_attention``), False where it is blocked. ``float_hint`` ends the
    ``TypeError`` for a float mask: where the caller's additive path is.
    """
    check_array(name, mask)
    is_bool = mask.dtype == torch.bool if is_tensor(mask) else mask.dtype == np.bool_
    if not is_bool:
        raise TypeError(
            f"{name} must be boolean (True = may attend), got dtype {mask.dtype}; {float_hint}"
        )
    broadcast_shape(name, mask.shape, target_name, target)


def leading_shape(name_a: str, a: Sequence[int], name_b: str, b: Sequence[int]) -> tuple[int, ...]:
    """The broadcast of two leading (batch) shapes, or a ``ValueError`` naming both arguments."""
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ValueError(
            f"leading dims of {name_a} {shape_str(a)} and {name_b} {shape_str(b)} do not broadcast"
        ) from None


# --- operations spelled once for both libraries -------------------------------------------


def where(condition: Array, x: Array, y: Any) -> Array:
    """Elementwise ``condition ? x : y``; ``y`` may be a Python scalar."""
    if is_tensor(x):
        return torch.where(condition, x, torch.as_tensor(y, dtype=x.dtype, device=x.device))
    return np.where(condition, x, y)


def amax(x: Array, dim: int) -> Array:
    """Maximum along ``dim``, keeping the dimension."""
    return x.amax(dim=dim, keepdim=True) if is_tensor(x) else x.max(axis=dim, keepdims=True)


def sum_keep(x: Array, dim: int) -> Array:
    """Sum along ``dim``, keeping the dimension."""
    return x.sum(dim=dim, keepdim=True) if is_tensor(x) else x.sum(axis=dim, keepdims=True)


def exp(x: Array) -> Array:
    return torch.exp(x) if is_tensor(x) else np.exp(x)


def isfinite(x: Array) -> Array:
    return torch.isfinite(x) if is_tensor(x) else np.isfinite(x)


def swap_last_two(x: Array) -> Array:
    """``x`` with its last two dimensions swapped: ``(..., L, d) -> (..., d, L)``."""
    return x.transpose(-2, -1) if is_tensor(x) else np.swapaxes(x, -1, -2)


def logical_and(a: Array, b: Array) -> Array:
    return torch.logical_and(a, b) if is_tensor(a) else np.logical_and(a, b)
