"""Chapter 25, other attention mechanisms: additive scores, grouped-query attention, KV-cache size.

References: ``additive_scores`` is written out here (Bahdanau et al.'s score,
``v_aᵀ tanh(W_q q_i + W_k k_j)``: one line); ``grouped_query_attention`` is the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention` with ``enable_gqa=True``; the
KV-cache answer is :func:`~selfattn_course.attention.kv_cache_bytes`. While the learner's
functions run they may not call the package's or torch's attention, nor the package's
``repeat_kv_heads``.
"""

from __future__ import annotations

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
from selfattn_course.grading.spec.predicates import positive
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS

GIB = 2**30

# --- task 1: additive_scores ----------------------------------------------------------------------


def additive_scores(
    q: torch.Tensor, k: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, v_a: torch.Tensor
) -> torch.Tensor:
    """Additive (Bahdanau) scores ``s[..., i, j] = v_aᵀ tanh(q_i W_q + k_j W_k)``.

    ``q`` ``(..., Lq, d_q)``, ``k`` ``(..., Lk, d_k)``, ``w_q`` ``(d_q, a)``, ``w_k`` ``(d_k, a)``,
    ``v_a`` ``(a,)``; returns ``(..., Lq, Lk)``.
    """
    hidden = torch.tanh((q @ w_q).unsqueeze(-2) + (k @ w_k).unsqueeze(-3))  # (..., Lq, Lk, a)
    return hidden @ v_a


def _additive_inputs(*, batch, lq, lk, d_q, d_k, a, seed, dtype=torch.float32, device="cpu"):
    def draw(shape, offset):
        return C.randn(shape, seed=seed + offset, dtype=dtype, device=device)

    return {
        "q": draw((*batch, lq, d_q), 0),
        "k": draw((*batch, lk, d_k), 1),
        "w_q": draw((d_q, a), 2) / d_q**0.5,
        "w_k": draw((d_k, a), 3) / d_k**0.5,
        "v_a": draw((a,), 4),
    }


def _additive_hidden(dtype, device) -> list[Case]:
    def inputs(seed, **shape):
        return _additive_inputs(seed=seed, dtype=dtype, device=device, **shape)

    return [
        Case(
            "batch (2, 3), Lq = 5, Lk = 7, d_q = 6, d_k = 4, a = 8",
            inputs(10, batch=(2, 3), lq=5, lk=7, d_q=6, d_k=4, a=8),
        ),
        Case(
            "cross attention: Lq = 2 decoder states, Lk = 9 encoder states",
            inputs(20, batch=(1,), lq=2, lk=9, d_q=5, d_k=3, a=4),
        ),
        Case(
            "no leading dims, one query, a = 1", inputs(30, batch=(), lq=1, lk=3, d_q=2, d_k=2, a=1)
        ),
    ]


def _additive_shape(result, inputs) -> bool:
    q, k = inputs["q"], inputs["k"]
    return tuple(result.shape) == (*q.shape[:-1], k.shape[-2])


ADDITIVE_SCORES = FunctionTask(
    id="ch25.additive_scores",
    title="additive attention scores",
    points=4,
    statement=r"""
        Write `additive_scores(q, k, w_q, w_k, v_a)`: the scores of additive attention
        (Bahdanau et al., 2015), $s_{ij} = v_a^\top \tanh(q_i W_q + k_j W_k)$, for queries `q`
        `(..., Lq, d_q)`, keys `k` `(..., Lk, d_k)`, `w_q` `(d_q, a)`, `w_k` `(d_k, a)` and
        `v_a` `(a,)`. The result has shape `(..., Lq, Lk)`. The queries and keys may have
        different widths: no dot product $q_i \cdot k_j$ is taken. Use no Python loop: broadcast
        the projected queries `(..., Lq, 1, a)` against the projected keys `(..., 1, Lk, a)`.
        """,
    reference=additive_scores,
    visible_cases=lambda: [
        Case(
            "by hand: W_q = W_k = [[1]], v_a = [1], q = [[0]], k = [[0], [100]] gives "
            "[[tanh 0, tanh 100]] = [[0, 1]]",
            {
                "q": torch.tensor([[0.0]]),
                "k": torch.tensor([[0.0], [100.0]]),
                "w_q": torch.tensor([[1.0]]),
                "w_k": torch.tensor([[1.0]]),
                "v_a": torch.tensor([1.0]),
            },
        ),
        Case(
            "random, no leading dims, Lq = 3, Lk = 4, d_q = d_k = 5, a = 6",
            _additive_inputs(batch=(), lq=3, lk=4, d_q=5, d_k=5, a=6, seed=1),
        ),
        Case(
            "random, batch 2, d_q = 3 and d_k = 4 differ",
            _additive_inputs(batch=(2,), lq=3, lk=2, d_q=3, d_k=4, a=5, seed=2),
        ),
    ],
    hidden_cases=over_devices(_additive_hidden),
    properties=(Property("the scores have shape (..., Lq, Lk)", _additive_shape),),
    mistakes=(
        Mistake(
            "the tanh is missing: without it the score is a sum of a query term and a key term, "
            "and the softmax over the keys ignores the query",
            source="""
                def additive_scores(q, k, w_q, w_k, v_a):
                    return ((q @ w_q).unsqueeze(-2) + (k @ w_k).unsqueeze(-3)) @ v_a
                """,
        ),
        Mistake(
            "the projected queries and keys are multiplied, not added: that is a (general, Luong) "
            "multiplicative score, not Bahdanau's additive one",
            source="""
                def additive_scores(q, k, w_q, w_k, v_a):
                    hidden = torch.tanh((q @ w_q).unsqueeze(-2) * (k @ w_k).unsqueeze(-3))
                    return hidden @ v_a
                """,
        ),
        Mistake(
            "the tanh is applied after v_a: the nonlinearity goes inside, on the sum "
            "q_i W_q + k_j W_k, before the projection onto v_a",
            lambda q, k, w_q, w_k, v_a: torch.tanh(
                ((q @ w_q).unsqueeze(-2) + (k @ w_k).unsqueeze(-3)) @ v_a
            ),
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


# --- task 2: grouped_query_attention --------------------------------------------------------------


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention: ``q`` ``(..., h, Lq, d)``, ``k`` ``(..., h_kv, Lk, d)``, ``v``
    ``(..., h_kv, Lk, dv)`` -> ``(..., h, Lq, dv)``; query head ``t`` uses key/value head
    ``t // (h / h_kv)``, scale ``1 / sqrt(d)``."""
    return scaled_dot_product_attention(q, k, v, enable_gqa=True)


def _gqa_inputs(*, batch, heads, kv_heads, lq, lk, d, seed, dtype=torch.float32, device="cpu"):
    return {
        "q": C.randn((*batch, heads, lq, d), seed=seed, dtype=dtype, device=device),
        "k": C.randn((*batch, kv_heads, lk, d), seed=seed + 1, dtype=dtype, device=device),
        "v": C.randn((*batch, kv_heads, lk, d), seed=seed + 2, dtype=dtype, device=device),
    }


def _gqa_hidden(dtype, device) -> list[Case]:
    def inputs(seed, **shape):
        return _gqa_inputs(seed=seed, dtype=dtype, device=device, **shape)

    return [
        Case(
            "8 query heads, 2 key/value heads (groups of 4), batch 2",
            inputs(10, batch=(2,), heads=8, kv_heads=2, lq=5, lk=6, d=8),
        ),
        Case(
            "6 query heads, 3 key/value heads, Lq = 1 (one decoding step)",
            inputs(20, batch=(1,), heads=6, kv_heads=3, lq=1, lk=7, d=4),
        ),
        Case(
            "multi-query: 4 query heads, 1 key/value head",
            inputs(30, batch=(2,), heads=4, kv_heads=1, lq=3, lk=3, d=8),
        ),
        Case(
            "multi-head: h_kv = h = 3, no batch dim",
            inputs(40, batch=(), heads=3, kv_heads=3, lq=4, lk=2, d=16),
        ),
    ]


GROUPED_QUERY_ATTENTION = FunctionTask(
    id="ch25.grouped_query_attention",
    title="grouped-query attention",
    points=4,
    statement=r"""
        Write `grouped_query_attention(q, k, v)` (Ainslie et al., 2023): `q` has $h$ heads,
        `(..., h, Lq, d)`, while `k` and `v` have only $h_{kv}$ heads, `(..., h_kv, Lk, d)` and
        `(..., h_kv, Lk, dv)`, with $h_{kv}$ dividing $h$. Query heads come in $h_{kv}$ groups of
        $g = h / h_{kv}$ consecutive heads; query head $t$ attends with key/value head
        $\lfloor t / g \rfloor$, by scaled dot-product attention (scale $1/\sqrt{d}$, no mask).
        Return `(..., h, Lq, dv)`. Repeat the key/value heads yourself (you may use
        `torch.softmax`; the package's and torch's attention and `repeat_kv_heads` are not
        allowed).
        """,
    reference=grouped_query_attention,
    visible_cases=lambda: [
        Case(
            "4 query heads, 2 key/value heads, batch 1",
            _gqa_inputs(batch=(1,), heads=4, kv_heads=2, lq=3, lk=5, d=8, seed=1),
        ),
        Case(
            "h_kv = h = 2: plain multi-head attention",
            _gqa_inputs(batch=(2,), heads=2, kv_heads=2, lq=2, lk=3, d=4, seed=2),
        ),
    ],
    hidden_cases=over_devices(_gqa_hidden),
    mistakes=(
        Mistake(
            "the key/value heads are tiled (0, 1, 0, 1, ...) instead of each repeated g times in a "
            "row (0, 0, 1, 1, ...): query head t belongs to group t // g, use repeat_interleave",
            source="""
                def grouped_query_attention(q, k, v):
                    groups = q.shape[-3] // k.shape[-3]
                    reps = [1] * (k.dim() - 3) + [groups, 1, 1]
                    k, v = k.repeat(*reps), v.repeat(*reps)
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    return torch.softmax(scores, dim=-1) @ v
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d), d the width of one head",
            source="""
                def grouped_query_attention(q, k, v):
                    groups = q.shape[-3] // k.shape[-3]
                    k = k.repeat_interleave(groups, dim=-3)
                    v = v.repeat_interleave(groups, dim=-3)
                    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
                """,
        ),
    ),
    forbidden=(*ATTENTION_BUILTINS, "selfattn_course.attention.repeat_kv_heads"),
)


# --- task 3: kv_cache_saving ----------------------------------------------------------------------

#: The model of the answer task: 32 layers of 32 query heads of width 128, 16-bit numbers.
KV_MODEL = {"layers": 32, "query_heads": 32, "kv_heads": 8, "head_dim": 128, "bytes_per_number": 2}
KV_TOKENS = 8192


def _kv_cache_gib(kv_heads: int) -> float:
    return (
        kv_cache_bytes(
            KV_TOKENS,
            KV_MODEL["layers"],
            kv_heads,
            KV_MODEL["head_dim"],
            KV_MODEL["bytes_per_number"],
        )
        / GIB
    )


def _kv_cache_saving() -> float:
    """GiB saved per sequence by 8 key/value heads instead of 32: 4 GiB - 1 GiB."""
    return _kv_cache_gib(KV_MODEL["query_heads"]) - _kv_cache_gib(KV_MODEL["kv_heads"])


KV_CACHE_SAVING = AnswerTask(
    id="ch25.kv_cache_saving",
    title="what grouped-query attention saves",
    points=2,
    statement=r"""
        A decoder has 32 layers, each with 32 query heads of width 128, and stores its KV cache
        in 16-bit numbers. Its multi-head version caches a key and a value per token, layer and
        head; its grouped-query version has 8 key/value heads per layer. For one sequence of
        8192 tokens, how many **GiB** ($2^{30}$ bytes) of KV cache does the grouped-query version
        save? Store the number in `kv_cache_saving`.
        """,
    answer_type=Number(rtol=1e-9, atol=0.0),
    expected=_kv_cache_saving(),
    properties=(Property("the saving is positive", positive),),
    mistakes=(
        Mistake(
            "you counted the keys only: the cache holds a key and a value per token, layer and "
            "key/value head",
            source="""
                layers, query_heads, kv_heads, head_dim, bytes_per_number, tokens = (
                    32, 32, 8, 128, 2, 8192
                )
                per_head = layers * head_dim * tokens * bytes_per_number  # the keys
                kv_cache_saving = (query_heads - kv_heads) * per_head / 2**30
                """,
        ),
        Mistake(
            "that is the grouped-query cache itself, not what it saves against 32 key/value heads",
            _kv_cache_gib(KV_MODEL["kv_heads"]),
        ),
        Mistake(
            "you divided by 10**9 (GB); a GiB is 2**30 bytes",
            source="""
                layers, query_heads, kv_heads, head_dim, bytes_per_number, tokens = (
                    32, 32, 8, 128, 2, 8192
                )
                per_head = 2 * layers * head_dim * tokens * bytes_per_number
                kv_cache_saving = (query_heads - kv_heads) * per_head / 1e9
                """,
        ),
    ),
)


TASKS = [ADDITIVE_SCORES, GROUPED_QUERY_ATTENTION, KV_CACHE_SAVING]
