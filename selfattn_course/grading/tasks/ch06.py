"""Chapter 6, self-attention against convolutions: a 1-D convolution from scratch, receptive fields.

References: ``conv1d`` is torch's :func:`torch.nn.functional.conv1d` (a cross-correlation, as in
every deep-learning library); ``receptive_field`` and the layer counts are the package's
:func:`~selfattn_course.costs.conv_receptive_field` and
:func:`~selfattn_course.costs.conv_layers_to_connect`. While the learner's functions run they may
not call torch's convolutions (``conv1d``, ``conv2d``, ``Conv1d``, ...) nor the package's
receptive field.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from selfattn_course.costs import conv_layers_to_connect, conv_receptive_field
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Choice, Numbers
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.predicates import at_least_one
from selfattn_course.grading.verdicts.forbid import CONV_BUILTINS

# --- task 1: conv1d -------------------------------------------------------------------------------


def conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, dilation: int = 1
) -> torch.Tensor:
    """``y[b, o, i] = bias[o] + Σ_c Σ_t weight[o, c, t] · x[b, c, i + t·dilation]``.

    ``x`` ``(B, C_in, L)``, ``weight`` ``(C_out, C_in, k)``, ``bias`` ``(C_out,)`` or None;
    stride 1, no padding: ``y`` is ``(B, C_out, L - dilation·(k - 1))``. Torch's ``conv1d``.
    """
    return F.conv1d(x, weight, bias, dilation=dilation)


def _output_length(result, inputs) -> bool:
    x, weight = inputs["x"], inputs["weight"]
    dilation = inputs.get("dilation", 1)
    expected = (x.shape[0], weight.shape[0], x.shape[-1] - dilation * (weight.shape[-1] - 1))
    return tuple(result.shape) == expected


def _conv_case(
    *,
    batch: int,
    c_in: int,
    c_out: int,
    length: int,
    k: int,
    seed: int,
    bias: bool = False,
    dilation: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[dict, dict]:
    """The arguments (x, weight, bias) and keyword arguments (dilation) of one case."""
    args = {
        "x": C.randn((batch, c_in, length), seed=seed, dtype=dtype, device=device),
        "weight": C.randn((c_out, c_in, k), seed=seed + 1, dtype=dtype, device=device),
    }
    if bias:
        args["bias"] = C.randn((c_out,), seed=seed + 2, dtype=dtype, device=device)
    kwargs = {} if dilation is None else {"dilation": dilation}
    return args, kwargs


def _conv_hidden(dtype, device) -> list[Case]:
    def case(name, **shape):
        args, kwargs = _conv_case(dtype=dtype, device=device, **shape)
        return Case(name, args, kwargs)

    return [
        case("random (2, 3, 10) with (4, 3, 3), bias", batch=2, c_in=3, c_out=4, length=10, k=3,
             seed=10, bias=True),
        case("kernel size 1: a linear map at every position", batch=2, c_in=5, c_out=2,
             length=6, k=1, seed=11, bias=True),
        case("output of length 1 (L = k)", batch=3, c_in=2, c_out=3, length=5, k=5, seed=12),
        case("dilation 2, kernel 3, no bias", batch=1, c_in=4, c_out=4, length=11, k=3,
             seed=13, dilation=2),
        case("dilation 3, kernel 2, bias", batch=2, c_in=3, c_out=1, length=9, k=2, seed=14,
             bias=True, dilation=3),
        case("one channel in and out, even kernel", batch=1, c_in=1, c_out=1, length=7, k=4,
             seed=15),
        case("16 channels, kernel 5, length 32", batch=2, c_in=16, c_out=8, length=32, k=5,
             seed=16, bias=True),
    ]  # fmt: skip


def _conv_visible() -> list[Case]:
    by_hand = Case(
        "by hand: x = [1, 2, 3, 4], weight = [1, 0, -1] gives [1 - 3, 2 - 4] = [-2, -2]",
        {
            "x": torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]),
            "weight": torch.tensor([[[1.0, 0.0, -1.0]]]),
        },
    )
    random_args, _ = _conv_case(batch=2, c_in=3, c_out=2, length=8, k=3, seed=1, bias=True)
    dilated_args, dilated_kwargs = _conv_case(
        batch=1, c_in=2, c_out=3, length=9, k=3, seed=2, dilation=2
    )
    return [
        by_hand,
        Case("random (2, 3, 8) with (2, 3, 3) and a bias", random_args),
        Case("dilation 2: taps 0, 2, 4", dilated_args, dilated_kwargs),
    ]


CONV1D = FunctionTask(
    id="ch06.conv1d",
    title="a 1-D convolution from scratch",
    points=4,
    statement=r"""
        Write `conv1d(x, weight, bias=None, dilation=1)`: the 1-D convolution of deep-learning
        libraries, with stride 1 and no padding. `x` is `(B, C_in, L)`, `weight` is
        `(C_out, C_in, k)`, `bias` is `(C_out,)` or `None`, and the output `y` is
        `(B, C_out, L - dilation·(k - 1))` with

        $$y[b, o, i] = \mathrm{bias}[o] + \sum_{c} \sum_{t=0}^{k-1}
        \mathrm{weight}[o, c, t] \, x[b, c, i + t \cdot \mathrm{dilation}].$$

        Compute all output positions at once (a loop over the $k$ taps is fine; no loop over
        positions is needed). You may not call torch's convolutions (`F.conv1d`,
        `torch.conv1d`, `nn.Conv1d`, `conv2d`, ...); `Tensor.unfold`, `einsum` and `@` are fine.
        """,
    reference=conv1d,
    visible_cases=_conv_visible,
    hidden_cases=over_devices(_conv_hidden),
    properties=(Property("the output has length L - dilation·(k - 1)", _output_length),),
    mistakes=(
        Mistake(
            "you flip the kernel (the convolution of signal processing); torch's conv1d is a "
            "cross-correlation, y[i] = Σ_t w[t] x[i + t], with no flip",
            source="""
                def conv1d(x, weight, bias=None, dilation=1):
                    k = weight.shape[-1]
                    length = x.shape[-1] - dilation * (k - 1)
                    flipped = weight.flip(-1)  # convolution: w[k - 1 - t]
                    y = 0
                    for t in range(k):
                        window = x[..., t * dilation : t * dilation + length]
                        y = y + torch.einsum("oc,bcl->bol", flipped[..., t], window)
                    if bias is not None:
                        y = y + bias[:, None]
                    return y
                """,
        ),
        Mistake(
            "the taps are read at i + t instead of i + t·dilation (the dilation only shortens "
            "the output)",
            source="""
                def conv1d(x, weight, bias=None, dilation=1):
                    k = weight.shape[-1]
                    length = x.shape[-1] - dilation * (k - 1)
                    y = 0
                    for t in range(k):
                        window = x[..., t : t + length]
                        y = y + torch.einsum("oc,bcl->bol", weight[..., t], window)
                    if bias is not None:
                        y = y + bias[:, None]
                    return y
                """,
        ),
        Mistake(
            "the bias is not added",
            lambda x, weight, bias=None, dilation=1: F.conv1d(x, weight, None, dilation=dilation),
        ),
    ),
    forbidden=CONV_BUILTINS,
)


# --- task 2: receptive_field ----------------------------------------------------------------------


def receptive_field(k: int, dilations: list[int]) -> int:
    """Inputs one output of a stack of width-``k`` convolutions sees: ``1 + Σ_l (k-1)·d_l``."""
    return conv_receptive_field(len(dilations), k, dilations)


def _layers(name: str, k: int, dilations: list[int]) -> Case:
    return Case(name, {"k": k, "dilations": list(dilations)})


def _receptive_hidden(_devices) -> list[Case]:
    """Plain numbers: the same on every device."""
    return [
        _layers("ten plain layers, k = 3", 3, [1] * 10),
        _layers("WaveNet's block: k = 2, dilations 1, 2, ..., 512", 2, [2**i for i in range(10)]),
        _layers("k = 3, dilations 1, 3, 9, 27", 3, [1, 3, 9, 27]),
        _layers("no layer at all", 3, []),
        _layers("k = 1: pointwise layers see one position", 1, [1, 2, 4]),
        _layers("k = 5, dilations 1, 1, 2, 2, 4", 5, [1, 1, 2, 2, 4]),
    ]


RECEPTIVE_FIELD = FunctionTask(
    id="ch06.receptive_field",
    title="the receptive field of a convolution stack",
    points=2,
    statement=r"""
        A stack of 1-D convolutions of kernel size $k$ (stride 1) has one dilation per layer,
        `dilations[l]`. Write `receptive_field(k, dilations)`: the number of input positions one
        output of the top layer depends on. A plain stack has all dilations 1; WaveNet doubles
        them, `[1, 2, 4, ...]`. Check your formula on one layer first: it sees $k$ positions.
        """,
    reference=receptive_field,
    visible_cases=lambda: [
        _layers("by hand: one layer, k = 3, sees 3 positions", 3, [1]),
        _layers("two plain layers, k = 3", 3, [1, 1]),
        _layers("k = 3, dilations 1 and 3", 3, [1, 3]),
    ],
    hidden_cases=_receptive_hidden,
    properties=(Property("an output sees at least its own position", at_least_one),),
    mistakes=(
        Mistake(
            "you left out the position itself: each layer adds (k - 1)·dilation positions to "
            "the 1 the output starts from",
            source="""
                def receptive_field(k, dilations):
                    return sum((k - 1) * d for d in dilations)
                """,
        ),
        Mistake(
            "each layer adds k·dilation positions; it adds (k - 1)·dilation (the centre tap is "
            "already counted)",
            lambda k, dilations: 1 + sum(k * d for d in dilations),
        ),
        Mistake(
            "the dilations are ignored: a dilated layer with dilation r widens the field by "
            "(k - 1)·r",
            source="""
                def receptive_field(k, dilations):
                    return 1 + len(dilations) * (k - 1)
                """,
        ),
    ),
    forbidden=("selfattn_course.costs.conv_receptive_field",),
    runner=returns_number,
)


# --- task 3: layers_to_connect --------------------------------------------------------------------

#: The sequence length and kernel size of the task.
CONNECT_N = 1000
CONNECT_K = 3

LAYERS_TO_CONNECT_EXPECTED = (
    int(conv_layers_to_connect(CONNECT_N, CONNECT_K)),
    int(conv_layers_to_connect(CONNECT_N, CONNECT_K, dilated=True)),
)

LAYERS_TO_CONNECT = AnswerTask(
    id="ch06.layers_to_connect",
    title="layers needed to connect a sequence",
    points=2,
    statement=r"""
        A sequence has $n = 1000$ positions. How many stacked convolution layers of kernel size
        $k = 3$ does the **last** output need before it depends on the **first** input
        (the maximum path length of Vaswani et al.'s Table 1)? Give two whole numbers: for a plain
        stack (all dilations 1) and for a dilated stack with dilations $1, 3, 9, 27, \dots$
        ($3^l$ in layer $l$). Store them as `layers_to_connect = (plain, dilated)`. One
        self-attention layer needs 1.
        """,
    answer_type=Numbers(count=2, integers=True, rtol=0.0, atol=0.0),
    expected=LAYERS_TO_CONNECT_EXPECTED,
    mistakes=(
        Mistake(
            "a layer of kernel k widens the field by k - 1, not k: n/k layers are too few",
            source="layers_to_connect = (334, 7)",
        ),
        Mistake(
            "round up: the field must cover all n positions, 1 + L·(k - 1) >= n",
            (LAYERS_TO_CONNECT_EXPECTED[0] - 1, LAYERS_TO_CONNECT_EXPECTED[1]),
        ),
        Mistake(
            "the dilations grow by factors of k = 3, not 2: the dilated stack needs ⌈log_3 n⌉",
            (LAYERS_TO_CONNECT_EXPECTED[0], 10),
        ),
        Mistake(
            "round up the logarithm: 3^6 = 729 positions do not cover 1000",
            (LAYERS_TO_CONNECT_EXPECTED[0], LAYERS_TO_CONNECT_EXPECTED[1] - 1),
        ),
    ),
)


# --- task 4: sequential_layer ---------------------------------------------------------------------

SEQUENTIAL_OPTIONS = Choice(
    {
        "a": "the convolution: each output needs its neighbours' outputs first, so the n "
        "positions are computed one after another",
        "b": "the recurrent layer: h_t needs h_(t-1), so its n steps run in a row; the "
        "convolution and self-attention compute all n outputs at once",
        "c": "self-attention: the softmax over all n keys must be finished position by position "
        "before the next query can start",
        "d": "none of them: on a GPU all three layers compute all positions at once",
    }
)

SEQUENTIAL_LAYER = AnswerTask(
    id="ch06.sequential_layer",
    title="which layer is sequential?",
    points=2,
    statement="Of a convolution, a recurrent layer and a self-attention layer over $n$ tokens, "
    "which needs $O(n)$ operations that must run one after another, and why? Store the letter "
    'as a string in `sequential_layer`, e.g. `sequential_layer = "a"`.\n\n'
    + SEQUENTIAL_OPTIONS.markdown_list(),
    answer_type=SEQUENTIAL_OPTIONS,
    expected="b",
    mistakes=(
        Mistake(
            "a convolution's outputs depend only on its inputs, never on other outputs: all "
            "positions are computed at once, in one batched product",
            source='sequential_layer = "a"',
        ),
        Mistake(
            "each query's softmax needs only the scores of that query: all n rows are computed "
            "at once",
            source='sequential_layer = "c"',
        ),
        Mistake(
            "a recurrence cannot be spread over cores: h_t needs h_(t-1), on any hardware",
            source='sequential_layer = "d"',
        ),
    ),
)


TASKS = [CONV1D, RECEPTIVE_FIELD, LAYERS_TO_CONNECT, SEQUENTIAL_LAYER]
