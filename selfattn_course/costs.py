"""What one sequence-mixing layer costs: FLOPs, sequential steps and path length.

The three columns of Vaswani et al. (2017), Table 1, for a sequence of ``n`` tokens of width
``d`` (input and output width alike), as functions a chapter can plot, tabulate and check against
torch's ``FlopCounterMode``.

Counting conventions:

- a multiply-add counts as **2 FLOPs**: multiplying an ``(m, k)`` matrix by a ``(k, p)`` matrix
  costs ``2·m·k·p``;
- only matrix products are counted; biases, softmax, nonlinearities and norms are left out
  (they are O(n·d) or O(n²) and never dominate);
- every function accepts Python ints or NumPy integer arrays (broadcast together), and returns
  the same kind, so ``attention_layer_flops(np.array([16, 64]), 512)`` gives one count per n.

=========================  ======================  ===================  =====================
layer                      FLOPs per layer         sequential steps     maximum path length
=========================  ======================  ===================  =====================
self-attention             ``8nd² + 4n²d``         ``1``                ``1``
recurrent (Elman)          ``4nd²``                ``n``                ``n - 1``
convolution, kernel ``k``  ``2knd²``               ``1``                ``⌈(n-1)/(k-1)⌉``
dilated convolution        ``2knd²``               ``1``                ``⌈log_k n⌉``
=========================  ======================  ===================  =====================

The path length is the number of layers a signal must cross between the two farthest positions
(for a recurrent layer, the number of steps within the one layer; Vaswani et al. write O(n)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LAYERS = ("self-attention", "recurrent", "convolution", "dilated convolution")


# --- FLOPs per layer --------------------------------------------------------------------------


def attention_mixing_flops(n, d):
    """Scores ``Q Kᵀ`` and mixing ``A V`` of one head of width ``d``: ``2·2n²d = 4n²d``."""
    return 4 * _ints("n", n) ** 2 * _ints("d", d)


def attention_layer_flops(n, d, *, output_projection: bool = True):
    """One self-attention layer: the projections and the mixing.

    ``W_Q, W_K, W_V`` (and ``W_O``), each ``(d, d)`` applied to ``n`` tokens, cost ``2nd²``
    each; the mixing ``4n²d`` (:func:`attention_mixing_flops`). With ``output_projection=False``
    (the package's :class:`~selfattn_course.attention.SelfAttention`) it is ``6nd² + 4n²d``,
    else ``8nd² + 4n²d``. The count does not depend on the number of heads: ``h`` heads of width
    ``d/h`` do the same mixing work as one of width ``d``.
    """
    n, d = _ints("n", n), _ints("d", d)
    projections = 4 if output_projection else 3
    return projections * 2 * n * d**2 + attention_mixing_flops(n, d)


def rnn_flops(n, d):
    """An Elman layer, ``h_t = tanh(W x_t + U h_{t-1})``: two ``(d, d)`` products a step: 4nd²."""
    return 4 * _ints("n", n) * _ints("d", d) ** 2


def lstm_flops(n, d):
    """An LSTM layer: four gates, each a ``W x_t`` and a ``U h_{t-1}``, ``4 · 4nd² = 16nd²``."""
    return 16 * _ints("n", n) * _ints("d", d) ** 2


def gru_flops(n, d):
    """A GRU layer: three gates (reset, update, candidate), each two products, ``12nd²``."""
    return 12 * _ints("n", n) * _ints("d", d) ** 2


def conv1d_flops(n, d, k):
    """A 1-D convolution, ``d`` channels in and out, kernel ``k``, output length ``n``: ``2knd²``.

    Each output position and output channel is a dot product over ``k·d`` inputs.
    """
    return 2 * _ints("k", k, minimum=1) * _ints("n", n) * _ints("d", d) ** 2


def message_passing_flops(num_nodes, num_edges, d):
    """One message-passing layer on a graph: ``2|E|d + 2nd²``.

    Each edge ``j -> i`` adds a weighted message ``w_ij · h_j`` of width ``d`` into node ``i``
    (``|E|·d`` multiply-adds), and each of the ``n`` nodes applies one ``(d, d)`` transform
    (``n·d²``). Dense self-attention over the same nodes costs ``4n²d`` for its mixing alone:
    it pays for all ``n²`` pairs whether or not they are edges.
    """
    n, edges, d = _ints("num_nodes", num_nodes), _ints("num_edges", num_edges), _ints("d", d)
    return 2 * edges * d + 2 * n * d**2


# --- sequential steps and path length ----------------------------------------------------------


def sequential_steps(layer: str, n):
    """Operations that must run one after another inside one layer: ``n`` for a recurrent layer
    (step ``t`` needs ``h_{t-1}``), ``1`` for the others (every position at once)."""
    n = _ints("n", n)
    _check_layer(layer)
    if layer == "recurrent":
        return n
    return np.ones_like(n) if isinstance(n, np.ndarray) else 1


def max_path_length(layer: str, n, k: int = 3):
    """Layers (or recurrent steps) a signal crosses between the two farthest of ``n`` positions.

    ``1`` for self-attention, ``n - 1`` steps for a recurrent layer (Vaswani et al. write O(n)),
    :func:`conv_layers_to_connect` for a stack of width-``k`` convolutions, plain or dilated.
    """
    n = _ints("n", n, minimum=1)
    _check_layer(layer)
    if layer == "self-attention":
        return np.ones_like(n) if isinstance(n, np.ndarray) else 1
    if layer == "recurrent":
        return n - 1
    return conv_layers_to_connect(n, k, dilated=layer == "dilated convolution")


def conv_layers_to_connect(n, k: int, *, dilated: bool = False):
    """Fewest stacked width-``k`` convolutions whose receptive field covers ``n`` positions.

    Plain (stride 1, no dilation): each layer widens the field by ``k - 1``, so
    ``⌈(n - 1)/(k - 1)⌉`` layers. Dilated with dilations ``1, k, k², ...`` (WaveNet's
    schedule): ``L`` layers see ``k^L`` positions, so ``⌈log_k n⌉`` layers. ``n = 1`` needs 0.
    """
    n = _ints("n", n, minimum=1)
    k = _ints("k", k, minimum=2)
    if not dilated:
        return -(-(n - 1) // (k - 1))  # ceiling division, exact for integers
    if isinstance(n, np.ndarray):
        return np.array([_dilated_layers(int(value), int(k)) for value in n.ravel()]).reshape(
            n.shape
        )
    return _dilated_layers(n, k)


def conv_receptive_field(num_layers: int, k: int, dilations=None) -> int:
    """Inputs one output of a stack of ``num_layers`` width-``k`` convolutions depends on.

    ``1 + Σ_l (k - 1)·dilation_l``; ``dilations`` default to all 1 (a plain stack,
    ``1 + L(k - 1)``). Stride 1 throughout.
    """
    num_layers = _ints("num_layers", num_layers)
    k = _ints("k", k, minimum=1)
    if dilations is None:
        dilations = [1] * num_layers
    dilations = [int(_ints("dilations", dilation, minimum=1)) for dilation in dilations]
    if len(dilations) != num_layers:
        raise ValueError(
            f"dilations must give one dilation per layer: num_layers={num_layers}, "
            f"got {len(dilations)} dilations"
        )
    return 1 + sum((k - 1) * dilation for dilation in dilations)


def table1(n: int, d: int, k: int = 3) -> list[dict[str, Any]]:
    """Vaswani et al.'s Table 1 at one ``(n, d, k)``: one dict a layer, keys ``layer``,
    ``flops``, ``sequential_steps``, ``max_path_length``. Self-attention with four projections;
    the recurrent layer is an Elman RNN."""
    flops = {
        "self-attention": attention_layer_flops(n, d),
        "recurrent": rnn_flops(n, d),
        "convolution": conv1d_flops(n, d, k),
        "dilated convolution": conv1d_flops(n, d, k),
    }
    return [
        {
            "layer": layer,
            "flops": int(flops[layer]),
            "sequential_steps": int(sequential_steps(layer, n)),
            "max_path_length": int(max_path_length(layer, n, k)),
        }
        for layer in LAYERS
    ]


# --- helpers --------------------------------------------------------------------------------------


def _dilated_layers(n: int, k: int) -> int:
    layers, covered = 0, 1
    while covered < n:
        covered *= k
        layers += 1
    return layers


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}; got {layer!r}")


def _ints(name: str, value, *, minimum: int = 0):
    """``value`` as an int or an integer NumPy array, each entry ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, np.ndarray)):
        raise TypeError(
            f"{name} must be an int or an integer NumPy array, got {type(value).__name__}"
        )
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.integer):
            raise TypeError(f"{name} must hold integers, got dtype {value.dtype}")
        value = value.astype(np.int64)  # no overflow for n²d at long contexts
        if value.size and value.min() < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got a minimum of {value.min()}")
        return value
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
