"""Specification of selfattn_course.costs: FLOPs, sequential steps and path lengths of Table 1.

References: torch's ``FlopCounterMode`` run on real layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``,
``nn.Conv1d``, the package's ``SelfAttention`` and ``MultiHeadAttention``), which counts a
multiply-add as 2 FLOPs like the module; arithmetic done by hand; the receptive field of a real
``nn.Conv1d`` stack found by perturbing one input at a time; brute-force searches for the fewest
layers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from selfattn_course.attention import MultiHeadAttention, SelfAttention
from selfattn_course.costs import (
    LAYERS,
    attention_layer_flops,
    attention_mixing_flops,
    conv1d_flops,
    conv_layers_to_connect,
    conv_receptive_field,
    gru_flops,
    lstm_flops,
    max_path_length,
    message_passing_flops,
    rnn_flops,
    sequential_steps,
    table1,
)

SIZES = [(1, 4), (7, 8), (16, 5)]  # (n, d)


def counted_flops(fn, *args) -> int:
    """FLOPs torch's FlopCounterMode sees while ``fn(*args)`` runs."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops()


# --- by hand --------------------------------------------------------------------------------------


def test_attention_mixing_flops_by_hand():
    # n = 2, d = 3: Q Kᵀ is (2, 3) @ (3, 2): 2·2·3·2 = 24; A V is (2, 2) @ (2, 3): 24. Total 48.
    assert attention_mixing_flops(2, 3) == 48


def test_attention_layer_flops_by_hand():
    # n = 2, d = 3: four (d, d) projections of 2 tokens, 4 · 2·2·3·3 = 144, plus mixing 48.
    assert attention_layer_flops(2, 3) == 192
    # Three projections (no W_O): 3 · 36 + 48 = 156.
    assert attention_layer_flops(2, 3, output_projection=False) == 156


def test_message_passing_flops_by_hand():
    # 4 nodes, 6 edges, d = 2: messages 2·6·2 = 24, per-node transforms 2·4·2² = 32.
    assert message_passing_flops(4, 6, 2) == 56


def test_table1_by_hand():
    # n = 4, d = 2, k = 3.
    # attention: 8·4·4 + 4·16·2 = 128 + 128 = 256; RNN: 4·4·4 = 64; conv: 2·3·4·4 = 96.
    # path: attention 1, RNN n - 1 = 3, conv ⌈3/2⌉ = 2, dilated ⌈log_3 4⌉ = 2.
    expected = [
        {"layer": "self-attention", "flops": 256, "sequential_steps": 1, "max_path_length": 1},
        {"layer": "recurrent", "flops": 64, "sequential_steps": 4, "max_path_length": 3},
        {"layer": "convolution", "flops": 96, "sequential_steps": 1, "max_path_length": 2},
        {"layer": "dilated convolution", "flops": 96, "sequential_steps": 1, "max_path_length": 2},
    ]
    assert table1(4, 2, 3) == expected


def test_table1_lists_the_layers_in_order_with_plain_ints():
    rows = table1(64, 16)
    assert [row["layer"] for row in rows] == list(LAYERS)
    assert all(type(value) is int for row in rows for key, value in row.items() if key != "layer")


# --- against torch's FlopCounterMode --------------------------------------------------------------


@pytest.mark.parametrize("n, d", SIZES)
def test_attention_layer_flops_without_output_projection_match_flop_counter_on_self_attention(n, d):
    layer = SelfAttention(d)
    x = torch.randn(1, n, d)
    assert counted_flops(layer, x) == attention_layer_flops(n, d, output_projection=False)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_attention_layer_flops_match_flop_counter_on_multi_head_attention_for_any_heads(heads):
    n, d = 9, 8
    layer = MultiHeadAttention(d, heads)
    x = torch.randn(1, n, d)
    assert counted_flops(layer, x, x, x) == attention_layer_flops(n, d)


@pytest.mark.parametrize("n, d", SIZES)
def test_rnn_flops_match_flop_counter_on_nn_rnn(n, d):
    layer = nn.RNN(d, d, batch_first=True, bias=False)
    assert counted_flops(layer, torch.randn(1, n, d)) == rnn_flops(n, d)


@pytest.mark.parametrize("n, d", SIZES)
def test_lstm_flops_match_flop_counter_on_nn_lstm(n, d):
    layer = nn.LSTM(d, d, batch_first=True)
    # oneDNN's fused LSTM hides its matrix products from FlopCounterMode; the plain path shows them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            assert counted_flops(layer, torch.randn(1, n, d)) == lstm_flops(n, d)


@pytest.mark.parametrize("n, d", SIZES)
def test_gru_flops_match_flop_counter_on_nn_gru(n, d):
    layer = nn.GRU(d, d, batch_first=True)
    assert counted_flops(layer, torch.randn(1, n, d)) == gru_flops(n, d)


@pytest.mark.parametrize("n, d, k", [(1, 4, 1), (10, 8, 3), (6, 3, 5)])
def test_conv1d_flops_match_flop_counter_on_nn_conv1d_with_output_length_n(n, d, k):
    layer = nn.Conv1d(d, d, k)
    x = torch.randn(1, d, n + k - 1)  # no padding: output length n
    assert layer(x).shape[-1] == n
    assert counted_flops(layer, x) == conv1d_flops(n, d, k)


# --- NumPy arrays and ints ------------------------------------------------------------------------

FLOP_FUNCTIONS = [
    ("attention_mixing_flops", attention_mixing_flops),
    ("attention_layer_flops", attention_layer_flops),
    ("rnn_flops", rnn_flops),
    ("lstm_flops", lstm_flops),
    ("gru_flops", gru_flops),
    ("conv1d_flops", lambda n, d: conv1d_flops(n, d, 3)),
]


@pytest.mark.parametrize("name, flops", FLOP_FUNCTIONS, ids=[name for name, _ in FLOP_FUNCTIONS])
@settings(max_examples=25)
@given(st.lists(st.integers(0, 4096), min_size=1, max_size=5), st.integers(1, 1024))
def test_flops_of_an_array_of_n_are_the_flops_of_each_n(name, flops, ns, d):
    counts = flops(np.array(ns), d)
    assert isinstance(counts, np.ndarray) and counts.shape == (len(ns),)
    assert counts.tolist() == [flops(n, d) for n in ns]


@pytest.mark.parametrize("name, flops", FLOP_FUNCTIONS, ids=[name for name, _ in FLOP_FUNCTIONS])
def test_flops_of_ints_are_python_ints(name, flops):
    assert type(flops(5, 3)) is int
    assert type(flops(np.int32(5), np.int64(3))) is int


def test_flops_of_int32_arrays_do_not_overflow():
    # n = 2^20 tokens, d = 4096: 4n²d = 2^2 · 2^40 · 2^12 = 2^54, far beyond int32.
    counts = attention_mixing_flops(np.array([2**20], dtype=np.int32), np.int32(4096))
    assert int(counts[0]) == 2**54


def test_flops_broadcast_n_and_d_arrays():
    counts = rnn_flops(np.array([[1], [2]]), np.array([1, 10]))
    assert counts.tolist() == [[4, 400], [8, 800]]


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: rnn_flops(2.0, 3), TypeError, "n must be an int or an integer NumPy array"),
        (lambda: rnn_flops(True, 3), TypeError, "n must be an int"),
        (lambda: rnn_flops(np.array([1.5]), 3), TypeError, "n must hold integers, got dtype"),
        (lambda: rnn_flops(-1, 3), ValueError, "n must be >= 0, got -1"),
        (
            lambda: rnn_flops(np.array([3, -2]), 3),
            ValueError,
            "n must be >= 0, got a minimum of -2",
        ),
        (lambda: attention_layer_flops(4, "8"), TypeError, "d must be an int"),
        (lambda: conv1d_flops(4, 2, 0), ValueError, "k must be >= 1, got 0"),
        (lambda: message_passing_flops(3, -1, 2), ValueError, "num_edges must be >= 0"),
        (lambda: conv_layers_to_connect(0, 3), ValueError, "n must be >= 1, got 0"),
        (lambda: conv_layers_to_connect(5, 1), ValueError, "k must be >= 2, got 1"),
        (lambda: sequential_steps("transformer", 4), ValueError, "got 'transformer'"),
        (lambda: max_path_length("rnn", 4), ValueError, "layer must be one of self-attention"),
        (lambda: conv_receptive_field(2, 3, [1]), ValueError, "num_layers=2, got 1 dilations"),
        (lambda: conv_receptive_field(2, 3, [1, 0]), ValueError, "dilations must be >= 1"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


# --- sequential steps and path length -------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
def test_sequential_steps_are_n_for_a_recurrent_layer_and_1_otherwise(layer):
    expected = 9 if layer == "recurrent" else 1
    assert sequential_steps(layer, 9) == expected
    assert sequential_steps(layer, np.array([9, 9])).tolist() == [expected, expected]


def test_max_path_length_is_1_for_attention_and_n_minus_1_steps_for_a_recurrent_layer():
    assert max_path_length("self-attention", 100) == 1
    assert max_path_length("recurrent", 100) == 99
    assert max_path_length("self-attention", np.array([1, 100])).tolist() == [1, 1]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_max_path_length_of_convolutions_is_conv_layers_to_connect(k):
    ns = np.arange(1, 40)
    plain = max_path_length("convolution", ns, k)
    dilated = max_path_length("dilated convolution", ns, k)
    assert plain.tolist() == conv_layers_to_connect(ns, k).tolist()
    assert dilated.tolist() == conv_layers_to_connect(ns, k, dilated=True).tolist()


def fewest_layers_by_search(n: int, k: int, dilated: bool) -> int:
    """The smallest L whose stack's receptive field (from conv_receptive_field) reaches n."""
    layers = 0
    while True:
        dilations = [k**layer for layer in range(layers)] if dilated else None
        if conv_receptive_field(layers, k, dilations) >= n:
            return layers
        layers += 1


@settings(max_examples=25)
@given(st.integers(1, 300), st.integers(2, 7), st.booleans())
def test_conv_layers_to_connect_is_the_fewest_layers_found_by_search(n, k, dilated):
    assert conv_layers_to_connect(n, k, dilated=dilated) == fewest_layers_by_search(n, k, dilated)


def test_conv_layers_to_connect_by_hand():
    # Plain, k = 3: each layer adds 2 positions, ⌈(10 - 1)/2⌉ = 5. Dilated: 3^2 = 9 < 10 <= 27.
    assert conv_layers_to_connect(10, 3) == 5
    assert conv_layers_to_connect(10, 3, dilated=True) == 3
    assert conv_layers_to_connect(1, 3) == 0 and conv_layers_to_connect(1, 3, dilated=True) == 0


def test_conv_layers_to_connect_of_an_array_keeps_its_shape():
    ns = np.array([[1, 9], [10, 27]])
    assert conv_layers_to_connect(ns, 3, dilated=True).tolist() == [[0, 2], [3, 3]]
    assert conv_layers_to_connect(ns, 3).tolist() == [[0, 4], [5, 13]]


def receptive_field_by_perturbation(num_layers: int, k: int, dilations: list[int]) -> int:
    """Inputs of a real nn.Conv1d stack that change its middle output when changed one by one."""
    torch.manual_seed(0)
    stack = nn.Sequential(
        *[nn.Conv1d(2, 2, k, dilation=dilation) for dilation in dilations]
    ).double()
    length = 2 * (k - 1) * sum(dilations) + 3  # room on both sides of the middle output
    x = torch.randn(1, 2, length, dtype=torch.float64)
    with torch.no_grad():
        middle = stack(x).shape[-1] // 2
        reference = stack(x)[..., middle]
        changed = 0
        for j in range(length):
            nudged = x.clone()
            nudged[..., j] += 1.0
            changed += not torch.equal(stack(nudged)[..., middle], reference)
    return changed


@pytest.mark.parametrize(
    "k, dilations",
    [(3, [1]), (3, [1, 1, 1]), (2, [1, 1]), (5, [1, 1]), (3, [1, 3, 9]), (2, [1, 2])],
)
def test_conv_receptive_field_counts_the_inputs_a_real_conv1d_stack_depends_on(k, dilations):
    num_layers = len(dilations)
    expected = receptive_field_by_perturbation(num_layers, k, dilations)
    assert conv_receptive_field(num_layers, k, dilations) == expected


def test_conv_receptive_field_by_hand():
    # Plain: 1 + L(k - 1) = 1 + 4·2 = 9. Dilated 1, 3, 9 with k = 3: 1 + 2(1 + 3 + 9) = 27 = 3³.
    assert conv_receptive_field(4, 3) == 9
    assert conv_receptive_field(3, 3, [1, 3, 9]) == 27
    assert conv_receptive_field(0, 3) == 1


def test_dilated_path_is_logarithmic_and_plain_path_linear():
    # n = 3^6 = 729 positions with k = 3: 6 dilated layers against ⌈728/2⌉ = 364 plain ones.
    assert max_path_length("dilated convolution", 729, 3) == 6
    assert max_path_length("convolution", 729, 3) == 364
    assert max_path_length("dilated convolution", 730, 3) == math.ceil(math.log(730, 3))
