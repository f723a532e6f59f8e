"""Chapter 30, debugging attention: fix planted bugs, measure head entropy, predict the scale.

The references are the package's: :func:`selfattn_course.attention.scaled_dot_product_attention`
for the repaired layer and :func:`selfattn_course.debug.attention_entropy` for the entropy. While
the learner's code runs it may not call the attention built-ins (the course's softmax and
attention, torch's SDPA and ``nn.MultiheadAttention``) nor the package's entropy. Each task below
is one block: its statement, reference, cases, properties, mistakes and forbidden calls.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.attention import scaled_dot_product_attention, softmax
from selfattn_course.debug import attention_entropy
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
from selfattn_course.grading.spec.predicates import finite, positive
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS
from selfattn_course.masks import causal_mask

# --- task 1: fixed_attention ----------------------------------------------------------------------


def fixed_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The repaired layer: ``softmax(q kᵀ / √d, mask) v``, an all-masked query gives 0.

    Shapes: ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) -> (..., Lq, dv)``; ``mask`` boolean,
    broadcastable to ``(..., Lq, Lk)``, True = may attend.
    """
    return scaled_dot_product_attention(q, k, v, mask)


def _fixed_hidden(dtype, device) -> list[Case]:
    def qkv(seed, **shape):
        return C.qkv(seed=seed, dtype=dtype, device=device, **shape)

    return [
        Case(
            "causal mask (L, L), d = 16",
            qkv(40, batch=(2,), lq=5, lk=5, d=16),
            {"mask": causal_mask(5, device=device)},
        ),
        Case(
            "padding mask (B, 1, 1, Lk), lengths [6, 2], with heads",
            qkv(41, batch=(2, 3), lq=6, lk=6, d=8),
            {"mask": C.key_padding_mask([6, 2], 6, device=device)},
        ),
        Case(
            "random mask with an all-masked query row",
            qkv(42, batch=(2, 2), lq=4, lk=5, d=8, dv=3),
            {"mask": C.random_mask((2, 2, 4, 5), seed=43, device=device, blocked_rows=[(0, 1, 2)])},
        ),
        Case("no mask, d = 64, Lq != Lk", qkv(44, batch=(3,), lq=3, lk=7, d=64), {"mask": None}),
        Case("one key (Lk = 1)", qkv(45, batch=(2,), lq=4, lk=1, d=8), {"mask": None}),
    ]


FIXED_ATTENTION = FunctionTask(
    id="ch30.fixed_attention",
    title="find and fix the planted bugs",
    points=4,
    statement=r"""
        This attention layer has **four** planted bugs. Each one fails one check of the
        chapter's list (causal mask, padding mask, softmax axis, score scale, all-masked row):

        ```python
        def buggy_attention(q, k, v, mask=None):
            scores = q @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            weights = torch.softmax(scores, dim=-2)
            return weights @ v
        ```

        Write `fixed_attention(q, k, v, mask=None)`: $\operatorname{softmax}(qk^\top/\sqrt{d})\,v$
        for `q` `(..., Lq, d)`, `k` `(..., Lk, d)`, `v` `(..., Lk, dv)`, the softmax over the
        keys; `mask` is boolean, broadcastable to `(..., Lq, Lk)`, **True = may attend**; a
        query that may attend to no key gets output 0 (not NaN). You may not call the course's
        or torch's attention or softmax helpers; `torch.softmax` and `torch.exp` are fine.
        """,
    reference=fixed_attention,
    visible_cases=lambda: [
        Case(
            "by hand: one query [1, 0], keys [1, 0] and [0, 1], values [1, 2] and [3, 4]",
            {
                "q": torch.tensor([[1.0, 0.0]]),
                "k": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                "v": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
            },
        ),
        Case(
            "causal mask (L, L)",
            C.qkv(batch=(2,), lq=4, lk=4, d=8, seed=7),
            {"mask": causal_mask(4)},
        ),
    ],
    hidden_cases=over_devices(_fixed_hidden),
    properties=(Property("every output is finite (an all-masked query gives 0, not NaN)", finite),),
    mistakes=(
        Mistake(
            "the mask is read the wrong way round: masked_fill fills where the mask is True, "
            "and True means 'may attend' (fill where ~mask)",
            source="""
                def fixed_attention(q, k, v, mask=None):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    if mask is not None:
                        scores = scores.masked_fill(mask, float("-inf"))  # as in the buggy layer
                    weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
                    return weights @ v
                """,
        ),
        Mistake(
            "the softmax runs over the queries (dim=-2); each query's weights over the keys "
            "(dim=-1) must sum to 1",
            source="""
                def fixed_attention(q, k, v, mask=None):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    if mask is not None:
                        scores = scores.masked_fill(~mask, float("-inf"))
                    weights = torch.nan_to_num(torch.softmax(scores, dim=-2))
                    return weights @ v
                """,
        ),
        Mistake(
            "the scores are not divided by √d",
            lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask, scale=1.0),
        ),
        Mistake(
            "a query with no allowed key gives NaN (softmax of a row of -inf); give it 0",
            source="""
                def fixed_attention(q, k, v, mask=None):
                    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
                    if mask is not None:
                        scores = scores.masked_fill(~mask, float("-inf"))
                    return torch.softmax(scores, dim=-1) @ v
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


# --- task 2: head_entropy -------------------------------------------------------------------------


def head_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy in nats of each head's rows: ``(B, H, Lq, Lk) -> (H,)``, ``0 log 0 = 0``."""
    return attention_entropy(weights)


def _weights(shape, seed, dtype, device, *, causal=False, temperature=1.0):
    scores = C.randn(shape, seed=seed, dtype=torch.float64) / temperature
    mask = causal_mask(shape[-2], shape[-1]) if causal else None
    return softmax(scores, dim=-1, mask=mask).to(dtype=dtype, device=device)


def _entropy_hidden(dtype, device) -> list[Case]:
    return [
        Case("random weights (2, 4, 5, 6)", {"weights": _weights((2, 4, 5, 6), 50, dtype, device)}),
        Case(
            "causal weights (exact zeros above the diagonal)",
            {"weights": _weights((3, 2, 6, 6), 51, dtype, device, causal=True)},
        ),
        Case(
            "a sharp head (temperature 0.05) among flat ones",
            {"weights": _weights((1, 3, 4, 8), 52, dtype, device, temperature=0.05)},
        ),
        Case("one key (Lk = 1): entropy 0", {"weights": _weights((2, 2, 3, 1), 53, dtype, device)}),
    ]


def _one_per_head(result, inputs) -> bool:
    return tuple(result.shape) == (inputs["weights"].shape[1],)


HEAD_ENTROPY = FunctionTask(
    id="ch30.head_entropy",
    title="attention entropy per head",
    points=4,
    statement=r"""
        Write `head_entropy(weights)`: for attention weights of shape `(B, H, Lq, Lk)` (each
        row sums to 1), the entropy of each row in **nats**,
        $H = -\sum_j w_j \log w_j$ with $0 \log 0 = 0$, averaged over the batch and the queries:
        one number per head, shape `(H,)`. A uniform row over $n$ keys has entropy $\log n$, a
        one-hot row 0; a head whose mean entropy is near 0 has collapsed onto single keys.
        """,
    reference=head_entropy,
    visible_cases=lambda: [
        Case(
            "by hand: head 0 uniform over 4 keys (log 4), head 1 one-hot (0)",
            {
                "weights": torch.stack(
                    [torch.full((2, 4), 0.25), torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])]
                )[None]
            },
        ),
        Case(
            "random weights (2, 3, 4, 5)",
            {"weights": _weights((2, 3, 4, 5), 5, torch.float32, "cpu")},
        ),
    ],
    hidden_cases=over_devices(_entropy_hidden),
    properties=(
        Property("one entropy per head: shape (H,)", _one_per_head),
        Property("entropies are finite (0 log 0 = 0)", finite),
    ),
    mistakes=(
        Mistake(
            "0 · log 0 gives NaN: weights that are exactly 0 (masked keys) must add 0",
            source="""
                def head_entropy(weights):
                    return -(weights * torch.log(weights)).sum(dim=-1).mean(dim=(0, 2))
                """,
        ),
        Mistake(
            "the entropy is in bits (log2); the task asks for nats (natural log)",
            source="""
                def head_entropy(weights):
                    terms = torch.where(weights > 0, weights * torch.log2(weights), 0.0)
                    return -terms.sum(dim=-1).mean(dim=(0, 2))
                """,
        ),
        Mistake(
            "the sum runs over the queries (dim=-2); a row's entropy sums over its keys (dim=-1)",
            lambda weights: attention_entropy(weights.transpose(-2, -1)),
        ),
    ),
    forbidden=(*ATTENTION_BUILTINS, "selfattn_course.debug.attention_entropy"),
)


# --- task 3: unscaled_variance --------------------------------------------------------------------

#: The head width of the task.
HEAD_DIM = 64

UNSCALED_VARIANCE = AnswerTask(
    id="ch30.unscaled_variance",
    title="the variance of unscaled scores",
    points=2,
    statement=rf"""
        The score check of the chapter draws queries and keys with independent entries of
        mean 0 and variance 1, of width $d = {HEAD_DIM}$. A layer that forgot the scale
        computes $s = q \cdot k = \sum_{{i=1}}^{{d}} q_i k_i$. What is the variance of $s$? Store
        the number in `unscaled_variance`.
        """,
    answer_type=Number(rtol=0.0, atol=1e-9),
    expected=float(HEAD_DIM),
    properties=(Property("a variance is positive", positive),),
    mistakes=(
        Mistake(
            f"√d = {math.isqrt(HEAD_DIM)} is the standard deviation, not the variance",
            source="""
                unscaled_variance = 64**0.5
                """,
        ),
        Mistake("1 is the variance after dividing by √d", 1.0),
    ),
)


TASKS = [FIXED_ATTENTION, HEAD_ENTROPY, UNSCALED_VARIANCE]
