"""Specification of selfattn_course._arrays: the helpers shared by the NumPy and torch paths.

Two families: checks that raise the course's error messages (which name the argument and the
shape or dtype that arrived), and operations spelled once for both libraries, which must give
the same numbers with NumPy and torch and return the kind they were given.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfattn_course import _arrays as A

# --- shape_str ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, text",
    [((2, 5), "(2, 5)"), ((3,), "(3,)"), ((), "()"), (torch.Size([2, 4, 7, 7]), "(2, 4, 7, 7)")],
)
def test_shape_str_writes_shapes_like_python_tuples(shape, text):
    assert A.shape_str(shape) == text


# --- is_tensor / is_floating ----------------------------------------------------------------------


def test_is_tensor_is_true_only_for_torch_tensors():
    assert A.is_tensor(torch.zeros(2))
    assert not A.is_tensor(np.zeros(2))
    assert not A.is_tensor([0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_is_floating_accepts_numpy_float_dtypes(dtype):
    assert A.is_floating(np.zeros(2, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_is_floating_accepts_torch_float_dtypes(dtype):
    assert A.is_floating(torch.zeros(2, dtype=dtype))


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(2, dtype=np.int64),
        np.zeros(2, dtype=bool),
        torch.zeros(2, dtype=torch.int32),
        torch.zeros(2, dtype=torch.bool),
    ],
    ids=["numpy-int64", "numpy-bool", "torch-int32", "torch-bool"],
)
def test_is_floating_rejects_integer_and_bool_arrays(x):
    assert not A.is_floating(x)


# --- check_array ----------------------------------------------------------------------------------


def test_check_array_accepts_numpy_and_torch_arrays():
    A.check_array("x", np.zeros((2, 3)), min_ndim=2, floating=True)
    A.check_array("x", torch.zeros(2, 3), min_ndim=2, floating=True)


def test_check_array_rejects_a_list_naming_the_argument_and_type():
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray or a torch.Tensor, got list"):
        A.check_array("x", [1.0, 2.0])


def test_check_array_rejects_too_few_dims_naming_the_argument_and_shape():
    with pytest.raises(ValueError, match=r"q must have at least 2 dimensions, got shape \(4,\)"):
        A.check_array("q", np.zeros(4), min_ndim=2)


def test_check_array_rejects_integers_when_floating_is_required():
    with pytest.raises(TypeError, match=r"q must hold floating-point numbers, got dtype int64"):
        A.check_array("q", np.zeros((2, 2), dtype=np.int64), floating=True)


# --- check_int / check_integer_dtype --------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [3, np.int64(3), torch.tensor(3)], ids=["int", "numpy-int64", "torch-0d"]
)
def test_check_int_returns_a_python_int(value):
    result = A.check_int("num_heads", value, minimum=1)
    assert result == 3
    assert type(result) is int


@pytest.mark.parametrize("value, shown", [(True, "True"), (2.0, "float 2.0"), ("4", "str '4'")])
def test_check_int_rejects_non_integers_naming_the_argument(value, shown):
    with pytest.raises(TypeError, match=rf"num_heads must be an integer, got {shown}"):
        A.check_int("num_heads", value, minimum=1)


def test_check_int_rejects_a_value_below_the_minimum():
    with pytest.raises(ValueError, match=r"num_heads must be >= 1, got 0"):
        A.check_int("num_heads", 0, minimum=1)


@pytest.mark.parametrize(
    "x",
    [np.arange(3), torch.arange(3), torch.arange(3, dtype=torch.uint8)],
    ids=["numpy", "torch", "uint8"],
)
def test_check_integer_dtype_accepts_integer_arrays(x):
    A.check_integer_dtype("lengths", x)


@pytest.mark.parametrize(
    "x",
    [np.zeros(3), np.zeros(3, dtype=bool), torch.zeros(3), torch.zeros(3, dtype=torch.bool)],
    ids=["numpy-float", "numpy-bool", "torch-float", "torch-bool"],
)
def test_check_integer_dtype_rejects_floats_and_booleans_naming_the_dtype(x):
    with pytest.raises(TypeError, match=rf"lengths must hold integers, got dtype {x.dtype}"):
        A.check_integer_dtype("lengths", x)


# --- check_same_kind ------------------------------------------------------------------------------


def test_check_same_kind_rejects_mixed_numpy_and_torch_naming_each_argument():
    with pytest.raises(TypeError, match=r"q is a numpy.ndarray, k is a torch.Tensor"):
        A.check_same_kind(q=np.zeros(2), k=torch.zeros(2))


def test_check_same_kind_skips_none():
    A.check_same_kind(q=torch.zeros(2), mask=None, bias=torch.zeros(2))


def test_check_same_kind_names_a_non_array_by_its_own_type():
    with pytest.raises(
        TypeError, match=r"mask must be a numpy.ndarray or a torch.Tensor, got list"
    ):
        A.check_same_kind(x=torch.zeros(3), mask=[True, False, True])


# --- check_same_float_dtype -----------------------------------------------------------------------


def test_check_same_float_dtype_rejects_two_float_dtypes_naming_both():
    with pytest.raises(TypeError, match=r"q is torch.float32, k is torch.float64"):
        A.check_same_float_dtype(q=torch.zeros(2), k=torch.zeros(2, dtype=torch.float64))


def test_check_same_float_dtype_rejects_integers_naming_the_argument():
    with pytest.raises(TypeError, match=r"v must hold floating-point numbers, got dtype int64"):
        A.check_same_float_dtype(q=np.zeros(2), v=np.zeros(2, dtype=np.int64))


# --- broadcast_shape / leading_shape --------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 4, 7, 7), (7, 7), (2, 1, 1, 7), (1, 7), (7,), (), (4, 1, 7)])
def test_broadcast_shape_accepts_shapes_that_broadcast_to_the_target(shape):
    A.broadcast_shape("mask", shape, "scores", (2, 4, 7, 7))


def test_broadcast_shape_rejects_a_mismatched_dim_naming_both_shapes():
    message = r"mask of shape \(2, 5\) does not broadcast to scores of shape \(2, 4, 7, 7\)"
    with pytest.raises(ValueError, match=message):
        A.broadcast_shape("mask", (2, 5), "scores", (2, 4, 7, 7))


def test_broadcast_shape_is_one_way_and_never_grows_the_target():
    # (3, 1) and (1, 4) broadcast together to (3, 4), but (3, 4) does not fit inside (1, 4).
    with pytest.raises(
        ValueError, match=r"mask of shape \(3, 4\) does not broadcast to x of shape \(1, 4\)"
    ):
        A.broadcast_shape("mask", (3, 4), "x", (1, 4))


def test_broadcast_shape_rejects_more_dims_than_the_target():
    with pytest.raises(
        ValueError,
        match=r"bias of shape \(1, 2, 3\) does not broadcast to scores of shape \(2, 3\)",
    ):
        A.broadcast_shape("bias", (1, 2, 3), "scores", (2, 3))


def test_leading_shape_is_the_numpy_broadcast_of_two_batch_shapes():
    assert A.leading_shape("q", (2, 1, 4), "k", (3, 1)) == (2, 3, 4)
    assert A.leading_shape("q", (), "k", (5,)) == (5,)


def test_leading_shape_rejects_incompatible_batches_naming_both():
    with pytest.raises(ValueError, match=r"leading dims of q \(2,\) and k \(3,\) do not broadcast"):
        A.leading_shape("q", (2,), "k", (3,))


# --- check_bool_mask ------------------------------------------------------------------------------


def test_check_bool_mask_accepts_a_broadcasting_boolean_mask():
    A.check_bool_mask("mask", torch.ones(1, 7, dtype=torch.bool), "scores", (2, 7, 7))
    A.check_bool_mask("mask", np.ones((7, 7), dtype=bool), "scores", (2, 7, 7))


@pytest.mark.parametrize(
    "mask",
    [np.ones((7, 7), dtype=np.float32), torch.ones(7, 7, dtype=torch.int64)],
    ids=["numpy", "torch"],
)
def test_check_bool_mask_rejects_non_boolean_masks_and_points_to_bias(mask):
    with pytest.raises(
        TypeError,
        match=r"mask must be boolean .* got dtype .*; for an additive float mask use bias=",
    ):
        A.check_bool_mask("mask", mask, "scores", (7, 7))


def test_check_bool_mask_rejects_a_mask_that_does_not_broadcast():
    message = r"mask of shape \(2, 5\) does not broadcast to scores of shape \(2, 4, 7, 7\)"
    with pytest.raises(ValueError, match=message):
        A.check_bool_mask("mask", np.ones((2, 5), dtype=bool), "scores", (2, 4, 7, 7))


# --- operations spelled once for both libraries ---------------------------------------------------

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4))


def both(x: np.ndarray):
    """The same numbers as a NumPy array and as a torch tensor."""
    return x, torch.from_numpy(x)


def assert_same_numbers(from_numpy, from_torch):
    assert isinstance(from_numpy, np.ndarray)
    assert isinstance(from_torch, torch.Tensor)
    np.testing.assert_array_equal(from_numpy, from_torch.numpy())


def test_where_agrees_between_numpy_and_torch_with_a_scalar_fill():
    condition = X > 0
    x_np, x_t = both(X)
    assert_same_numbers(
        A.where(condition, x_np, -1.5), A.where(torch.from_numpy(condition), x_t, -1.5)
    )


def test_where_keeps_the_dtype_of_x_for_a_torch_scalar_fill():
    x = torch.zeros(3, dtype=torch.float32)
    assert A.where(x > 1, x, float("-inf")).dtype == torch.float32


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_amax_keeps_the_reduced_dim_and_agrees_between_libraries(dim):
    x_np, x_t = both(X)
    result = A.amax(x_np, dim)
    assert result.shape == tuple(1 if i == dim % 3 else s for i, s in enumerate(X.shape))
    assert_same_numbers(result, A.amax(x_t, dim))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sum_keep_keeps_the_reduced_dim_and_agrees_between_libraries(dim):
    x_np, x_t = both(X)
    result = A.sum_keep(x_np, dim)
    assert result.shape == tuple(1 if i == dim % 3 else s for i, s in enumerate(X.shape))
    np.testing.assert_allclose(result, A.sum_keep(x_t, dim).numpy(), rtol=1e-15)


def test_exp_and_isfinite_agree_between_libraries():
    values = np.array([0.0, 1.0, -np.inf, np.inf, np.nan])
    x_np, x_t = both(values)
    np.testing.assert_allclose(A.exp(x_np), A.exp(x_t).numpy(), rtol=1e-15)
    assert_same_numbers(A.isfinite(x_np), A.isfinite(x_t))


def test_swap_last_two_swaps_only_the_last_two_dims():
    x_np, x_t = both(X)
    assert A.swap_last_two(x_np).shape == (2, 4, 3)
    assert_same_numbers(A.swap_last_two(x_np), A.swap_last_two(x_t))
    np.testing.assert_array_equal(A.swap_last_two(x_np)[1, 3, 2], X[1, 2, 3])


def test_logical_and_agrees_between_libraries():
    a, b = X > 0, X < 1
    assert_same_numbers(
        A.logical_and(a, b), A.logical_and(torch.from_numpy(a), torch.from_numpy(b))
    )
