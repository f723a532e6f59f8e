"""Images as tokens: patches (ViT) and windows (Swin), shared by chapters 13, 20 and 23.

Two ways to make attention over an image affordable, both plain reshapes:

- :func:`patchify` cuts an image ``(B, C, H, W)`` into non-overlapping ``p x p`` patches and
  flattens each, giving ``N = (H/p)·(W/p)`` tokens of width ``C·p·p`` (Dosovitskiy et al. 2021).
  A linear map of these tokens is exactly a ``Conv2d`` with ``kernel_size = stride = p``: the
  flattening order ``(C, p, p)`` is the layout of a ``Conv2d`` weight ``(D, C, p, p)``, so
  ``patchify(x, p) @ weight.reshape(D, -1).T`` equals
  ``conv2d(x, weight, stride=p).flatten(2).transpose(1, 2)``. :func:`unpatchify` inverts it.
- :func:`window_partition` groups a channels-last feature map ``(B, H, W, C)`` into
  non-overlapping ``w x w`` windows, ``(B, nW, w·w, C)`` with ``nW = (H/w)·(W/w)``; attention
  runs inside each window (Swin, Liu et al. 2021), ``O(H·W·w²·d)`` instead of ``O((H·W)²·d)``.
  :func:`window_reverse` inverts it. :func:`shifted_window_mask` is the boolean mask that the
  shifted windows need.

Orders: patches and windows are numbered row by row over their grid (row-major), and so are the
pixels inside a window. Masks follow the course's convention: **True = may attend**
(``mask[..., i, j]`` True when query ``i`` may attend to key ``j``); PyTorch's
``nn.MultiheadAttention`` uses the opposite convention for ``attn_mask`` booleans.
"""

from __future__ import annotations

import torch


def _check_divides(size: int, part: int, what: str, name: str) -> None:
    if isinstance(part, bool) or not isinstance(part, int) or part < 1:
        raise ValueError(f"{name} must be an int >= 1, got {part!r}")
    if size % part:
        raise ValueError(f"{what} {size} is not a multiple of {name} {part}")


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches and flatten each patch.

    Args:
        images: ``(..., C, H, W)``, channels first (``(B, C, H, W)`` as ``Conv2d`` takes them).
        patch: the side ``p`` of a patch; it must divide ``H`` and ``W``.

    Returns:
        ``(..., N, C·p·p)`` with ``N = (H/p)·(W/p)``: token ``r·(W/p) + c`` is the patch in
        row ``r`` and column ``c`` of the grid, flattened in the order ``(C, p, p)`` (the
        layout of a ``Conv2d`` weight), so ``out[b, n, ch·p·p + i·p + j] =
        images[b, ch, r·p + i, c·p + j]``.
    """
    *leading, channels, height, width = images.shape
    _check_divides(height, patch, "image height", "patch")
    _check_divides(width, patch, "image width", "patch")
    rows, cols = height // patch, width // patch
    grid = images.reshape(-1, channels, rows, patch, cols, patch)
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p)
    return grid.reshape(*leading, rows * cols, channels * patch * patch)


def unpatchify(patches: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(..., N, C·p·p) -> (..., C, H, W)``.

    ``N`` must be ``(H/p)·(W/p)``; ``C`` is the last size divided by ``p·p``.
    """
    *leading, tokens, features = patches.shape
    _check_divides(height, patch, "image height", "patch")
    _check_divides(width, patch, "image width", "patch")
    rows, cols = height // patch, width // patch
    if tokens != rows * cols or features % (patch * patch):
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not fit a {height} x {width} image "
            f"cut into {patch} x {patch} patches ({rows * cols} tokens of width C·{patch * patch})"
        )
    channels = features // (patch * patch)
    grid = patches.reshape(-1, rows, cols, channels, patch, patch)
    grid = grid.permute(0, 3, 1, 4, 2, 5)  # (B, C, rows, p, cols, p)
    return grid.reshape(*leading, channels, height, width)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Group a channels-last map into non-overlapping ``window x window`` windows.

    Args:
        x: ``(B, H, W, C)``, channels last (tokens on a grid, as Swin keeps them).
        window: the side ``w`` of a window; it must divide ``H`` and ``W``.

    Returns:
        ``(B, nW, w·w, C)`` with ``nW = (H/w)·(W/w)``: window ``r·(W/w) + c`` covers rows
        ``r·w .. r·w + w - 1`` and columns ``c·w .. c·w + w - 1``, its pixels in row-major
        order, so ``out[b, r·(W/w) + c, i·w + j] = x[b, r·w + i, c·w + j]``. Attention over
        the last two dimensions is window attention.
    """
    batch, height, width, channels = x.shape
    _check_divides(height, window, "map height", "window")
    _check_divides(width, window, "map width", "window")
    rows, cols = height // window, width // window
    grid = x.reshape(batch, rows, window, cols, window, channels)
    grid = grid.permute(0, 1, 3, 2, 4, 5)  # (B, rows, cols, w, w, C)
    return grid.reshape(batch, rows * cols, window * window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`: ``(B, nW, w·w, C) -> (B, H, W, C)``."""
    batch, count, size, channels = windows.shape
    _check_divides(height, window, "map height", "window")
    _check_divides(width, window, "map width", "window")
    rows, cols = height // window, width // window
    if count != rows * cols or size != window * window:
        raise ValueError(
            f"windows of shape {tuple(windows.shape)} do not fit a {height} x {width} map "
            f"cut into {window} x {window} windows ({rows * cols} windows of {window * window})"
        )
    grid = windows.reshape(batch, rows, cols, window, window, channels)
    grid = grid.permute(0, 1, 3, 2, 4, 5)  # (B, rows, w, cols, w, C)
    return grid.reshape(batch, height, width, channels)


def shifted_window_mask(
    height: int, width: int, window: int, shift: int, *, device=None
) -> torch.Tensor:
    """The mask of Swin's shifted-window attention: ``(nW, w·w, w·w)`` bool, True = may attend.

    Swin shifts the map cyclically by ``-shift`` in both directions
    (``torch.roll(x, (-shift, -shift), dims=(1, 2))``), then partitions it into windows
    (:func:`window_partition`). The windows along the bottom and right edges then hold pixels
    that were not neighbours in the image (the last rows and the first rows, wrapped round).
    ``mask[n, i, j]`` is True where pixels ``i`` and ``j`` of window ``n`` came from the same
    region of the image, so attention stays between pixels that are contiguous there. Regions,
    along each axis: ``[0, H - w)``, ``[H - w, H - shift)``, ``[H - shift, H)`` (Liu et al.
    2021). With ``shift = 0`` every entry is True.

    Every row has at least one True (the diagonal), so no query is left with nothing to attend.
    """
    _check_divides(height, window, "map height", "window")
    _check_divides(width, window, "map width", "window")
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < window:
        raise ValueError(f"shift must be an int in [0, window = {window}), got {shift!r}")
    regions = torch.zeros(1, height, width, 1, dtype=torch.long, device=device)
    if shift > 0:
        bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        label = 0
        for rows in bounds:
            for cols in bounds:
                regions[:, rows, cols, :] = label
                label += 1
    labels = window_partition(regions, window)[0, :, :, 0]  # (nW, w·w)
    return labels[:, :, None] == labels[:, None, :]
