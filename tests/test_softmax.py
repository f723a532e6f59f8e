"""Specification of selfattn_course.attention.softmax(x, dim=-1, mask=None).

The references are arithmetic done by hand and ``torch.softmax``; the mask is boolean, True where
an entry takes part, and a slice with every entry masked is all zeros, never NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from selfattn_course.attention import softmax

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}


@st.composite
def arrays_with_masks(draw, max_ndim: int = 4):
    """An (x, mask, dim) triple: x of 1-4 dims, a boolean mask that broadcasts to x (or None).

    The mask may drop leading dims or hold size-1 dims, and may switch a whole slice along
    ``dim`` off, so all-masked slices come up in every run.
    """
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=max_ndim)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    if not draw(st.booleans()):
        return x, None, dim
    dropped = draw(st.integers(0, len(shape) - 1))
    mask_shape = tuple(s if draw(st.booleans()) else 1 for s in shape[dropped:])
    mask = rng.random(mask_shape) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    if draw(st.booleans()):  # switch off one whole slice along dim
        axis = dim % len(shape) - dropped
        index = [0] * mask.ndim
        if axis >= 0:
            index[axis] = slice(None)
        mask[tuple(index)] = False  # without that dim, one entry is already a whole slice
    return x, mask, dim


def expected_from_torch(x: np.ndarray, mask: np.ndarray | None, dim: int) -> torch.Tensor:
    """``torch.softmax`` of x with blocked entries set to -inf (an all -inf slice gives NaN)."""
    scores = torch.from_numpy(x)
    if mask is not None:
        scores = scores.masked_fill(~torch.from_numpy(mask), float("-inf"))
    return torch.softmax(scores, dim=dim)


def full_mask(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return np.broadcast_to(np.ones((), dtype=bool) if mask is None else mask, x.shape)


# --- by hand --------------------------------------------------------------------------------------


def test_three_values_by_hand():
    # x = [0, ln 2, ln 3]  ->  e^x = [1, 2, 3], their sum is 6  ->  softmax = [1/6, 2/6, 3/6].
    x = np.array([0.0, math.log(2.0), math.log(3.0)])
    np.testing.assert_allclose(softmax(x), [1 / 6, 2 / 6, 3 / 6], rtol=1e-15)


def test_masked_value_by_hand():
    # Mask out the middle entry: e^x over the kept ones = [1, 3], sum 4  ->  [1/4, 0, 3/4].
    x = np.array([0.0, math.log(2.0), math.log(3.0)])
    mask = np.array([True, False, True])
    np.testing.assert_allclose(softmax(x, mask=mask), [1 / 4, 0.0, 3 / 4], rtol=1e-15)


def test_equal_values_give_uniform_weights():
    # e^c / (4 e^c) = 1/4 for every entry, whatever c is.
    np.testing.assert_allclose(softmax(np.full(4, 7.5)), [0.25] * 4, rtol=1e-15)


# --- properties -----------------------------------------------------------------------------------


@given(arrays_with_masks())
def test_slices_sum_to_one_or_to_zero_when_all_masked(case):
    x, mask, dim = case
    out = softmax(x, dim=dim, mask=mask)
    any_allowed = full_mask(x, mask).any(axis=dim)
    np.testing.assert_allclose(
        out.sum(axis=dim), np.where(any_allowed, 1.0, 0.0), atol=TOLERANCE[x.dtype.type]
    )


@given(arrays_with_masks())
def test_masked_entries_are_exactly_zero(case):
    x, mask, dim = case
    out = softmax(x, dim=dim, mask=mask)
    assert np.all(out[~full_mask(x, mask)] == 0.0)


def test_all_masked_row_gives_zero_not_nan():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, True, False], [False, False, False]])
    out = softmax(x, mask=mask)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[1], [0.0, 0.0, 0.0])


def test_all_minus_infinity_row_gives_zero_not_nan():
    # torch.softmax computes 0/0 = NaN here; the course's softmax gives zeros.
    x = torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]])
    assert torch.isnan(torch.softmax(x, dim=-1)[1]).all()
    torch.testing.assert_close(softmax(x)[1], torch.zeros(2), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_inputs_do_not_overflow_where_naive_exp_does(dtype):
    x = np.array([1e4, 1e4 + 1, 1e4 + 2], dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum()  # exp(1e4) = inf, and inf / inf = NaN
    assert np.isnan(naive).all()
    # Subtracting the maximum leaves [-2, -1, 0]; softmax does not change under a shift.
    shifted = np.exp([-2.0, -1.0, 0.0]) / np.exp([-2.0, -1.0, 0.0]).sum()
    np.testing.assert_allclose(softmax(x), shifted, rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_negative_inputs_do_not_underflow_to_nan(dtype):
    x = np.full(3, -1e4, dtype=dtype)
    with np.errstate(invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum()  # exp(-1e4) = 0, and 0 / 0 = NaN
    assert np.isnan(naive).all()
    np.testing.assert_allclose(softmax(x), [1 / 3] * 3, rtol=TOLERANCE[dtype])


@given(arrays_with_masks(), st.floats(-50, 50))
def test_adding_a_constant_changes_nothing(case, constant):
    x, mask, dim = case
    shifted = x + x.dtype.type(constant)
    atol = 100 * TOLERANCE[x.dtype.type]  # the shift itself rounds x by up to |constant| ulp
    np.testing.assert_allclose(
        softmax(shifted, dim=dim, mask=mask), softmax(x, dim=dim, mask=mask), atol=atol
    )


@given(arrays_with_masks(), st.sampled_from(["numpy", "torch"]))
def test_dim_normalises_that_axis_only(case, library):
    x, mask, dim = case
    moved = np.moveaxis(x, dim, -1)
    moved_mask = None if mask is None else np.moveaxis(full_mask(x, mask), dim, -1)
    expected = np.moveaxis(softmax(moved, dim=-1, mask=moved_mask), -1, dim)
    if library == "torch":
        mask = None if mask is None else torch.from_numpy(mask)
        out = softmax(torch.from_numpy(x), dim=dim, mask=mask).numpy()
    else:
        out = softmax(x, dim=dim, mask=mask)
    np.testing.assert_allclose(out, expected, atol=TOLERANCE[x.dtype.type])


@given(arrays_with_masks())
def test_matches_torch_softmax_wherever_torch_gives_no_nan(case):
    x, mask, dim = case
    expected = expected_from_torch(x, mask, dim)
    out = softmax(
        torch.from_numpy(x), dim=dim, mask=None if mask is None else torch.from_numpy(mask)
    )
    defined = ~torch.isnan(expected)
    tol = TOLERANCE[x.dtype.type]
    torch.testing.assert_close(out[defined], expected[defined], atol=tol, rtol=tol)
    assert (out[~defined] == 0).all()


@given(arrays_with_masks())
def test_numpy_and_torch_paths_agree(case):
    x, mask, dim = case
    from_numpy = softmax(x, dim=dim, mask=mask)
    from_torch = softmax(
        torch.from_numpy(x), dim=dim, mask=None if mask is None else torch.from_numpy(mask)
    )
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), atol=TOLERANCE[x.dtype.type])


def test_mask_broadcasts_over_leading_dims():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    key_mask = np.array([True, False, True, True])
    np.testing.assert_array_equal(
        softmax(x, mask=key_mask), softmax(x, mask=np.broadcast_to(key_mask, x.shape))
    )


# --- kinds, dtypes, devices -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out_same_dtype_and_device(device, dtype):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    x = torch.randn(2, 3, dtype=dtype, device=device)
    mask = torch.tensor([True, False, True], device=device)
    out = softmax(x, mask=mask)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype
    assert out.device == x.device
    torch.testing.assert_close(
        out.cpu(), expected_from_torch(x.cpu().numpy(), mask.cpu().numpy(), -1)
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_in_numpy_out_same_dtype(dtype):
    out = softmax(np.zeros((2, 3), dtype=dtype), mask=np.array([True, False, True]))
    assert isinstance(out, np.ndarray)
    assert out.dtype == dtype


# --- gradients ------------------------------------------------------------------------------------


def test_gradcheck_with_a_mask_and_an_all_masked_row():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor(
        [[True, True, True, True], [True, False, True, False], [False, False, False, False]]
    )
    assert torch.autograd.gradcheck(lambda x: softmax(x, mask=mask), (x,))


def test_gradient_is_finite_and_zero_on_masked_entries():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor(
        [[True, True, True, True], [True, False, True, False], [False, False, False, False]]
    )
    (softmax(x, mask=mask) * torch.randn(3, 4, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[~mask] == 0).all()


def test_gradcheck_along_a_leading_dim():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: softmax(x, dim=0), (x,))


# --- bad input ------------------------------------------------------------------------------------


def test_list_input_raises_naming_x():
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray or a torch.Tensor, got list"):
        softmax([1.0, 2.0])


@pytest.mark.parametrize("x", [np.arange(3), torch.arange(3)], ids=["numpy", "torch"])
def test_integer_input_raises_naming_x_and_dtype(x):
    with pytest.raises(TypeError, match=r"x must hold floating-point numbers, got dtype .*int64"):
        softmax(x)


@pytest.mark.parametrize("x", [np.array(1.0), torch.tensor(1.0)], ids=["numpy", "torch"])
def test_zero_dim_input_raises_naming_x_and_shape(x):
    with pytest.raises(ValueError, match=r"x must have at least 1 dimensions, got shape \(\)"):
        softmax(x)


@pytest.mark.parametrize("dim", [2, -3])
def test_dim_out_of_range_raises_naming_dim_and_shape(dim):
    with pytest.raises(ValueError, match=rf"dim={dim} is out of range for x of shape \(2, 3\)"):
        softmax(np.zeros((2, 3)), dim=dim)


@pytest.mark.parametrize(
    "mask", [np.ones(3, dtype=np.float64), np.ones(3, dtype=np.int64)], ids=["float", "int"]
)
def test_non_bool_mask_raises_naming_mask_and_dtype(mask):
    with pytest.raises(TypeError, match=rf"mask must be boolean .*got dtype {mask.dtype}"):
        softmax(np.zeros((2, 3)), mask=mask)


def test_mask_that_does_not_broadcast_raises_naming_both_shapes():
    with pytest.raises(
        ValueError, match=r"mask of shape \(2,\) does not broadcast to x of shape \(2, 3\)"
    ):
        softmax(np.zeros((2, 3)), mask=np.ones(2, dtype=bool))


def test_mask_with_more_dims_than_x_raises_naming_both_shapes():
    with pytest.raises(
        ValueError, match=r"mask of shape \(4, 2, 3\) does not broadcast to x of shape \(2, 3\)"
    ):
        softmax(np.zeros((2, 3)), mask=np.ones((4, 2, 3), dtype=bool))


def test_numpy_mask_with_torch_x_raises_naming_both():
    with pytest.raises(TypeError, match=r"x is a torch.Tensor, mask is a numpy.ndarray"):
        softmax(torch.zeros(2, 3), mask=np.ones(3, dtype=bool))


def test_list_mask_raises_naming_mask():
    with pytest.raises(
        TypeError, match=r"mask must be a numpy.ndarray or a torch.Tensor, got list"
    ):
        softmax(torch.zeros(3), mask=[True, False, True])
