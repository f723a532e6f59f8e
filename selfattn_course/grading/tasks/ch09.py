"""Chapter 9, what self-attention pays against an RNN: the KV cache, per-token cost, gradients.

Counting conventions (the chapter's, as in chapter 3): a multiply-add counts as 2 FLOPs;
multiplying an ``(m, k)`` by a ``(k, p)`` matrix costs ``2·m·k·p``. One generated token costs

- a GRU layer of width ``d``: three gates, each a ``W x_t`` and a ``U h_{t-1}``, ``12d²``;
- a self-attention layer of width ``d`` whose cache holds ``t`` tokens (the new one included):
  four projections ``8d²`` and, against the ``t`` cached keys and values, ``4td``.

References: the two numbers and ``kv_cache_bytes_per_token`` are written out here;
``cached_attention`` is the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention` over the concatenated cache with
:func:`~selfattn_course.masks.causal_mask` aligned bottom-right. The learner may not call
the package's attention or softmax, nor torch's attention, while ``cached_attention`` runs.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.attention import kv_cache_bytes, scaled_dot_product_attention
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
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS
from selfattn_course.masks import causal_mask

# --- task 1: kv_cache_bytes_per_token -------------------------------------------------------------


def kv_cache_bytes_per_token(
    layers: int, heads: int, kv_heads: int, head_dim: int, bytes_per_number: int
) -> int:
    """Bytes one token adds to the cache: a key and a value per layer and key/value head.

    ``2 · layers · kv_heads · head_dim · bytes_per_number``; ``heads`` (the query heads) does
    not enter: with grouped-query attention several query heads share one key/value head.
    """
    return kv_cache_bytes(1, layers, kv_heads, head_dim, bytes_per_number)


def _model(name: str, layers, heads, kv_heads, head_dim, bytes_per_number) -> Case:
    return plain_numbers(
        name,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        bytes_per_number=bytes_per_number,
    )


KV_CACHE_BYTES_PER_TOKEN = FunctionTask(
    id="ch09.kv_cache_bytes_per_token",
    title="KV-cache bytes per token",
    points=2,
    statement=r"""
        A decoder has `layers` layers; each has `heads` query heads and `kv_heads` key/value
        heads of width `head_dim` (`kv_heads = heads` is ordinary multi-head attention,
        `kv_heads = 1` multi-query attention, anything between grouped-query attention). Write
        `kv_cache_bytes_per_token(layers, heads, kv_heads, head_dim, bytes_per_number)`: the
        bytes that one more token adds to the KV cache of one sequence.
        """,
    reference=kv_cache_bytes_per_token,
    forbidden=("selfattn_course.attention.kv_cache_bytes",),
    visible_cases=lambda: [
        _model(
            "by hand: 2 layers, 4 heads, 4 KV heads, width 8, float32: 512 bytes", 2, 4, 4, 8, 4
        ),
        _model("LLaMA-7B's shape: 32 layers, 32 heads of 128, 16-bit", 32, 32, 32, 128, 2),
    ],
    hidden_cases=lambda _devices: [
        _model("grouped-query: 80 layers, 64 heads, 8 KV heads of 128, 16-bit", 80, 64, 8, 128, 2),
        _model("multi-query: 24 layers, 16 heads, 1 KV head of 64, float32", 24, 16, 1, 64, 4),
        _model("one layer, one head of width 1, one byte", 1, 1, 1, 1, 1),
        _model("12 layers, 12 heads of 64, float64", 12, 12, 12, 64, 8),
    ],
    properties=(Property("the size is a whole number of bytes", whole_number),),
    mistakes=(
        Mistake(
            "the cache holds keys *and* values: two vectors per layer and key/value head",
            source="""
                def kv_cache_bytes_per_token(layers, heads, kv_heads, head_dim, bytes_per_number):
                    return layers * kv_heads * head_dim * bytes_per_number
                """,
        ),
        Mistake(
            "only the key/value heads are cached: query heads that share one (grouped-query "
            "attention) share its keys and values",
            source="""
                def kv_cache_bytes_per_token(layers, heads, kv_heads, head_dim, bytes_per_number):
                    return 2 * layers * heads * head_dim * bytes_per_number
                """,
        ),
        Mistake(
            "you counted bits; bytes_per_number is already in bytes",
            lambda layers, heads, kv_heads, head_dim, bytes_per_number: (
                16 * layers * kv_heads * head_dim * bytes_per_number
            ),
        ),
    ),
    runner=returns_number,
)


# --- task 2: equal_cost_position ------------------------------------------------------------------

#: The model width of the task.
EQUAL_COST_WIDTH = 2048


def _equal_cost_position(d: int) -> int:
    """``t`` with ``8d² + 4td = 12d²`` (attention step = GRU step): ``4td = 4d²``, ``t = d``."""
    return d


EQUAL_COST_POSITION = AnswerTask(
    id="ch09.equal_cost_position",
    title="where a generated token costs the same",
    points=2,
    statement=r"""
        Generating one token, a GRU layer of width $d$ costs $12d^2$ FLOPs whatever the
        position. A self-attention layer of the same width, whose KV cache holds $t$ tokens
        (the new one included), costs $8d^2$ for its four projections plus the scores and the
        mixing against the $t$ cached keys and values. For $d = 2048$, at which position $t$ do
        the two steps cost the same? Store the whole number in `equal_cost_position`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=_equal_cost_position(EQUAL_COST_WIDTH),
    properties=(
        Property("t is a whole number of tokens", whole_number),
        Property("t is positive", positive),
    ),
    mistakes=(
        Mistake(
            "the attention step also pays its four projections, 8d², before the 4td of the "
            "scores and the mixing",
            source="""
                d = 2048
                # 4td = 12d²: the scores and the mixing against the GRU's step
                equal_cost_position = 3 * d
                """,
        ),
        Mistake(
            "the scores q Kᵀ cost 2td, and the mixing a V another 2td: 4td in all",
            2 * EQUAL_COST_WIDTH,
        ),
        Mistake(
            "one new token has one query: its scores and mixing are 4td, not 4t²d",
            round(math.sqrt(EQUAL_COST_WIDTH)),
        ),
    ),
)


# --- task 3: cached_attention ---------------------------------------------------------------------


def cached_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
) -> torch.Tensor:
    """Attention of ``t`` new tokens over a KV cache of ``T0`` earlier ones and themselves.

    Shapes: ``q, k_new (..., t, d)``, ``v_new (..., t, dv)``, ``k_cache (..., T0, d)``,
    ``v_cache (..., T0, dv)`` -> ``(..., t, dv)``. New token ``i`` sits at position ``T0 + i``
    and sees keys ``j <= T0 + i``: the causal mask aligned bottom-right.
    """
    keys = torch.cat([k_cache, k_new], dim=-2)  # (..., T0 + t, d)
    values = torch.cat([v_cache, v_new], dim=-2)  # (..., T0 + t, dv)
    allowed = causal_mask(q.shape[-2], keys.shape[-2], align="bottom-right", device=q.device)
    return scaled_dot_product_attention(q, keys, values, allowed)  # allowed: (t, T0 + t)


def _step(seed, *, batch, cached, new, d, dv=None, dtype=torch.float32, device="cpu"):
    """Inputs of one cached step: ``cached`` tokens in the cache, ``new`` tokens arriving."""
    dv = d if dv is None else dv

    def draw(length, width, offset):
        return C.randn((*batch, length, width), seed=seed + offset, dtype=dtype, device=device)

    return {
        "q": draw(new, d, 0),
        "k_cache": draw(cached, d, 1),
        "v_cache": draw(cached, dv, 2),
        "k_new": draw(new, d, 3),
        "v_new": draw(new, dv, 4),
    }


def _cached_hidden(dtype, device) -> list[Case]:
    def step(seed, **shape):
        return _step(seed, dtype=dtype, device=device, **shape)

    return [
        Case("one new token, 9 cached, 2 heads", step(40, batch=(2, 2), cached=9, new=1, d=8)),
        Case("3 new tokens, 5 cached, dv = 4", step(41, batch=(1, 3), cached=5, new=3, d=8, dv=4)),
        Case("empty cache: 4 new tokens (prefill)", step(42, batch=(2, 1), cached=0, new=4, d=16)),
        Case("one token, empty cache", step(43, batch=(1, 1), cached=0, new=1, d=4)),
        Case("no leading dims, 6 new after 2 cached", step(44, batch=(), cached=2, new=6, d=8)),
        Case("d_k = 64, 30 cached, 2 new", step(45, batch=(1, 2), cached=30, new=2, d=64)),
    ]


CACHED_ATTENTION = FunctionTask(
    id="ch09.cached_attention",
    title="attention over a KV cache",
    points=4,
    statement=r"""
        A decoder has cached the keys `k_cache` `(..., T0, d)` and values `v_cache`
        `(..., T0, dv)` of its first $T_0$ tokens. Now $t \ge 1$ new tokens arrive, at positions
        $T_0, \dots, T_0 + t - 1$, with queries `q` `(..., t, d)`, keys `k_new` and values
        `v_new`. Write `cached_attention(q, k_cache, v_cache, k_new, v_new)`: the causal
        attention output of the new tokens, `(..., t, dv)`, with scores scaled by
        $1/\sqrt{d}$. New token $i$ may attend to every cached token and to the new tokens up
        to itself. ($T_0$ may be 0.) Build the mask yourself; `torch.softmax` is fine, but
        torch's attention and the package's `softmax` and `scaled_dot_product_attention` are
        not allowed here.
        """,
    reference=cached_attention,
    visible_cases=lambda: [
        Case(
            "by hand: one cached key [1, 0] (value 0), a new key [0, 0] (value 1), query [1, 0]: "
            "weights (e^{1/√2}, 1) / sum",
            {
                "q": torch.tensor([[1.0, 0.0]]),
                "k_cache": torch.tensor([[1.0, 0.0]]),
                "v_cache": torch.tensor([[0.0]]),
                "k_new": torch.tensor([[0.0, 0.0]]),
                "v_new": torch.tensor([[1.0]]),
            },
        ),
        Case("one new token after 6 cached, 2 heads", _step(1, batch=(1, 2), cached=6, new=1, d=8)),
        Case("2 new tokens after 4 cached", _step(2, batch=(1, 2), cached=4, new=2, d=8)),
    ],
    hidden_cases=over_devices(_cached_hidden),
    mistakes=(
        Mistake(
            "the new tokens must also see the cache: concatenate the cached keys and values "
            "before the new ones",
            source="""
                def cached_attention(q, k_cache, v_cache, k_new, v_new):
                    t = q.shape[-2]
                    scores = q @ k_new.transpose(-2, -1) / q.shape[-1] ** 0.5
                    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
                    scores = scores.masked_fill(future, float("-inf"))
                    return torch.softmax(scores, dim=-1) @ v_new
                """,
        ),
        Mistake(
            "the causal mask is aligned top-left: new token i is at position T0 + i, so it "
            "sees keys j <= T0 + i (align the mask bottom-right)",
            source="""
                def cached_attention(q, k_cache, v_cache, k_new, v_new):
                    keys = torch.cat([k_cache, k_new], dim=-2)
                    values = torch.cat([v_cache, v_new], dim=-2)
                    t, total = q.shape[-2], keys.shape[-2]
                    scores = q @ keys.transpose(-2, -1) / q.shape[-1] ** 0.5
                    future = torch.ones(t, total, dtype=torch.bool, device=q.device).triu(1)
                    scores = scores.masked_fill(future, float("-inf"))
                    return torch.softmax(scores, dim=-1) @ values
                """,
        ),
        Mistake(
            "with several new tokens, an earlier one must not see a later one: mask the "
            "future among the new tokens",
            source="""
                def cached_attention(q, k_cache, v_cache, k_new, v_new):
                    keys = torch.cat([k_cache, k_new], dim=-2)
                    values = torch.cat([v_cache, v_new], dim=-2)
                    scores = q @ keys.transpose(-2, -1) / q.shape[-1] ** 0.5
                    return torch.softmax(scores, dim=-1) @ values
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d)",
            lambda q, k_cache, v_cache, k_new, v_new: cached_attention(
                q * math.sqrt(q.shape[-1]), k_cache, v_cache, k_new, v_new
            ),
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


# --- task 4: steps_to_vanish ----------------------------------------------------------------------

#: How much each step back multiplies the gradient's norm, and the fraction asked for.
DECAY_PER_STEP = 0.8
VANISHED_FRACTION = 1e-6


def _steps_to_vanish(rho: float, fraction: float) -> int:
    """Smallest whole ``t`` with ``rho**t < fraction``: ``t > ln(fraction) / ln(rho)``."""
    return math.floor(math.log(fraction) / math.log(rho)) + 1


STEPS_TO_VANISH = AnswerTask(
    id="ch09.steps_to_vanish",
    title="how far back a gradient reaches",
    points=2,
    statement=r"""
        In an RNN the norm of $\partial y_n / \partial x_{n-t}$ shrinks by a factor of about
        $\rho = 0.8$ for each step $t$ back (the chapter measures such factors). From
        which distance $t$ on is it smaller than $10^{-6}$ times its value at $t = 0$? Store
        the smallest such whole number in `steps_to_vanish`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=_steps_to_vanish(DECAY_PER_STEP, VANISHED_FRACTION),
    properties=(
        Property("t is a whole number of steps", whole_number),
        Property("t is positive", positive),
    ),
    mistakes=(
        Mistake(
            "rounded down: at that distance ρ^t is still above 10⁻⁶; take the next whole number",
            source="""
                rho, fraction = 0.8, 1e-6
                steps_to_vanish = math.floor(math.log(fraction) / math.log(rho))
                """,
        ),
        Mistake(
            "mixed logarithms: log10(10⁻⁶) = −6 divided by the natural ln(0.8); use one base "
            "for both",
            math.floor(math.log10(VANISHED_FRACTION) / math.log(DECAY_PER_STEP)) + 1,
        ),
        Mistake(
            "the decay is geometric (ρ^t), not linear (1 − 0.2·t)",
            5,
        ),
    ),
)


TASKS = [KV_CACHE_BYTES_PER_TOKEN, EQUAL_COST_POSITION, CACHED_ATTENTION, STEPS_TO_VANISH]
