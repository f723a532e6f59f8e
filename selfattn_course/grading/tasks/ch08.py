"""Chapter 8, self-attention against RNNs: sequential steps, an LSTM gate, a cached decoding step.

References: ``forget_gate`` is written out here from PyTorch's LSTM layout (one line);
``attention_step`` appends the new key and value to the past ones and calls the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention` (the tests check it against row
``t`` of full causal attention and against a :class:`~selfattn_course.attention.KVCache` loop).
The learner may not call the package's or torch's attention while ``attention_step`` runs.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Numbers
from selfattn_course.grading.spec.predicates import between_zero_and_one
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS

# --- task 1: steps --------------------------------------------------------------------------------

#: The stacks of task 1: layers and sequence length.
STACK_LAYERS = 6
STACK_LENGTH = 512


def _critical_paths(layers: int, n: int) -> tuple[int, int]:
    """Least number of sequential steps of a forward pass: ``(Transformer, stacked LSTM)``.

    A Transformer layer handles all ``n`` positions in one step: ``layers`` steps. LSTM cell
    ``(l, t)`` needs ``(l, t - 1)`` and ``(l - 1, t)``, so the cells on one anti-diagonal
    ``l + t = s`` can run together: ``n + layers - 1`` steps (a wavefront), not ``n · layers``.
    """
    return layers, n + layers - 1


def _positive_integers(steps, _inputs) -> bool:
    return min(steps) >= 1


STEPS = AnswerTask(
    id="ch08.steps",
    title="sequential steps of two stacks",
    points=3,
    statement=r"""
        A 6-layer Transformer encoder and a 6-layer stacked LSTM (layer $l$ reads the outputs of
        layer $l - 1$) each read one sequence of $n = 512$ tokens in a training forward pass.
        Count **sequential steps**: a step is a group of computations that can all run at the
        same time once the earlier steps are done. One Transformer layer over all $n$ positions
        is one step (its attention and its feed-forward network count as one). One LSTM cell
        update, of layer $l$ at position $t$, is one step; it needs the same layer's state at
        position $t - 1$ and the output of layer $l - 1$ at position $t$. With as many
        processors as you like, what is the **least** number of steps each stack needs? Store
        `steps = (transformer, lstm)`.
        """,
    answer_type=Numbers(count=2, rtol=0.0, atol=0.0, integers=True),
    expected=_critical_paths(STACK_LAYERS, STACK_LENGTH),
    properties=(Property("both counts are at least 1", _positive_integers),),
    mistakes=(
        Mistake(
            "layer l need not wait for the whole of layer l - 1: cell (l, t) can start as soon as "
            "(l, t - 1) and (l - 1, t) are done, so the layers overlap like a wavefront",
            source="""
                layers, n = 6, 512
                steps = (layers, layers * n)
                """,
        ),
        Mistake(
            "the top layer starts one step after the layer below it: the wavefront adds "
            "layers - 1 steps to the n of one layer",
            (STACK_LAYERS, STACK_LENGTH),
        ),
        Mistake(
            "a Transformer layer handles all positions at once, but its layers still run one "
            "after the other: one step per layer",
            (1, STACK_LENGTH + STACK_LAYERS - 1),
        ),
        Mistake(
            "that counts positions for the Transformer; all n positions of one layer are one step",
            (STACK_LAYERS * STACK_LENGTH, STACK_LENGTH + STACK_LAYERS - 1),
        ),
    ),
)


# --- task 2: forget_gate --------------------------------------------------------------------------


def forget_gate(
    x: torch.Tensor,
    h: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> torch.Tensor:
    """``f = σ(x W_if ᵀ + b_if + h W_hf ᵀ + b_hf)``: ``(B, d_in), (B, d) -> (B, d)``.

    The weights are in PyTorch's ``nn.LSTM`` / ``nn.LSTMCell`` layout: ``weight_ih (4d, d_in)``,
    ``weight_hh (4d, d)``, biases ``(4d,)``, the gates stacked as (input, forget, cell, output);
    the forget gate is the second block of ``d`` rows.
    """
    d = h.shape[-1]
    rows = slice(d, 2 * d)
    pre = x @ weight_ih[rows].T + bias_ih[rows] + h @ weight_hh[rows].T + bias_hh[rows]
    return torch.sigmoid(pre)


def _lstm_inputs(batch, d_in, d, *, seed, dtype=torch.float32, device="cpu", scale=1.0):
    """Inputs and LSTM weights in PyTorch's layout, drawn like ``nn.LSTMCell`` (``U(±1/√d)``
    is replaced by normal numbers of standard deviation ``1/√d``)."""
    weight_scale = 1.0 / math.sqrt(d)

    def draw(shape, offset, scale):
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device, scale=scale)

    return {
        "x": draw((batch, d_in), 0, scale),
        "h": draw((batch, d), 1, 1.0).tanh(),  # a state, in (-1, 1)
        "weight_ih": draw((4 * d, d_in), 2, weight_scale),
        "weight_hh": draw((4 * d, d), 3, weight_scale),
        "bias_ih": draw((4 * d,), 4, weight_scale),
        "bias_hh": draw((4 * d,), 5, weight_scale),
    }


def _forget_gate_hidden(dtype, device) -> list[Case]:
    def lstm(batch, d_in, d, seed, scale=1.0):
        return _lstm_inputs(batch, d_in, d, seed=seed, dtype=dtype, device=device, scale=scale)

    return [
        Case("batch 4, d_in = 6, d = 5", lstm(4, 6, 5, seed=30)),
        Case("one example, d_in = d = 16", lstm(1, 16, 16, seed=31)),
        Case("width 1 (d = 1), d_in = 3", lstm(3, 3, 1, seed=32)),
        Case("large inputs (x times 20): the gate saturates near 0 and 1", lstm(5, 4, 7, 33, 20.0)),
    ]


FORGET_GATE = FunctionTask(
    id="ch08.forget_gate",
    title="the forget gate of an LSTM",
    points=3,
    statement=r"""
        An LSTM keeps a cell state $c_t = f_t \odot c_{t-1} + i_t \odot g_t$; its forget gate
        $f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf})$ decides, **from the
        input and the previous state**, how much of $c_{t-1}$ to keep. Write
        `forget_gate(x, h, weight_ih, weight_hh, bias_ih, bias_hh)` returning $f_t$ of shape
        `(B, d)` for `x` `(B, d_in)` and `h` `(B, d)`. The weights come in the layout of
        PyTorch's `nn.LSTM` and `nn.LSTMCell`: `weight_ih` `(4d, d_in)`, `weight_hh` `(4d, d)`,
        `bias_ih` and `bias_hh` `(4d,)`, each the four gates' rows stacked in the order
        (input $i$, forget $f$, cell $g$, output $o$).
        """,
    reference=forget_gate,
    visible_cases=lambda: [
        Case(
            "by hand: all weights and biases 0 give f = sigmoid(0) = 0.5",
            {
                "x": torch.ones(1, 2),
                "h": torch.ones(1, 3),
                "weight_ih": torch.zeros(12, 2),
                "weight_hh": torch.zeros(12, 3),
                "bias_ih": torch.zeros(12),
                "bias_hh": torch.zeros(12),
            },
        ),
        Case("random: batch 2, d_in = 3, d = 4", _lstm_inputs(2, 3, 4, seed=1)),
        Case("random: batch 3, d_in = 8, d = 2", _lstm_inputs(3, 8, 2, seed=2)),
    ],
    hidden_cases=over_devices(_forget_gate_hidden),
    properties=(Property("every gate value is between 0 and 1", between_zero_and_one),),
    mistakes=(
        Mistake(
            "you took the first block of rows, the input gate; PyTorch stacks (i, f, g, o), so "
            "the forget gate is the second block, rows d to 2d",
            source="""
                def forget_gate(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
                    d = h.shape[-1]
                    pre = x @ weight_ih[:d].T + bias_ih[:d] + h @ weight_hh[:d].T + bias_hh[:d]
                    return torch.sigmoid(pre)
                """,
        ),
        Mistake(
            "you took the third block, the cell candidate g; the forget gate is the second block",
            lambda x, h, wi, wh, bi, bh: torch.sigmoid(
                x @ wi.chunk(4)[2].T + bi.chunk(4)[2] + h @ wh.chunk(4)[2].T + bh.chunk(4)[2]
            ),
        ),
        Mistake(
            "you left out bias_hh: PyTorch adds two biases, b_if and b_hf",
            lambda x, h, wi, wh, bi, bh: torch.sigmoid(
                x @ wi.chunk(4)[1].T + bi.chunk(4)[1] + h @ wh.chunk(4)[1].T
            ),
        ),
        Mistake(
            "you left out the previous state h: the gate depends on h_{t-1} as well as x_t",
            lambda x, h, wi, wh, bi, bh: torch.sigmoid(
                x @ wi.chunk(4)[1].T + bi.chunk(4)[1] + bh.chunk(4)[1]
            ),
        ),
    ),
)


# --- task 3: attention_step -----------------------------------------------------------------------


def attention_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    past_keys: torch.Tensor,
    past_values: torch.Tensor,
) -> torch.Tensor:
    """One decoding step of causal attention over a cache: ``(B, H, 1, dv)``.

    ``q``, ``k`` ``(B, H, 1, d)`` and ``v`` ``(B, H, 1, dv)`` belong to the new token at position
    ``T``; ``past_keys`` ``(B, H, T, d)`` and ``past_values`` ``(B, H, T, dv)`` to positions
    ``0..T-1`` (``T`` may be 0). The new token attends to all ``T + 1`` positions, itself
    included: ``softmax(q Kᵀ / √d) V`` with ``K = [past_keys; k]``, ``V = [past_values; v]``.
    This equals row ``T`` of full causal attention over the ``T + 1`` positions.
    """
    keys = torch.cat([past_keys, k], dim=-2)
    values = torch.cat([past_values, v], dim=-2)
    return scaled_dot_product_attention(q, keys, values)


def _step_inputs(batch, heads, past, d, dv=None, *, seed, dtype=torch.float32, device="cpu"):
    dv = d if dv is None else dv

    def draw(length, width, offset):
        shape = (batch, heads, length, width)
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device)

    return {
        "q": draw(1, d, 0),
        "k": draw(1, d, 1),
        "v": draw(1, dv, 2),
        "past_keys": draw(past, d, 3),
        "past_values": draw(past, dv, 4),
    }


def _within_the_values(result, inputs) -> bool:
    """A convex combination of the values lies between their smallest and largest entries."""
    values = torch.cat([inputs["past_values"], inputs["v"]], dim=-2)
    tolerance = 1e-5 if result.dtype == torch.float32 else 1e-12
    low = values.min(dim=-2, keepdim=True).values - tolerance
    high = values.max(dim=-2, keepdim=True).values + tolerance
    return bool(((result >= low) & (result <= high)).all())


def _step_hidden(dtype, device) -> list[Case]:
    def step(batch, heads, past, d, dv=None, *, seed):
        return _step_inputs(batch, heads, past, d, dv, seed=seed, dtype=dtype, device=device)

    return [
        Case("batch 2, 4 heads, 7 past tokens, d = 16, dv = 5", step(2, 4, 7, 16, 5, seed=40)),
        Case("the first token: an empty cache (T = 0)", step(3, 2, 0, 8, seed=41)),
        Case("d = 64, where the 1/sqrt(d) scale matters most", step(1, 2, 12, 64, seed=42)),
        Case("a long cache: 1 head, 50 past tokens, d = 4", step(1, 1, 50, 4, seed=43)),
    ]


def _empty_cache_case() -> Case:
    """By hand: with nothing cached the token attends only to itself, so the output is ``v``."""
    return Case(
        "by hand: an empty cache (T = 0) gives the token's own value v",
        {
            "q": torch.tensor([[[[1.0, 0.0]]]]),
            "k": torch.tensor([[[[0.5, 0.5]]]]),
            "v": torch.tensor([[[[2.0, -1.0, 3.0]]]]),
            "past_keys": torch.zeros(1, 1, 0, 2),
            "past_values": torch.zeros(1, 1, 0, 3),
        },
    )


ATTENTION_STEP = FunctionTask(
    id="ch08.attention_step",
    title="one decoding step over a cache",
    points=4,
    statement=r"""
        A decoder generates one token at a time. At position $T$ it computes the new token's
        query `q`, key `k` (each `(B, H, 1, d)`) and value `v` `(B, H, 1, dv)`, and keeps the
        keys and values of positions $0, \dots, T-1$ in a cache: `past_keys` `(B, H, T, d)` and
        `past_values` `(B, H, T, dv)` ($T$ may be 0). Write
        `attention_step(q, k, v, past_keys, past_values)` returning the new token's attention
        output `(B, H, 1, dv)`: causal attention lets it attend to every position up to and
        **including its own**, with scores scaled by $1/\sqrt{d}$. The result must equal row
        $T$ of full causal attention over the $T + 1$ positions. Write it from scratch: no
        `scaled_dot_product_attention` (torch's or the package's) and no `softmax` of the
        package.
        """,
    reference=attention_step,
    visible_cases=lambda: [
        _empty_cache_case(),
        Case("random: batch 2, 3 heads, 5 past tokens, d = 8", _step_inputs(2, 3, 5, 8, seed=1)),
        Case("random: 1 past token, d = 4, dv = 6", _step_inputs(1, 2, 1, 4, 6, seed=2)),
    ],
    hidden_cases=over_devices(_step_hidden),
    properties=(
        Property(
            "the output lies between the smallest and largest value of each feature "
            "(a weighted average of the values)",
            _within_the_values,
        ),
    ),
    mistakes=(
        Mistake(
            "the new token's own key and value are left out: append k and v to the cache "
            "before attending (causal attention includes position T itself)",
            source="""
                def attention_step(q, k, v, past_keys, past_values):
                    scores = q @ past_keys.transpose(-2, -1) / math.sqrt(q.shape[-1])
                    weights = torch.softmax(scores, dim=-1)
                    return weights @ past_values
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d)",
            lambda q, k, v, past_keys, past_values: (
                torch.softmax(q @ torch.cat([past_keys, k], -2).transpose(-2, -1), dim=-1)
                @ torch.cat([past_values, v], -2)
            ),
        ),
        Mistake(
            "the softmax runs over the queries (dim=-2), of which there is one, so every weight "
            "is 1; it must run over the keys (dim=-1)",
            lambda q, k, v, past_keys, past_values: (
                torch.softmax(
                    q @ torch.cat([past_keys, k], -2).transpose(-2, -1) / math.sqrt(q.shape[-1]),
                    dim=-2,
                )
                @ torch.cat([past_values, v], -2)
            ),
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


TASKS = [STEPS, FORGET_GATE, ATTENTION_STEP]
