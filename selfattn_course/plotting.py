"""The few figure helpers the chapters share: a heat map, a log-log plot and a styled figure.

Every chapter draws its figures with these three functions, so all 30 chapters look alike::

    fig, ax = new_figure()                       # one styled figure with one Axes
    heatmap(weights, ax=ax, row_labels=tokens, col_labels=tokens, annotate=True)
    loglog(lengths, {"naive": t_naive, "chunked": t_chunked}, slopes=(1, 2))

Arrays may be NumPy arrays, torch tensors (detached and moved to the CPU here), or nested lists.
Only this module imports matplotlib; the rest of the package does not need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._arrays import shape_str

__all__ = ["heatmap", "loglog", "new_figure"]

# Guide lines drawn by ``loglog(..., slopes=...)``: dashed, grey, thin, under the data.
_GUIDE_STYLE = {"linestyle": "--", "color": "0.45", "linewidth": 1.0, "zorder": 1}


def new_figure(
    ncols: int = 1, nrows: int = 1, width: float = 6.0, height: float = 3.5
) -> tuple[Figure, Any]:
    """A figure in the course's style: ``width`` x ``height`` inches, constrained layout.

    Args:
        ncols, nrows: the grid of Axes.
        width, height: size of the whole figure in inches.

    Returns:
        ``(fig, axes)`` as :func:`matplotlib.pyplot.subplots` returns them: one ``Axes`` for a
        1 x 1 grid, otherwise a NumPy array of Axes (1-D for one row or one column).
    """
    if ncols < 1 or nrows < 1:
        raise ValueError(f"ncols and nrows must be >= 1, got ncols={ncols}, nrows={nrows}")
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", dpi=100)
    for ax in np.atleast_1d(axes).ravel():
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    return fig, axes


def heatmap(
    matrix,
    *,
    ax: Axes | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
    fmt: str = ".2f",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
) -> Axes:
    """Draw a 2-D ``matrix`` of shape ``(rows, cols)`` as a heat map; row ``i`` is drawn at the top.

    Made for attention weights: rows are queries, columns are keys, so ``matrix[i, j]`` is how
    much query ``i`` attends to key ``j``.

    Args:
        matrix: ``(rows, cols)`` NumPy array, torch tensor or nested list.
        ax: the Axes to draw on; a new figure is made when omitted.
        row_labels, col_labels: tick labels (e.g. tokens), one per row / column.
        title: the Axes title.
        cmap: a matplotlib colour map name.
        annotate: write each value in its cell, formatted with ``fmt``.
        vmin, vmax: the colour scale limits; default the matrix's min and max.
        colorbar: add a colour bar next to the Axes.

    Returns:
        The Axes drawn on.
    """
    values = _to_numpy("matrix", matrix)
    if values.ndim != 2:
        raise ValueError(f"matrix must be 2-D (rows, cols), got shape {shape_str(values.shape)}")
    rows, cols = values.shape
    _check_labels("row_labels", row_labels, rows, "rows", values.shape)
    _check_labels("col_labels", col_labels, cols, "columns", values.shape)
    if ax is None:
        _, ax = new_figure(width=max(3.0, 0.5 * cols + 2.0), height=max(2.5, 0.45 * rows + 1.2))

    image = ax.imshow(
        values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(np.arange(cols), labels=col_labels if col_labels is not None else None)
    ax.set_yticks(np.arange(rows), labels=row_labels if row_labels is not None else None)
    if col_labels is not None:
        ax.tick_params(axis="x", labelrotation=45)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    if annotate:
        _annotate_cells(ax, image, values, fmt)
    return ax


def loglog(
    x,
    series: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    slopes: Sequence[float] = (),
    marker: str = "o",
) -> Axes:
    """Plot each ``series`` against ``x`` on log-log axes, with optional dashed slope guides.

    On log-log axes ``y = c * x**s`` is a straight line of slope ``s``, so a guide line of slope 2
    next to a measured curve shows at a glance whether the cost grows like ``O(n^2)``.

    Args:
        x: ``(n,)`` positive x values (e.g. sequence lengths).
        series: label -> ``(n,)`` y values (e.g. seconds, bytes). NaN marks a missing point (e.g.
            a size that ran out of memory); every other value must be positive.
        ax: the Axes to draw on; a new figure is made when omitted.
        xlabel, ylabel, title: axis labels and title.
        slopes: for each ``s``, a dashed guide ``y = c * x**s`` labelled ``O(n)``, ``O(n^2)``, ...
            It passes through the first finite point of the first series.
        marker: the marker of the data points.

    Returns:
        The Axes drawn on.
    """
    xs = _to_numpy("x", x).astype(float)
    if xs.ndim != 1 or xs.size == 0:
        raise ValueError(f"x must be 1-D and non-empty, got shape {shape_str(xs.shape)}")
    if not np.all(xs > 0):
        raise ValueError(f"x must be positive on a log axis, got {xs.tolist()}")
    if not series:
        raise ValueError("series must hold at least one label -> values entry")
    curves = {}
    for label, y in series.items():
        ys = _to_numpy(f"series[{label!r}]", y).astype(float)
        if ys.shape != xs.shape:
            raise ValueError(
                f"series[{label!r}] must have the shape of x {shape_str(xs.shape)}, "
                f"got {shape_str(ys.shape)}"
            )
        finite = ys[~np.isnan(ys)]
        if not np.all(finite > 0):
            raise ValueError(f"series[{label!r}] must be positive on a log axis, got {ys.tolist()}")
        curves[label] = ys
    if ax is None:
        _, ax = new_figure()

    for label, ys in curves.items():
        ax.plot(xs, ys, marker=marker, label=label, zorder=2)
    if slopes:
        anchor_x, anchor_y = _first_finite_point(xs, next(iter(curves.values())))
        for slope in slopes:
            guide = anchor_y * (xs / anchor_x) ** slope
            ax.plot(xs, guide, label=_big_o_label(slope), **_GUIDE_STYLE)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False)
    return ax


def _to_numpy(name: str, values) -> np.ndarray:
    """A float64 NumPy copy of an array, a tensor (detached, on the CPU) or a nested list."""
    if isinstance(values, torch.Tensor):
        # float64 also covers bfloat16, which NumPy cannot hold.
        return values.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a numpy.ndarray, a torch.Tensor or a list of numbers, "
            f"got {type(values).__name__}"
        ) from error


def _check_labels(name: str, labels, expected: int, what: str, shape) -> None:
    if labels is not None and len(labels) != expected:
        raise ValueError(
            f"{name} has {len(labels)} entries but the matrix of shape {shape_str(shape)} "
            f"has {expected} {what}"
        )


def _annotate_cells(ax: Axes, image, values: np.ndarray, fmt: str) -> None:
    """Write each value in its cell, dark on light cells and light on dark ones."""
    low, high = image.get_clim()
    middle = (low + high) / 2
    for (i, j), value in np.ndenumerate(values):
        colour = "white" if value < middle else "black"
        ax.text(j, i, format(value, fmt), ha="center", va="center", color=colour, fontsize=8)


def _first_finite_point(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    finite = np.flatnonzero(~np.isnan(ys))
    if finite.size == 0:
        raise ValueError("the first series has no finite value to anchor the slope guides on")
    return float(xs[finite[0]]), float(ys[finite[0]])


def _big_o_label(slope: float) -> str:
    """``O(n)`` for 1, ``O(n^2)`` for 2, ``O(n^1.5)`` for 1.5, in matplotlib mathtext."""
    if slope == 1:
        return r"$O(n)$"
    power = f"{slope:g}"
    return rf"$O(n^{{{power}}})$"
