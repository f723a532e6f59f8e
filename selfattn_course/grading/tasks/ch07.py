"""Chapter 7, what self-attention costs against a convolution, and the bias it lacks.

Counting conventions (the chapter's and :mod:`selfattn_course.costs`'): a multiply-add counts as
2 FLOPs, and only matrix products count (biases, softmax and nonlinearities are left out). For
``n`` tokens of width ``d``:

- a 1-D convolution with kernel ``k``, ``d`` channels in and out: ``2knd²`` (each output
  position applies ``k`` matrices of ``d x d``);
- a 2-D convolution over an ``H x W`` image, kernel ``k x k``, ``C_in`` to ``C_out`` channels,
  "same" padding and stride 1: ``2·H·W·k²·C_in·C_out``;
- the mixing of self-attention, ``Q Kᵀ`` and ``A V``: ``4n²d``.

The references are written out here (the FLOP counts equal :func:`selfattn_course.costs.
conv1d_flops` and :func:`~selfattn_course.costs.attention_mixing_flops`, which
``tests/tasks/test_ch07.py`` checks, and torch's ``FlopCounterMode``); the convolution task's
reference is torch's ``conv1d`` on a circularly padded input, which the learner may not call.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from selfattn_course import costs
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.spec.predicates import positive, whole_number
from selfattn_course.grading.verdicts.forbid import CONV_BUILTINS

# --- task 1: conv1d_flops -------------------------------------------------------------------------


def conv1d_flops(n: int, d: int, k: int) -> int:
    """FLOPs of a 1-D convolution over ``n`` positions, ``d`` channels in and out, kernel ``k``:
    ``2knd²`` (:func:`selfattn_course.costs.conv1d_flops`)."""
    return costs.conv1d_flops(n, d, k)


CONV1D_FLOPS = FunctionTask(
    id="ch07.conv1d_flops",
    title="FLOPs of a 1-D convolution",
    points=1,
    statement=r"""
        Write `conv1d_flops(n, d, k)`: the FLOPs of one 1-D convolution layer over $n$
        positions, with $d$ input and $d$ output channels and a kernel of $k$ taps (stride 1,
        padding that keeps the length $n$). Every output position is a weighted sum of $k$
        input vectors of width $d$, each through its own $d \times d$ matrix.
        """,
    reference=conv1d_flops,
    forbidden=("selfattn_course.costs.conv1d_flops",),
    visible_cases=lambda: [
        plain_numbers("by hand: n = 2, d = 3, k = 1 gives 2·1·2·9 = 36", n=2, d=3, k=1),
        plain_numbers("n = 512, d = 256, k = 3", n=512, d=256, k=3),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("n = 4096, d = 512, k = 7", n=4096, d=512, k=7),
        plain_numbers("one position of width 1, k = 1", n=1, d=1, k=1),
        plain_numbers("n = 1000, d = 3, k = 5: width smaller than the kernel", n=1000, d=3, k=5),
        plain_numbers("n = 7, d = 1024, k = 3", n=7, d=1024, k=3),
    ],
    mistakes=(
        Mistake(
            "you counted O(n·k) as the Q&A does, times d once: each tap is a d x d matrix, "
            "so the count grows with d²",
            source="""
                def conv1d_flops(n, d, k):
                    return 2 * k * n * d  # one multiply-add per tap and channel
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2 (one multiply, one add)",
            lambda n, d, k: k * n * d**2,
        ),
        Mistake(
            "you left out the kernel size: each output position uses k input positions",
            lambda n, d, k: 2 * n * d**2,
        ),
    ),
    runner=returns_number,
)


# --- task 2: conv2d_flops -------------------------------------------------------------------------


def conv2d_flops(height: int, width: int, k: int, c_in: int, c_out: int) -> int:
    """FLOPs of a ``k x k`` 2-D convolution, same padding, stride 1: ``2·H·W·k²·C_in·C_out``."""
    return 2 * height * width * k**2 * c_in * c_out


CONV2D_FLOPS = FunctionTask(
    id="ch07.conv2d_flops",
    title="FLOPs of a 2-D convolution",
    points=2,
    statement=r"""
        Write `conv2d_flops(height, width, k, c_in, c_out)`: the FLOPs of one 2-D convolution
        layer over an image of `height` $\times$ `width` pixels with `c_in` input and `c_out`
        output channels, a square kernel of $k \times k$ taps, stride 1 and padding that keeps
        the size of the image.
        """,
    reference=conv2d_flops,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 2 x 2 image, k = 1, 3 -> 5 channels gives 2·4·1·3·5 = 120",
            height=2,
            width=2,
            k=1,
            c_in=3,
            c_out=5,
        ),
        plain_numbers(
            "a ResNet stage: 56 x 56, k = 3, 64 -> 64", height=56, width=56, k=3, c_in=64, c_out=64
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("224 x 224, k = 7, 3 -> 64", height=224, width=224, k=7, c_in=3, c_out=64),
        plain_numbers(
            "not square: 10 x 30, k = 5, 8 -> 16", height=10, width=30, k=5, c_in=8, c_out=16
        ),
        plain_numbers("one pixel, k = 1, 1 -> 1", height=1, width=1, k=1, c_in=1, c_out=1),
        plain_numbers("14 x 14, k = 3, 512 -> 256", height=14, width=14, k=3, c_in=512, c_out=256),
    ],
    mistakes=(
        Mistake(
            "you counted a kernel of k taps; a k x k kernel has k² taps",
            source="""
                def conv2d_flops(height, width, k, c_in, c_out):
                    return 2 * height * width * k * c_in * c_out
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2 (one multiply, one add)",
            lambda height, width, k, c_in, c_out: height * width * k**2 * c_in * c_out,
        ),
        Mistake(
            "every output channel sums over all input channels: multiply by c_in and by c_out",
            lambda height, width, k, c_in, c_out: 2 * height * width * k**2 * c_out,
        ),
    ),
    runner=returns_number,
)


# --- task 3: mixing_crossover ---------------------------------------------------------------------

#: The width and kernel size of the crossover task.
CROSSOVER_WIDTH = 512
CROSSOVER_KERNEL = 7


def _mixing_crossover(d: int, k: int) -> int:
    """Largest ``n`` with ``4n²d <= 2knd²``, i.e. ``n <= kd/2``."""
    return k * d // 2


MIXING_CROSSOVER = AnswerTask(
    id="ch07.mixing_crossover",
    title="where the mixing overtakes the convolution",
    points=2,
    statement=rf"""
        At width $d = {CROSSOVER_WIDTH}$, a convolution with kernel $k = {CROSSOVER_KERNEL}$
        costs $2knd^2$ FLOPs and the mixing of self-attention ($QK^\top$ and $AV$) costs
        $4n^2d$. What is the **largest** sequence length $n$ at which the mixing costs **no
        more** than the convolution? Store the whole number in `mixing_crossover`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=_mixing_crossover(CROSSOVER_WIDTH, CROSSOVER_KERNEL),
    properties=(
        Property("n is a whole number of tokens", whole_number),
        Property("n is positive", positive),
    ),
    mistakes=(
        Mistake(
            "n = k compares the Q&A's O(n²) with O(n·k): both leave out the width d, "
            "which multiplies the mixing once and the convolution twice",
            source=f"""
                k = {CROSSOVER_KERNEL}
                mixing_crossover = k  # n² <= n·k
                """,
        ),
        Mistake(
            "n = d is where the mixing equals a recurrent layer (4nd²), not a convolution",
            CROSSOVER_WIDTH,
        ),
        Mistake(
            "n = kd counts the mixing as 2n²d; Q Kᵀ and A V cost 2n²d each",
            CROSSOVER_KERNEL * CROSSOVER_WIDTH,
        ),
    ),
)


# --- task 4: circular_conv1d ----------------------------------------------------------------------


def circular_conv1d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A 1-D convolution over the positions of ``x``, circular padding, stride 1, no bias.

    ``x`` is ``(..., n, c_in)`` (tokens, as attention takes them), ``weight`` is
    ``(c_out, c_in, k)`` with ``k`` odd (``nn.Conv1d``'s layout); the output is
    ``(..., n, c_out)``::

        y[..., i, :] = sum_j weight[:, :, j] @ x[..., (i + j - k // 2) mod n, :]

    a cross-correlation, as ``nn.Conv1d`` computes (the kernel is not flipped).
    """
    k = weight.shape[-1]
    leading, (n, c_in) = x.shape[:-2], x.shape[-2:]
    channels_first = x.reshape(-1, n, c_in).transpose(1, 2)  # (B, c_in, n)
    padded = F.pad(channels_first, (k // 2, k // 2), mode="circular")
    out = F.conv1d(padded, weight)  # (B, c_out, n)
    return out.transpose(1, 2).reshape(*leading, n, weight.shape[0])


def _conv_inputs(batch, n, c_in, c_out, k, seed, dtype=torch.float32, device="cpu"):
    return {
        "x": C.randn((*batch, n, c_in), seed=seed, dtype=dtype, device=device),
        "weight": C.randn((c_out, c_in, k), seed=seed + 1, dtype=dtype, device=device),
    }


def _conv_hidden(dtype, device) -> list[Case]:
    def inputs(batch, n, c_in, c_out, k, seed):
        return _conv_inputs(batch, n, c_in, c_out, k, seed, dtype, device)

    return [
        Case("random (2, 12, 4) -> 6 channels, k = 3", inputs((2,), 12, 4, 6, 3, 40)),
        Case("two batch dims (2, 3), k = 5", inputs((2, 3), 9, 3, 2, 5, 41)),
        Case("kernel as long as the sequence: n = 5, k = 5", inputs((1,), 5, 2, 3, 5, 42)),
        Case("k = 1: a position-wise linear map", inputs((3,), 7, 4, 4, 1, 43)),
        Case("length-1 sequence, k = 3 (wraps onto itself)", inputs((2,), 1, 3, 2, 3, 44)),
    ]


def _output_shape(result, inputs) -> bool:
    x, weight = inputs["x"], inputs["weight"]
    return tuple(result.shape) == (*x.shape[:-1], weight.shape[0])


CIRCULAR_CONV1D = FunctionTask(
    id="ch07.circular_conv1d",
    title="a translation-equivariant convolution",
    points=3,
    statement=r"""
        Write `circular_conv1d(x, weight)`: a 1-D convolution over the positions of a sequence
        `x` of shape `(..., n, c_in)` (tokens in rows, as attention takes them), with `weight`
        of shape `(c_out, c_in, k)` ($k$ odd, `nn.Conv1d`'s layout), stride 1, no bias, and
        **circular** padding (position $-1$ is position $n - 1$). The output has shape
        `(..., n, c_out)`, with
        $y_i = \sum_{j=0}^{k-1} W_{:,:,j}\, x_{(i + j - \lfloor k/2 \rfloor) \bmod n}$.
        Like `nn.Conv1d`, this is a cross-correlation: the kernel is not flipped. Do not call
        torch's convolutions (`F.conv1d`, `nn.Conv1d`); `torch.roll` and matrix products are
        enough. With circular padding the layer is exactly translation-equivariant: check that
        `circular_conv1d(torch.roll(x, s, dims=-2), weight)` equals
        `torch.roll(circular_conv1d(x, weight), s, dims=-2)`.
        """,
    reference=circular_conv1d,
    visible_cases=lambda: [
        Case(
            "by hand: x = [[1], [2], [3]], weight [[[1, 0, 0]]] gives [[3], [1], [2]]",
            {
                "x": torch.tensor([[1.0], [2.0], [3.0]]),
                "weight": torch.tensor([[[1.0, 0.0, 0.0]]]),
            },
        ),
        Case("random (2, 8, 3) -> 4 channels, k = 3", _conv_inputs((2,), 8, 3, 4, 3, 1)),
    ],
    hidden_cases=over_devices(_conv_hidden),
    properties=(Property("the output has shape (..., n, c_out)", _output_shape),),
    mistakes=(
        Mistake(
            "you padded with zeros: the positions near both ends lose their neighbours, and "
            "the layer is no longer exactly translation-equivariant",
            source="""
                def circular_conv1d(x, weight):
                    c_out, c_in, k = weight.shape
                    n = x.shape[-2]
                    padded = torch.cat(
                        [x.new_zeros(*x.shape[:-2], k // 2, c_in), x,
                         x.new_zeros(*x.shape[:-2], k // 2, c_in)], dim=-2)
                    return sum(padded[..., j:j + n, :] @ weight[:, :, j].T for j in range(k))
                """,
        ),
        Mistake(
            "you flipped the kernel (a convolution in the textbook sense); nn.Conv1d "
            "computes a cross-correlation: tap j meets position i + j - k // 2",
            source="""
                def circular_conv1d(x, weight):
                    k = weight.shape[-1]
                    return sum(
                        torch.roll(x, j - k // 2, dims=-2) @ weight[:, :, j].T for j in range(k)
                    )
                """,
        ),
        Mistake(
            "the window is not centred: tap j should meet position i + j - k // 2, not i + j",
            source="""
                def circular_conv1d(x, weight):
                    k = weight.shape[-1]
                    return sum(torch.roll(x, -j, dims=-2) @ weight[:, :, j].T for j in range(k))
                """,
        ),
    ),
    forbidden=CONV_BUILTINS,
)


# --- task 5: weights_over_activations -------------------------------------------------------------

#: A ViT-Base-like layer over a 64 x 64 grid of patches.
RATIO_HEADS = 12
RATIO_LENGTH = 4096
RATIO_WIDTH = 768


def _weights_over_activations(heads: int, n: int, d: int) -> float:
    """``(B, H, n, n)`` weights over ``(B, n, d)`` activations: ``H·n/d``."""
    return heads * n / d


WEIGHTS_OVER_ACTIVATIONS = AnswerTask(
    id="ch07.weights_over_activations",
    title="the weights against the activations",
    points=2,
    statement=rf"""
        A multi-head attention layer with $H = {RATIO_HEADS}$ heads runs over $n =
        {RATIO_LENGTH}$ tokens (a $64 \times 64$ grid of patches) of width $d = {RATIO_WIDTH}$.
        In training it keeps its weights $A$, of shape `(batch, heads, n, n)`, for the backward
        pass; a convolution layer of the same width keeps only activations of shape
        `(batch, n, d)`, like the attention layer's own output. In the same number format, how
        many times larger are the weights than the layer's output? Store the number in
        `weights_over_activations`.
        """,
    answer_type=Number(rtol=1e-6, atol=0.0),
    expected=_weights_over_activations(RATIO_HEADS, RATIO_LENGTH, RATIO_WIDTH),
    properties=(Property("the ratio is positive", positive),),
    mistakes=(
        Mistake(
            "every head has its own n x n weights: multiply by the number of heads",
            source=f"""
                heads, n, d = {RATIO_HEADS}, {RATIO_LENGTH}, {RATIO_WIDTH}
                weights_over_activations = n * n / (n * d)
                """,
        ),
        Mistake(
            "you compared with one head's slice of the output (n x d/H); "
            "the layer's output has all d columns",
            RATIO_HEADS**2 * RATIO_LENGTH / RATIO_WIDTH,
        ),
        Mistake(
            "the ratio is weights over activations, not the other way round",
            RATIO_WIDTH / (RATIO_HEADS * RATIO_LENGTH),
        ),
    ),
)


TASKS = [
    CONV1D_FLOPS,
    CONV2D_FLOPS,
    MIXING_CROSSOVER,
    CIRCULAR_CONV1D,
    WEIGHTS_OVER_ACTIVATIONS,
]
