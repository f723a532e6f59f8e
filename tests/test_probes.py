"""Specification of selfattn_course.probes: input sensitivity and gradient by distance.

References: layers whose Jacobian is known by hand (a position-wise ``nn.Linear``, a cumulative
sum), brute force (an output changes when an input it depends on is changed), the receptive field
``1 + L(k - 1)`` of a real ``nn.Conv1d`` stack, and causality of the package's ``SelfAttention``
and of ``nn.RNN``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from selfattn_course.attention import SelfAttention
from selfattn_course.probes import gradient_by_distance, input_sensitivity


def seeded_input(n: int, d: int, *, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, n, d, generator=generator, dtype=dtype)


def causal_attention(d: int):
    torch.manual_seed(0)
    attention = SelfAttention(d).double()
    return lambda x: attention(x, causal=True)[0]


def conv_stack(num_layers: int, k: int, d: int = 3):
    """A batch-first wrapper around ``num_layers`` width-``k`` nn.Conv1d layers, 'same' length."""
    torch.manual_seed(0)
    layers = [nn.Conv1d(d, d, k, padding=(k - 1) // 2) for _ in range(num_layers)]
    stack = nn.Sequential(*layers).double()
    return lambda x: stack(x.transpose(1, 2)).transpose(1, 2)


# --- by hand --------------------------------------------------------------------------------------


def test_input_sensitivity_of_a_position_wise_linear_layer_is_its_weight_norm_at_the_position():
    # y_p = W x_p + b: ∂y_p/∂x_p = W, ∂y_p/∂x_j = 0 for j != p.
    torch.manual_seed(0)
    linear = nn.Linear(4, 5).double()
    sensitivity = input_sensitivity(linear, seeded_input(6, 4), 2)
    expected = torch.zeros(6, dtype=torch.float64)
    expected[2] = torch.linalg.matrix_norm(linear.weight.detach())
    torch.testing.assert_close(sensitivity, expected, rtol=1e-12, atol=0)


def test_input_sensitivity_of_a_cumulative_sum_is_sqrt_d_up_to_the_position():
    # y_p = x_0 + ... + x_p: each block ∂y_p/∂x_j (j <= p) is the (d, d) identity, ‖I‖_F = √d.
    d = 4
    sensitivity = input_sensitivity(lambda x: x.cumsum(dim=1), seeded_input(5, d), 2)
    expected = torch.tensor([2.0, 2.0, 2.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(sensitivity, expected, rtol=1e-12, atol=0)


def test_input_sensitivity_takes_the_first_item_of_a_tuple_output():
    # As nn.RNN's (out, h_n) and SelfAttention's (out, weights).
    sensitivity = input_sensitivity(lambda x: (x.cumsum(dim=1), "state"), seeded_input(3, 1), 1)
    torch.testing.assert_close(sensitivity, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))


def test_input_sensitivity_counts_a_negative_position_from_the_end():
    layer, x = causal_attention(4), seeded_input(7, 4)
    torch.testing.assert_close(input_sensitivity(layer, x, -1), input_sensitivity(layer, x, 6))


# --- attention, convolutions, recurrences ---------------------------------------------------------


@settings(max_examples=10)
@given(st.integers(2, 8), st.data())
def test_input_sensitivity_of_causal_attention_is_zero_after_the_position(n, data):
    position = data.draw(st.integers(0, n - 1))
    sensitivity = input_sensitivity(causal_attention(4), seeded_input(n, 4), position)
    assert (sensitivity[position + 1 :] == 0).all()
    assert (sensitivity[: position + 1] > 0).all()


def test_input_sensitivity_of_attention_without_a_mask_is_nonzero_everywhere():
    torch.manual_seed(0)
    attention = SelfAttention(4).double()
    assert (input_sensitivity(attention, seeded_input(9, 4), 0) > 0).all()


@pytest.mark.parametrize("num_layers, k", [(1, 3), (2, 3), (3, 3), (2, 5), (4, 5)])
def test_input_sensitivity_of_a_conv_stack_is_nonzero_on_exactly_1_plus_l_k_minus_1_positions(
    num_layers, k
):
    n = 2 * num_layers * (k - 1) + 5
    position = n // 2  # far enough from both ends for the zero padding not to matter
    sensitivity = input_sensitivity(conv_stack(num_layers, k), seeded_input(n, 3), position)
    reach = num_layers * (k - 1) // 2
    nonzero = torch.nonzero(sensitivity).flatten().tolist()
    assert nonzero == list(range(position - reach, position + reach + 1))
    assert len(nonzero) == 1 + num_layers * (k - 1)


def positions_that_change_the_output(layer, x: torch.Tensor, position: int) -> list[int]:
    """Brute force: the inputs j such that changing x_j changes y_position."""
    with torch.no_grad():
        reference = layer(x)[0, position]
        changed = []
        for j in range(x.shape[1]):
            nudged = x.clone()
            nudged[0, j] += 1.0
            if not torch.equal(layer(nudged)[0, position], reference):
                changed.append(j)
    return changed


@pytest.mark.parametrize(
    "name, layer",
    [("conv stack", conv_stack(3, 3)), ("causal attention", causal_attention(3))],
)
def test_input_sensitivity_is_nonzero_exactly_where_changing_the_input_changes_the_output(
    name, layer
):
    x, position = seeded_input(12, 3), 7
    sensitivity = input_sensitivity(layer, x, position)
    assert torch.nonzero(sensitivity).flatten().tolist() == positions_that_change_the_output(
        layer, x, position
    )


def test_input_sensitivity_of_an_rnn_is_zero_after_the_position():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 5, batch_first=True).double()
    sensitivity = input_sensitivity(rnn, seeded_input(8, 3), 4)
    assert sensitivity.shape == (8,)
    assert (sensitivity[5:] == 0).all() and (sensitivity[:5] > 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_sensitivity_has_the_dtype_of_x(dtype):
    torch.manual_seed(0)
    linear = nn.Linear(3, 3).to(dtype)
    assert input_sensitivity(linear, seeded_input(4, 3, dtype=dtype), 0).dtype == dtype


# --- gradient by distance -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_gradient_by_distance_is_input_sensitivity_at_the_last_position_flipped(seed):
    layer = causal_attention(5)
    n = 10
    by_distance = gradient_by_distance(layer, n, 5, seed=seed)
    at_last = input_sensitivity(layer, seeded_input(n, 5, seed=seed), n - 1)
    torch.testing.assert_close(by_distance, at_last.flip(0), rtol=0, atol=0)


def test_gradient_by_distance_of_a_cumulative_sum_is_flat():
    by_distance = gradient_by_distance(lambda x: x.cumsum(dim=1), 6, 9)
    torch.testing.assert_close(by_distance, torch.full((6,), 3.0, dtype=torch.float64))


def test_gradient_by_distance_of_an_rnn_vanishes_with_distance():
    # Default init draws U(±1/√d): the recurrence contracts, so the gradient falls exponentially.
    torch.manual_seed(0)
    rnn = nn.RNN(32, 32, batch_first=True).double()
    by_distance = gradient_by_distance(rnn, 64, 32)
    assert by_distance[40] < 1e-6 * by_distance[0]
    assert by_distance[63] > 0  # float64: far but not underflowed


def test_gradient_by_distance_of_causal_attention_does_not_vanish():
    by_distance = gradient_by_distance(causal_attention(8), 32, 8)
    assert by_distance.min() > 1e-3 * by_distance.max()


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, position, error, words",
    [
        (torch.zeros(4, 3, dtype=torch.float64), 0, ValueError, "x must be a (1, n, d) tensor"),
        (torch.zeros(2, 4, 3, dtype=torch.float64), 0, ValueError, "got (2, 4, 3)"),
        ([[[0.0]]], 0, ValueError, "got list"),
        (torch.zeros(1, 4, 3, dtype=torch.long), 0, TypeError, "x must be floating point"),
        (torch.zeros(1, 4, 3, dtype=torch.float64), 4, ValueError, "position must be an int in"),
        (torch.zeros(1, 4, 3, dtype=torch.float64), -5, ValueError, "got -5 for n = 4"),
        (torch.zeros(1, 4, 3, dtype=torch.float64), 1.0, TypeError, "got float 1.0"),
        (torch.zeros(1, 4, 3, dtype=torch.float64), True, TypeError, "got bool True"),
    ],
)
def test_input_sensitivity_rejects_bad_input(x, position, error, words):
    with pytest.raises(error) as info:
        input_sensitivity(lambda inputs: inputs, x, position)
    assert words in str(info.value)


def test_input_sensitivity_rejects_a_layer_that_changes_the_length():
    with pytest.raises(ValueError, match=r"layer must return \(1, 4, d'\), got \(1, 3, 2\)"):
        input_sensitivity(lambda x: x[:, :3], seeded_input(4, 2), 0)
