"""Chapter 26, long sequences: what exact attention costs and how long-context methods split it.

The references are written out here. ``ring_attention`` is checked against the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention`, which the learner may not call
(nor the package's softmax, ``chunked_attention`` or torch's fused attention): the task is to
merge partial results with their log-sum-exp, as ring attention does across devices.
``kept_blocks`` counts the tiles of a block-sparse pattern (a band plus global blocks, as in
Longformer and BigBird), and ``predicted_seconds`` reads a thread-scaling measurement.
"""

from __future__ import annotations

import math

import torch

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

# --- task 1: ring_attention -----------------------------------------------------------------------


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shards: int) -> torch.Tensor:
    """Exact attention ``softmax(q kᵀ / sqrt(d)) v`` from ``shards`` slices of the keys.

    ``q`` ``(..., Lq, d)``, ``k`` ``(..., Lk, d)``, ``v`` ``(..., Lk, dv)``; ``Lk`` divisible by
    ``shards``. Each shard ``s`` gives a partial output ``o_s`` (its own softmax) and the
    log-sum-exp ``l_s`` of its scores; they merge as ``Σ_s exp(l_s - l) o_s`` with
    ``l = logsumexp_s l_s``. Returns ``(..., Lq, dv)``.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    outputs, lses = [], []
    for k_shard, v_shard in zip(k.chunk(shards, dim=-2), v.chunk(shards, dim=-2), strict=True):
        scores = q @ k_shard.transpose(-2, -1) * scale  # (..., Lq, Lk / shards)
        lse = torch.logsumexp(scores, dim=-1, keepdim=True)  # (..., Lq, 1)
        outputs.append(torch.exp(scores - lse) @ v_shard)
        lses.append(lse)
    lses = torch.stack(lses)  # (shards, ..., Lq, 1)
    weights = torch.exp(lses - torch.logsumexp(lses, dim=0))  # each shard's share of the mass
    return (weights * torch.stack(outputs)).sum(dim=0)


def _ring_hidden(dtype, device) -> list[Case]:
    def case(name, shards, seed, **sizes):
        inputs = C.qkv(seed=seed, dtype=dtype, device=device, **sizes)
        return Case(name, {**inputs, "shards": shards})

    large = C.qkv(batch=(1,), lq=3, lk=8, d=4, seed=40, dtype=dtype, device=device)
    large["q"] = large["q"] * 30.0  # scores of hundreds: exp overflows without the max
    return [
        case("batch (2, 3), 6 queries, 12 keys, 4 shards", 4, 30, batch=(2, 3), lq=6, lk=12),
        case("one shard: plain attention", 1, 31, lq=5, lk=7),
        case("one key per shard", 9, 32, batch=(1,), lq=2, lk=9, d=3),
        case("one query, dv = 5 != d", 2, 33, batch=(2,), lq=1, lk=6, d=4, dv=5),
        Case("large scores (q times 30), 2 shards", {**large, "shards": 2}),
    ]


RING_ATTENTION = FunctionTask(
    id="ch26.ring_attention",
    title="attention from key shards (ring attention's merge)",
    points=4,
    statement=r"""
        In ring attention each device holds one slice of the keys and values at a time. Write
        `ring_attention(q, k, v, shards)` that computes exact attention
        $\operatorname{softmax}(QK^\top/\sqrt{d})\,V$ from `shards` equal slices of the keys
        (`k.chunk(shards, dim=-2)`, and the same for `v`), never forming all the scores at once.
        For each slice $s$ compute its scores $S_s$, their log-sum-exp
        $\ell_s = \log \sum_j e^{S_{s,j}}$ per query, and its own normalised output
        $O_s = \operatorname{softmax}(S_s)\,V_s$; then merge
        $O = \sum_s e^{\ell_s - \ell}\, O_s$ with $\ell = \log \sum_s e^{\ell_s}$.
        Shapes: `q` `(..., Lq, d)`, `k` `(..., Lk, d)`, `v` `(..., Lk, dv)`, `Lk` divisible by
        `shards`; return `(..., Lq, dv)`. Use `torch.logsumexp`, which is safe for large
        scores; you may not call the package's attention functions or torch's.
        """,
    reference=ring_attention,
    visible_cases=lambda: [
        Case(
            "2 queries, 4 keys, 2 shards",
            {**C.qkv(batch=(1,), lq=2, lk=4, d=3, seed=1), "shards": 2},
        ),
        Case("batch 2, 4 queries, 6 keys, 3 shards", {**C.qkv(lq=4, lk=6, seed=2), "shards": 3}),
    ],
    hidden_cases=over_devices(_ring_hidden),
    mistakes=(
        Mistake(
            "you averaged the shards' outputs with equal weights; each shard counts in "
            "proportion to its softmax mass, exp(ℓ_s - ℓ)",
            source="""
                def ring_attention(q, k, v, shards):
                    scale = q.shape[-1] ** -0.5
                    outputs = [
                        torch.softmax(q @ ks.transpose(-2, -1) * scale, dim=-1) @ vs
                        for ks, vs in zip(k.chunk(shards, dim=-2), v.chunk(shards, dim=-2))
                    ]
                    return torch.stack(outputs).mean(dim=0)
                """,
        ),
        Mistake(
            "you summed the shards' normalised outputs without weighting them by "
            "exp(ℓ_s - ℓ): the result is `shards` times too large on average",
            source="""
                def ring_attention(q, k, v, shards):
                    scale = q.shape[-1] ** -0.5
                    outputs = [
                        torch.softmax(q @ ks.transpose(-2, -1) * scale, dim=-1) @ vs
                        for ks, vs in zip(k.chunk(shards, dim=-2), v.chunk(shards, dim=-2))
                    ]
                    return torch.stack(outputs).sum(dim=0)
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d)",
            source="""
                def ring_attention(q, k, v, shards):
                    outputs, lses = [], []
                    for ks, vs in zip(k.chunk(shards, dim=-2), v.chunk(shards, dim=-2)):
                        scores = q @ ks.transpose(-2, -1)
                        lse = torch.logsumexp(scores, dim=-1, keepdim=True)
                        outputs.append(torch.exp(scores - lse) @ vs)
                        lses.append(lse)
                    lses = torch.stack(lses)
                    shares = torch.exp(lses - torch.logsumexp(lses, dim=0))
                    return (shares * torch.stack(outputs)).sum(dim=0)
                """,
        ),
    ),
    forbidden=(*ATTENTION_BUILTINS, "selfattn_course.attention.chunked_attention"),
)


# --- task 2: kept_blocks --------------------------------------------------------------------------


def kept_blocks(num_blocks: int, window: int, global_blocks: int) -> int:
    """Tiles a block-sparse pattern computes, out of ``num_blocks²``.

    Query block ``i`` keeps key block ``j`` when ``|i - j| <= window`` (a band), or when ``i`` or
    ``j`` is one of the first ``global_blocks`` blocks (they attend to and are attended by all).
    """
    index = torch.arange(num_blocks)
    band = (index[:, None] - index[None, :]).abs() <= window
    is_global = index < global_blocks
    kept = band | is_global[:, None] | is_global[None, :]
    return int(kept.sum())


KEPT_BLOCKS = FunctionTask(
    id="ch26.kept_blocks",
    title="tiles kept by a block-sparse pattern",
    points=3,
    statement=r"""
        Cut a sequence into `num_blocks` blocks of $b$ tokens, so that the $n \times n$ scores are
        `num_blocks`$^2$ tiles of $b \times b$. A block-sparse pattern in the style of Longformer
        and BigBird keeps the tile (query block $i$, key block $j$) when $|i - j| \le$ `window`
        (a band along the diagonal), or when $i$ or $j$ is one of the first `global_blocks`
        blocks (global blocks attend to everything and everything attends to them). Write
        `kept_blocks(num_blocks, window, global_blocks)`: the number of tiles kept, a whole
        number. Count each tile once, and remember that the band is cut off at the edges.
        """,
    reference=kept_blocks,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 4 blocks, window 1, no global: 4 + 3 + 3 = 10",
            num_blocks=4,
            window=1,
            global_blocks=0,
        ),
        plain_numbers(
            "16 blocks, window 1, 1 global block", num_blocks=16, window=1, global_blocks=1
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("1 block", num_blocks=1, window=0, global_blocks=0),
        plain_numbers("window wider than the sequence", num_blocks=5, window=9, global_blocks=0),
        plain_numbers("64 blocks, window 3, 2 global", num_blocks=64, window=3, global_blocks=2),
        plain_numbers(
            "band only, window 0: the diagonal", num_blocks=10, window=0, global_blocks=0
        ),
        plain_numbers("global only", num_blocks=12, window=0, global_blocks=3),
        plain_numbers("every block global", num_blocks=6, window=1, global_blocks=6),
    ],
    properties=(
        Property("the count is a whole number", whole_number),
        Property("at least one tile is kept", positive),
    ),
    mistakes=(
        Mistake(
            "the band is cut off at the first and last blocks: not every row keeps "
            "2·window + 1 tiles",
            source="""
                def kept_blocks(num_blocks, window, global_blocks):
                    band = num_blocks * (2 * window + 1)  # 2·window + 1 tiles in every row
                    return band + 2 * global_blocks * num_blocks - global_blocks**2
                """,
        ),
        Mistake(
            "you counted the global rows and columns on top of the band: tiles in both are "
            "counted twice",
            source="""
                def kept_blocks(num_blocks, window, global_blocks):
                    band = sum(
                        min(i + window, num_blocks - 1) - max(i - window, 0) + 1
                        for i in range(num_blocks)
                    )
                    return band + 2 * global_blocks * num_blocks - global_blocks**2
                """,
        ),
    ),
    runner=returns_number,
)


# --- task 3: predicted_seconds --------------------------------------------------------------------

#: A measurement of naive attention (one head, d = 64) in seconds: {threads: {n: seconds}}.
THREAD_TIMES = {
    1: {2048: 0.080, 4096: 0.330},
    2: {2048: 0.044, 4096: 0.178},
}
PREDICTED_LENGTH = 8192


def _predicted_seconds() -> float:
    """The 2-thread time at 8192 from the 2-thread growth per doubling: t(4096)²/t(2048)."""
    times = THREAD_TIMES[2]
    return times[4096] * times[4096] / times[2048]


PREDICTED_SECONDS = AnswerTask(
    id="ch26.predicted_seconds",
    title="reading a thread-scaling measurement",
    points=3,
    statement=r"""
        Naive attention (one head, $d = 64$) was timed on 1 and on 2 CPU threads:
        on 1 thread 0.080 s at $n = 2048$ and 0.330 s at $n = 4096$; on 2 threads 0.044 s at
        $n = 2048$ and 0.178 s at $n = 4096$. Predict the time on **2 threads** at
        $n = 8192$: assume the time keeps growing by the same factor per doubling of $n$ as
        the 2-thread measurement shows. Store the number of seconds in `predicted_seconds`.
        (Compare the growth factors on 1 and 2 threads: did the second thread change the
        shape of the curve?)
        """,
    answer_type=Number(rtol=0.01, atol=0.0),
    expected=_predicted_seconds(),
    properties=(Property("a time is positive", positive),),
    mistakes=(
        Mistake(
            "you assumed the time doubles with n; the 2-thread time grows by about 4 per "
            "doubling, like the 1-thread time: threads divide the n² work, they do not remove it",
            source="""
                predicted_seconds = 2 * 0.178  # twice the tokens, twice the time
                """,
        ),
        Mistake(
            "you extrapolated the 1-thread times; the question asks for 2 threads",
            source="""
                predicted_seconds = 0.330 * (0.330 / 0.080)
                """,
        ),
    ),
)


TASKS = [RING_ATTENTION, KEPT_BLOCKS, PREDICTED_SECONDS]
