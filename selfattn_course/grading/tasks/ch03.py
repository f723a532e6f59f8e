"""Chapter 3, strengths and weaknesses: the cost of a layer in FLOPs, bytes and context length.

Counting conventions (the chapter's): a multiply-add counts as 2 FLOPs; multiplying an
``(m, k)`` by a ``(k, n)`` matrix costs ``2·m·k·n``. For a sequence of ``n`` tokens of width ``d``:

- self-attention: four projections (Q, K, V, output) ``4 · 2nd² = 8nd²``, plus the mixing, scores
  ``Q Kᵀ`` and output ``A V``, ``2 · 2n²d = 4n²d``;
- an Elman RNN, ``h_t = tanh(W x_t + U h_{t-1})``: two ``d x d`` products per step, ``4nd²``;
- an LSTM: four gates, each with two ``d x d`` products, ``16nd²``.

The size tasks count bytes and report them in binary units: 1 MiB = 2**20 bytes, 1 GiB = 2**30.
The learner's functions return plain numbers;
:func:`~selfattn_course.grading.spec.calls.returns_number` turns them into tensors for the
comparison. The given sizes of the answer tasks are printed in
the notebook's solution cells as well.
"""

from __future__ import annotations

import math

from selfattn_course import costs
from selfattn_course.attention import kv_cache_bytes
from selfattn_course.grading.spec import AnswerTask, Case, FunctionTask, Mistake, Property
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.spec.predicates import positive, whole_number

MIB = 2**20
GIB = 2**30


# --- tasks 1 and 2: attention_flops, rnn_flops ----------------------------------------------------


def attention_flops(n: int, d: int) -> int:
    """FLOPs of one self-attention layer: projections ``8nd²`` plus scores and mixing ``4n²d``
    (:func:`selfattn_course.costs.attention_layer_flops`)."""
    return costs.attention_layer_flops(n, d)


def _flops_hidden(_devices) -> list[Case]:
    """The hidden sizes of both FLOP counts (plain numbers: the same on every device)."""
    return [
        plain_numbers("n = d = 512, where the mixing equals the Elman cost", n=512, d=512),
        plain_numbers("n = 1, d = 4096: one token", n=1, d=4096),
        plain_numbers("n = 4096, d = 64: mixing dominates", n=4096, d=64),
        plain_numbers("n = 3, d = 1000: projections dominate", n=3, d=1000),
        plain_numbers("n = 32768, d = 4096: a long context, about 2·10¹³ FLOPs", n=32768, d=4096),
        plain_numbers("n = 1, d = 1", n=1, d=1),
    ]


ATTENTION_FLOPS = FunctionTask(
    id="ch03.attention_flops",
    title="FLOPs of a self-attention layer",
    points=2,
    statement=r"""
        Write `attention_flops(n, d)`: the FLOPs of one single-head self-attention layer over $n$
        tokens of width $d$. Count the four projections ($Q = XW_Q$, $K = XW_K$, $V = XW_V$ and
        the output projection, each $W$ of shape $d \times d$), the scores $QK^\top$ and the
        mixing $AV$.
        """,
    reference=attention_flops,
    forbidden=(
        "selfattn_course.costs.attention_layer_flops",
        "selfattn_course.costs.attention_mixing_flops",
    ),
    visible_cases=lambda: [
        plain_numbers("by hand: n = 2, d = 3 gives 8·2·9 + 4·4·3 = 192", n=2, d=3),
        plain_numbers("one token of width 1: n = 1, d = 1", n=1, d=1),
        plain_numbers("a short sequence, wide model: n = 128, d = 768", n=128, d=768),
    ],
    hidden_cases=_flops_hidden,
    mistakes=(
        Mistake(
            "you counted only the scores and the mixing (4n²d); add the four projections, 8nd²",
            source="""
                def attention_flops(n, d):
                    return 4 * n * n * d  # scores and mixing
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2 (one multiply, one add)",
            source="""
                def attention_flops(n, d):
                    # one FLOP per multiply-add
                    return 4 * n * d * d + 2 * n * n * d
                """,
        ),
        Mistake(
            "you left out the output projection: there are four d x d projections "
            "(Q, K, V, output)",
            lambda n, d: 6 * n * d**2 + 4 * n**2 * d,
        ),
        Mistake(
            "you counted only Q Kᵀ; multiplying the weights by V costs another 2n²d",
            lambda n, d: 8 * n * d**2 + 2 * n**2 * d,
        ),
    ),
    runner=returns_number,
)


def rnn_flops(n: int, d: int) -> int:
    """FLOPs of one Elman RNN layer over ``n`` steps: ``W x_t`` and ``U h_{t-1}``, ``4nd²``
    (:func:`selfattn_course.costs.rnn_flops`)."""
    return costs.rnn_flops(n, d)


RNN_FLOPS = FunctionTask(
    id="ch03.rnn_flops",
    title="FLOPs of a recurrent layer",
    points=1,
    statement=r"""
        An Elman RNN of width $d$ computes $h_t = \tanh(W x_t + U h_{t-1})$ at each of the $n$
        steps, with $W$ and $U$ of shape $d \times d$. Write `rnn_flops(n, d)`: its FLOPs over
        the whole sequence. Compare your two functions for $d = 768$ at $n = 128$ and
        $n = 4096$: which layer is cheaper where?
        """,
    reference=rnn_flops,
    forbidden=("selfattn_course.costs.rnn_flops",),
    visible_cases=lambda: [
        plain_numbers("by hand: n = 2, d = 3 gives 4·2·9 = 72", n=2, d=3),
        plain_numbers("n = 128, d = 768", n=128, d=768),
    ],
    hidden_cases=_flops_hidden,
    mistakes=(
        Mistake(
            "you count half (2nd²): each step has two d x d products (W x_t and U h_{t-1}), "
            "and a multiply-add counts as 2 FLOPs",
            source="""
                def rnn_flops(n, d):
                    return 2 * n * d * d
                """,
        ),
        Mistake(
            "you count an LSTM (four gates, 16nd²); an Elman layer has one W and one U",
            lambda n, d: 16 * n * d**2,
        ),
    ),
    runner=returns_number,
)


# --- task 3: crossover_length ---------------------------------------------------------------------

#: The model width of the task.
CROSSOVER_WIDTH = 768


def _crossover_length(d: int) -> int:
    """Largest ``n`` with ``8nd² + 4n²d <= 16nd²``, i.e. ``4n²d <= 8nd²``, i.e. ``n <= 2d``."""
    return 2 * d


CROSSOVER_LENGTH = AnswerTask(
    id="ch03.crossover_length",
    title="the crossover length",
    points=2,
    statement=r"""
        An LSTM layer of width $d$ costs $16nd^2$ FLOPs (four gates, each with a $W$ and a $U$).
        For $d = 768$, what is the **largest** sequence length $n$ at which a self-attention
        layer (projections included, as in task 1) costs **no more** than the LSTM layer? Store
        the whole number in `crossover_length`. Work it out from the formulas, or search with
        your `attention_flops`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=_crossover_length(CROSSOVER_WIDTH),
    properties=(
        Property("n is a whole number of tokens", whole_number),
        Property("n is positive", positive),
    ),
    mistakes=(
        Mistake(
            f"n < d = {CROSSOVER_WIDTH} compares the mixing with an Elman layer "
            "(Vaswani et al., Table 1); here the projections count and the LSTM costs 16nd²",
            source="""
                d = 768
                crossover_length = d  # attention is cheaper while n < d
                """,
        ),
        Mistake("4d leaves out the attention layer's projections, 8nd²", 4 * CROSSOVER_WIDTH),
        Mistake(
            "'no more than' includes equality: at n = 2d both cost the same",
            2 * CROSSOVER_WIDTH - 1,
        ),
    ),
)


# --- task 4: weights_mib --------------------------------------------------------------------------


def weights_mib(batch: int, heads: int, n: int, bytes_per_number: int) -> float:
    """Size of one layer's attention weights ``(B, H, n, n)`` in MiB (2**20 bytes)."""
    return batch * heads * n**2 * bytes_per_number / MIB


WEIGHTS_MIB = FunctionTask(
    id="ch03.weights_mib",
    title="memory of the weights",
    points=2,
    statement=r"""
        During training one attention layer keeps its weights $A$ of shape
        `(batch, heads, n, n)` for the backward pass. Write
        `weights_mib(batch, heads, n, bytes_per_number)`: their size in MiB (`bytes_per_number`
        is 4 for float32, 2 for float16).
        """,
    reference=weights_mib,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: B = 1, H = 12, n = 512, float32 gives 12 MiB",
            batch=1,
            heads=12,
            n=512,
            bytes_per_number=4,
        ),
        plain_numbers(
            "B = 2, H = 8, n = 1024, 16-bit numbers", batch=2, heads=8, n=1024, bytes_per_number=2
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers(
            "B = 8, H = 16, n = 4096, float32", batch=8, heads=16, n=4096, bytes_per_number=4
        ),
        plain_numbers(
            "B = 3, H = 5, n = 100, float64 (not a power of two)",
            batch=3,
            heads=5,
            n=100,
            bytes_per_number=8,
        ),
        plain_numbers(
            "length 1: B = 1, H = 1, n = 1, one byte", batch=1, heads=1, n=1, bytes_per_number=1
        ),
        plain_numbers(
            "B = 1, H = 32, n = 32768, bfloat16", batch=1, heads=32, n=32768, bytes_per_number=2
        ),
    ],
    mistakes=(
        Mistake(
            "you divided by 10**6 (MB); a MiB is 2**20 bytes",
            source="""
                def weights_mib(batch, heads, n, bytes_per_number):
                    return batch * heads * n**2 * bytes_per_number / 1e6
                """,
        ),
        Mistake(
            "every head has its own n x n weights: multiply by heads",
            lambda batch, heads, n, bytes_per_number: batch * n**2 * bytes_per_number / MIB,
        ),
        Mistake(
            "the weights of one head and example are n x n: n², not n",
            lambda batch, heads, n, bytes_per_number: batch * heads * n * bytes_per_number / MIB,
        ),
        Mistake(
            "you counted bits; bytes_per_number is already in bytes",
            lambda batch, heads, n, bytes_per_number: (
                batch * heads * n**2 * bytes_per_number * 8 / MIB
            ),
        ),
    ),
    runner=returns_number,
)


# --- task 5: kv_cache_gib -------------------------------------------------------------------------


def kv_cache_gib(layers: int, n: int, d_model: int, bytes_per_number: int) -> float:
    """Size of the keys and values of ``n`` tokens in every layer, one sequence, in GiB: all
    ``d_model`` features as one key/value head
    (:func:`selfattn_course.attention.kv_cache_bytes`)."""
    return kv_cache_bytes(n, layers, 1, d_model, bytes_per_number) / GIB


KV_CACHE_GIB = FunctionTask(
    id="ch03.kv_cache_gib",
    title="the KV cache",
    points=2,
    statement=r"""
        When a decoder generates text it keeps, for every layer, the key and the value vector
        (each of width `d_model`) of every token so far. Write
        `kv_cache_gib(layers, n, d_model, bytes_per_number)`: the size in GiB of the cache of
        one sequence of `n` tokens.
        """,
    reference=kv_cache_gib,
    forbidden=("selfattn_course.attention.kv_cache_bytes",),
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 32 layers, n = 4096, d_model = 4096, 16-bit gives "
            "2·32·4096·4096·2 bytes = 2 GiB",
            layers=32,
            n=4096,
            d_model=4096,
            bytes_per_number=2,
        ),
        plain_numbers(
            "12 layers, n = 512, d_model = 768, float32",
            layers=12,
            n=512,
            d_model=768,
            bytes_per_number=4,
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers(
            "80 layers, n = 32768, d_model = 8192, 16-bit",
            layers=80,
            n=32768,
            d_model=8192,
            bytes_per_number=2,
        ),
        plain_numbers(
            "one layer, one token, width 1, one byte", layers=1, n=1, d_model=1, bytes_per_number=1
        ),
        plain_numbers(
            "40 layers, n = 1000, d_model = 5120, float32",
            layers=40,
            n=1000,
            d_model=5120,
            bytes_per_number=4,
        ),
        plain_numbers(
            "6 layers, n = 3, d_model = 512, 8-bit", layers=6, n=3, d_model=512, bytes_per_number=1
        ),
    ],
    mistakes=(
        Mistake(
            "the cache holds keys and values: two vectors of d_model numbers per token and layer",
            source="""
                def kv_cache_gib(layers, n, d_model, bytes_per_number):
                    return layers * n * d_model * bytes_per_number / 2**30
                """,
        ),
        Mistake(
            "you divided by 10**9 (GB); a GiB is 2**30 bytes",
            lambda layers, n, d_model, bytes_per_number: (
                2 * layers * n * d_model * bytes_per_number / 1e9
            ),
        ),
    ),
    runner=returns_number,
)


# --- task 6: longest_context ----------------------------------------------------------------------

#: A 13B-parameter decoder in float16 and the memory left for its cache.
CACHE_LAYERS = 40
CACHE_D_MODEL = 5120
CACHE_BYTES_PER_NUMBER = 2
CACHE_BUDGET_GIB = 24


def _longest_context(layers: int, d_model: int, bytes_per_number: int, budget_gib: float) -> int:
    """Largest whole number of tokens whose KV cache fits ``budget_gib``."""
    bytes_per_token = 2 * layers * d_model * bytes_per_number
    return math.floor(budget_gib * GIB / bytes_per_token)


CONTEXT_THAT_FITS = _longest_context(
    CACHE_LAYERS, CACHE_D_MODEL, CACHE_BYTES_PER_NUMBER, CACHE_BUDGET_GIB
)
_CONTEXT_BYTES_PER_TOKEN = 2 * CACHE_LAYERS * CACHE_D_MODEL * CACHE_BYTES_PER_NUMBER

LONGEST_CONTEXT = AnswerTask(
    id="ch03.longest_context",
    title="the longest context that fits",
    points=1,
    statement=r"""
        A 13B-parameter decoder has 40 layers of width `d_model = 5120` and stores its cache in
        float16 (2 bytes per number). After its weights, 24 GiB of GPU memory are left for the
        KV cache of one sequence. What is the longest context, in tokens, whose cache fits?
        Store the whole number in `longest_context`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=CONTEXT_THAT_FITS,
    properties=(
        Property("the context is a whole number of tokens", whole_number),
        Property("the context is positive", positive),
    ),
    mistakes=(
        Mistake(
            "that context is one token too long: round down, the cache must fit",
            CONTEXT_THAT_FITS + 1,
        ),
        Mistake(
            "the cache holds keys and values: 2 vectors per token and layer",
            2 * CONTEXT_THAT_FITS,
        ),
        Mistake(
            "the budget is in GiB (2**30 bytes), not GB",
            math.floor(CACHE_BUDGET_GIB * 10**9 / _CONTEXT_BYTES_PER_TOKEN),
        ),
    ),
)


TASKS = [
    ATTENTION_FLOPS,
    RNN_FLOPS,
    CROSSOVER_LENGTH,
    WEIGHTS_MIB,
    KV_CACHE_GIB,
    LONGEST_CONTEXT,
]
