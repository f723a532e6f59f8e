"""Runners (selfattn_course/grading/spec/calls.py): functions that return a number, nn.Module
classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from selfattn_course.grading.spec.calls import LayerSpec, ModuleRunner, returns_number
from selfattn_course.grading.spec.cases import Case

SIZES = Case("n = 2, d = 3", {"n": 2, "d": 3})


@pytest.mark.parametrize(
    "function",
    [
        lambda n, d: 4 * n * d**2,
        lambda n, d: float(4 * n * d**2),
        lambda n, d: np.int64(4 * n * d**2),
        lambda n, d: torch.tensor(4.0 * n * d**2),
        lambda n, d: np.array([4 * n * d**2]),
    ],
    ids=["int", "float", "numpy scalar", "0-d tensor", "one-element array"],
)
def test_any_kind_of_number_becomes_a_0d_float64_tensor(function):
    result = returns_number(function, SIZES)
    assert result.dtype == torch.float64 and result.shape == ()
    assert float(result) == 72.0  # 4 · 2 · 3²


def test_a_function_that_returns_nothing_is_told_a_return_is_missing():
    def rnn_flops(n, d):
        4 * n * d**2

    with pytest.raises(
        TypeError, match=r"rnn_flops returned None, expected a number \(is a `return` missing\?\)"
    ):
        returns_number(rnn_flops, SIZES)


@pytest.mark.parametrize(
    "value",
    [(1, 2), "72", True, torch.ones(2)],
    ids=["tuple", "string", "bool", "two-element tensor"],
)
def test_something_other_than_one_number_is_refused(value):
    with pytest.raises(TypeError, match="expected a number"):
        returns_number(lambda n, d: value, SIZES)


class Scale(nn.Module):
    """``x -> x · w + helper(x)``: one weight, and a module-level helper a task may provide."""

    def __init__(self, width):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        return x * self.w + helper(x)


def helper(x):
    return torch.zeros_like(x)


def provided_helper(x):
    return torch.ones_like(x)


def ones(layer: LayerSpec) -> dict[str, torch.Tensor]:
    return {"w": torch.full(layer.init_args, float(layer.weights_seed), dtype=torch.float64)}


def module_case(dtype=torch.float32) -> Case:
    return Case("x", {"layer": LayerSpec("Scale", (3,), 2), "x": torch.arange(3.0, dtype=dtype)})


def test_a_module_is_built_given_the_weights_and_called_in_the_inputs_dtype():
    result = ModuleRunner(ones)(Scale, module_case(torch.float64))
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64))  # x · 2
    assert not result.requires_grad


def test_building_the_module_leaves_torchs_generator_as_it_was():
    class Drawn(Scale):
        def __init__(self, width):
            super().__init__(width)
            torch.rand(5)

    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    ModuleRunner(ones)(Drawn, module_case())
    assert torch.equal(torch.rand(1), expected)


def test_parameter_names_other_than_the_statements_are_refused():
    class Renamed(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(width))

    with pytest.raises(RuntimeError, match="Missing key"):
        ModuleRunner(ones)(Renamed, module_case())


def test_provided_helpers_stand_in_while_the_module_runs_and_are_restored():
    result = ModuleRunner(ones, provided={"helper": provided_helper})(Scale, module_case())
    torch.testing.assert_close(result, torch.tensor([1.0, 3.0, 5.0]))  # x · 2 + 1
    assert globals()["helper"] is helper


def test_a_case_shows_the_layer_it_builds():
    assert (
        repr(LayerSpec("MultiHeadSelfAttention", (16, 4), 5))
        == "MultiHeadSelfAttention(16, 4) with weights from seed 5"
    )


def test_a_function_instead_of_a_class_is_refused():
    with pytest.raises(TypeError, match="expected a class"):
        ModuleRunner(ones)(lambda width: Scale(width), module_case())
