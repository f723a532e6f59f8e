"""Tests for selfattn_course.plotting: what each helper draws, and the errors it raises."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from selfattn_course.plotting import heatmap, loglog, new_figure


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_new_figure_single_axes_and_size():
    fig, ax = new_figure(width=5.0, height=2.0)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert tuple(fig.get_size_inches()) == (5.0, 2.0)


def test_new_figure_grid_returns_array_of_axes():
    _, axes = new_figure(ncols=3, nrows=2)
    assert axes.shape == (2, 3)


def test_new_figure_rejects_empty_grid():
    with pytest.raises(ValueError, match="ncols and nrows must be >= 1"):
        new_figure(ncols=0)


def test_heatmap_draws_the_matrix_with_labels():
    weights = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    ax = heatmap(weights, row_labels=["a", "b"], col_labels=["x", "y", "z"], title="w")
    np.testing.assert_array_equal(ax.images[0].get_array(), weights)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert ax.get_title() == "w"


def test_heatmap_accepts_a_tensor_that_requires_grad():
    weights = torch.softmax(torch.arange(6.0, requires_grad=True).reshape(2, 3), dim=-1)
    ax = heatmap(weights)
    np.testing.assert_allclose(ax.images[0].get_array(), weights.detach().numpy(), rtol=1e-6)


def test_heatmap_annotate_writes_one_formatted_value_per_cell():
    ax = heatmap([[0.25, 0.75], [1.0, 0.0]], annotate=True, fmt=".1f", colorbar=False)
    assert sorted(t.get_text() for t in ax.texts) == ["0.0", "0.2", "0.8", "1.0"]


def test_heatmap_colorbar_adds_an_axes_and_respects_limits():
    fig, ax = new_figure()
    heatmap(np.eye(3), ax=ax, vmin=0.0, vmax=2.0)
    assert len(fig.axes) == 2
    assert ax.images[0].get_clim() == (0.0, 2.0)


def test_heatmap_rejects_a_matrix_that_is_not_2d():
    expected = r"matrix must be 2-D \(rows, cols\), got shape \(2, 3, 4\)"
    with pytest.raises(ValueError, match=expected):
        heatmap(np.zeros((2, 3, 4)))


def test_heatmap_rejects_labels_of_the_wrong_length():
    expected = r"col_labels has 2 entries but the matrix of shape \(2, 3\) has 3 columns"
    with pytest.raises(ValueError, match=expected):
        heatmap(np.zeros((2, 3)), col_labels=["a", "b"])


def test_loglog_uses_log_axes_and_one_line_per_series():
    n = np.array([16, 32, 64])
    ax = loglog(n, {"naive": n**2, "chunked": n}, xlabel="n", ylabel="bytes")
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == ["naive", "chunked"]
    assert ax.get_xlabel() == "n" and ax.get_ylabel() == "bytes"


def test_loglog_slope_guides_have_the_given_slope_through_the_first_point():
    n = np.array([10.0, 100.0, 1000.0])
    ax = loglog(n, {"t": [3.0, 5.0, 7.0]}, slopes=(1, 2))
    guide_1, guide_2 = ax.lines[1], ax.lines[2]
    assert guide_1.get_label() == "$O(n)$" and guide_2.get_label() == "$O(n^{2})$"
    # Through (10, 3): slope 1 gives 3, 30, 300; slope 2 gives 3, 300, 30000.
    np.testing.assert_allclose(guide_1.get_ydata(), [3.0, 30.0, 300.0])
    np.testing.assert_allclose(guide_2.get_ydata(), [3.0, 300.0, 30000.0])
    assert guide_1.get_linestyle() == "--"


def test_loglog_skips_nan_points_and_anchors_on_the_first_finite_one():
    ax = loglog([1, 2, 4], {"t": [np.nan, 2.0, 4.0]}, slopes=(1,))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 2.0, 4.0])


def test_loglog_rejects_mismatched_lengths():
    expected = r"series\['t'\] must have the shape of x \(3,\), got \(2,\)"
    with pytest.raises(ValueError, match=expected):
        loglog([1, 2, 3], {"t": [1.0, 2.0]})


def test_loglog_rejects_non_positive_values():
    with pytest.raises(ValueError, match=r"series\['t'\] must be positive"):
        loglog([1, 2], {"t": [0.0, 1.0]})
    with pytest.raises(ValueError, match="x must be positive"):
        loglog([0, 2], {"t": [1.0, 1.0]})
