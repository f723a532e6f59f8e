"""Chapter 2, computing attention: scores, a masked softmax and attention from scratch, in torch.

References: ``attention_scores`` (``q kᵀ / √d``: one line) and ``masked_softmax`` (the package's
:func:`~selfattn_course.attention.softmax`) live in :mod:`~selfattn_course.grading.spec.provided`,
since the ``attention`` task hands them to the learner's function; ``attention`` is the package's
:func:`~selfattn_course.attention.scaled_dot_product_attention`. The learner may not call those,
nor torch's attention, while their functions run.
"""

from __future__ import annotations

import torch

from selfattn_course.attention import scaled_dot_product_attention, softmax
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
from selfattn_course.grading.spec.predicates import finite
from selfattn_course.grading.spec.provided import attention_scores, masked_softmax
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS
from selfattn_course.masks import causal_mask

FROM_SCRATCH = ATTENTION_BUILTINS


# --- what tasks 2 and 3 share: the mask and the rows with no allowed key --------------------------


def _allowed(inputs) -> torch.Tensor:
    """The mask broadcast to the score shape (all True without a mask)."""
    scores = inputs.get("scores")
    if scores is None:
        scores = attention_scores(inputs["q"], inputs["k"])
    mask = inputs.get("mask")
    if mask is None:
        return torch.ones_like(scores, dtype=torch.bool)
    return mask.expand(scores.shape)


def _all_masked_rows_are_zero(result, inputs) -> bool:
    no_key = ~_allowed(inputs).any(dim=-1)
    return bool((result[no_key] == 0).all())


# --- task 1: attention_scores ---------------------------------------------------------------------


def _q_and_k(**qkv_arguments) -> dict[str, torch.Tensor]:
    """``q`` and ``k`` of :func:`~selfattn_course.grading.spec.cases.qkv` (no ``v``)."""
    tensors = C.qkv(**qkv_arguments)
    return {"q": tensors["q"], "k": tensors["k"]}


def _scores_hidden(dtype, device) -> list[Case]:
    def qk(seed, **shape):
        return _q_and_k(seed=seed, dtype=dtype, device=device, **shape)

    return [
        Case("random (2, 3, 5, 16) x (2, 3, 7, 16)", qk(10, batch=(2, 3), lq=5, lk=7, d=16)),
        Case("d_k = 64, where the scale matters most", qk(11, batch=(2,), lq=4, lk=4, d=64)),
        Case("length-1 sequences (Lq = Lk = 1)", qk(12, batch=(3,), lq=1, lk=1, d=8)),
        Case("one query, six keys, no leading dims", qk(13, batch=(), lq=1, lk=6, d=4)),
        Case("three leading dims, d_k = 1", qk(14, batch=(2, 1, 2), lq=3, lk=2, d=1)),
    ]


ATTENTION_SCORES = FunctionTask(
    id="ch02.attention_scores",
    title="scores",
    points=2,
    statement=r"""
        Write `attention_scores(q, k)` returning the scaled scores $S = q k^\top / \sqrt{d_k}$ for
        `q` of shape `(..., Lq, d_k)` and `k` of shape `(..., Lk, d_k)`. `S` has shape
        `(..., Lq, Lk)`: row $i$ holds query $i$'s scores against every key.
        """,
    reference=attention_scores,
    visible_cases=lambda: [
        Case(
            "by hand: q = [[1, 0]], k = [[1, 0], [0, 1]] gives [[1/sqrt(2), 0]]",
            {"q": torch.tensor([[1.0, 0.0]]), "k": torch.tensor([[1.0, 0.0], [0.0, 1.0]])},
        ),
        Case("random, no leading dims, Lq=3, Lk=4", _q_and_k(batch=(), lq=3, lk=4, d=8, seed=1)),
        Case(
            "random, leading dims (batch, heads) = (2, 3)",
            _q_and_k(batch=(2, 3), lq=4, lk=5, d=8, seed=2),
        ),
    ],
    hidden_cases=over_devices(_scores_hidden),
    mistakes=(
        Mistake(
            "the scores are not divided by sqrt(d_k)",
            source="""
                def attention_scores(q, k):
                    return q @ k.transpose(-2, -1)
                """,
        ),
        Mistake(
            "the scores are divided by d_k instead of sqrt(d_k)",
            lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1],
        ),
    ),
    forbidden=FROM_SCRATCH,
)


# --- task 2: masked_softmax -----------------------------------------------------------------------


def _masked_entries_are_zero(weights, inputs) -> bool:
    return bool((weights[~_allowed(inputs)] == 0).all())


def _rows_sum_to_one(weights, inputs) -> bool:
    rows_with_a_key = _allowed(inputs).any(dim=-1)
    sums = weights.sum(dim=-1)[rows_with_a_key]
    tolerance = 1e-4 if weights.dtype == torch.float32 else 1e-9
    return bool(torch.allclose(sums, torch.ones_like(sums), atol=tolerance))


def _softmax_hidden(dtype, device) -> list[Case]:
    def scores(shape, seed, scale=1.0):
        return C.randn(shape, seed=seed, dtype=dtype, device=device, scale=scale)

    return [
        Case(
            "random mask with two all-masked rows",
            {
                "scores": scores((2, 3, 5, 7), 20),
                "mask": C.random_mask(
                    (2, 3, 5, 7), seed=21, device=device, blocked_rows=[(0, 1, 2), (1, 2, 4)]
                ),
            },
        ),
        Case(
            "padding mask (B, 1, 1, Lk) with lengths [7, 3], broadcast over heads and queries",
            {
                "scores": scores((2, 2, 4, 7), 22),
                "mask": C.key_padding_mask([7, 3], 7, device=device),
            },
        ),
        Case(
            "causal mask (L, L) broadcast over the batch",
            {"scores": scores((3, 6, 6), 23), "mask": causal_mask(6, device=device)},
        ),
        Case(
            "length-1 rows (Lk = 1), the second one masked",
            {"scores": scores((2, 1), 24), "mask": torch.tensor([[True], [False]], device=device)},
        ),
        Case(
            "large scores (up to about 1000): exp overflows unless you subtract the row maximum",
            {
                "scores": scores((2, 5, 6), 25, scale=400.0),
                "mask": C.random_mask((2, 5, 6), seed=26, device=device),
            },
        ),
        Case("no mask (mask=None)", {"scores": scores((4, 3), 27), "mask": None}),
        Case(
            "every row masked",
            {
                "scores": scores((2, 3, 4), 28),
                "mask": torch.zeros(2, 3, 4, dtype=torch.bool, device=device),
            },
        ),
    ]


def _softmax_fill_large_negative(scores, mask):
    if mask is None:
        return softmax(scores, dim=-1)
    return softmax(scores.masked_fill(~mask, -1e9), dim=-1)


MASKED_SOFTMAX = FunctionTask(
    id="ch02.masked_softmax",
    title="masked softmax",
    points=3,
    statement=r"""
        Write `masked_softmax(scores, mask)`: the softmax of `scores` `(..., Lq, Lk)` over the last
        dim (the keys), taken only over the entries where the boolean `mask` is True. `mask`
        broadcasts to `scores` (e.g. a padding mask `(B, 1, 1, Lk)` or a causal mask `(L, L)`), or
        is `None` for no mask. Masked entries get weight 0, and a row whose keys are all masked
        gets all zeros, **not NaN**. Keep it stable for large scores, and return the dtype and
        device of `scores`: float32 scores give float32 weights, not float64.
        """,
    reference=masked_softmax,
    visible_cases=lambda: [
        Case(
            "by hand: scores [[1, 2, 3]], last key masked, gives [[0.269, 0.731, 0]]",
            {
                "scores": torch.tensor([[1.0, 2.0, 3.0]]),
                "mask": torch.tensor([[True, True, False]]),
            },
        ),
        Case("no mask (mask=None)", {"scores": C.randn((2, 3, 4), seed=3), "mask": None}),
        Case(
            "random mask, row 1 of batch 0 all masked",
            {
                "scores": C.randn((2, 4, 5), seed=4),
                "mask": C.random_mask((2, 4, 5), seed=5, blocked_rows=[(0, 1)]),
            },
        ),
    ],
    hidden_cases=over_devices(_softmax_hidden),
    properties=(
        Property("every weight is finite (an all-masked row gives 0, not NaN)", finite),
        Property("masked entries (mask False) get weight 0", _masked_entries_are_zero),
        Property("each row with at least one allowed key sums to 1", _rows_sum_to_one),
        Property("an all-masked row is all 0", _all_masked_rows_are_zero),
    ),
    mistakes=(
        Mistake(
            "softmax runs over the queries (dim=-2) instead of the keys (dim=-1)",
            source="""
                def masked_softmax(scores, mask):
                    if mask is not None:
                        scores = scores.masked_fill(~mask, float('-inf'))
                    return torch.nan_to_num(torch.softmax(scores, dim=-2), nan=0.0)
                """,
        ),
        Mistake(
            "the mask is applied after the softmax, so the rows no longer sum to 1",
            lambda scores, mask: (
                softmax(scores, dim=-1) if mask is None else softmax(scores, dim=-1) * mask
            ),
        ),
        Mistake(
            "the mask is read the wrong way round: True means 'may attend'",
            lambda scores, mask: softmax(scores, dim=-1, mask=None if mask is None else ~mask),
        ),
        Mistake(
            "masked scores are filled with a large negative number, so an all-masked row becomes "
            "uniform",
            _softmax_fill_large_negative,
        ),
    ),
    forbidden=FROM_SCRATCH,
)


# --- task 3: attention ----------------------------------------------------------------------------


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``masked_softmax(q kᵀ / √d, mask) v``.

    Shapes: ``(..., Lq, d), (..., Lk, d), (..., Lk, dv) -> (..., Lq, dv)``.
    """
    return scaled_dot_product_attention(q, k, v, mask)


def _attention_hidden(dtype, device) -> list[Case]:
    def qkv(seed, **shape):
        return C.qkv(seed=seed, dtype=dtype, device=device, **shape)

    return [
        Case(
            "random mask with an all-masked query row",
            qkv(30, batch=(2, 3), lq=5, lk=6, d=8, dv=4),
            {"mask": C.random_mask((2, 3, 5, 6), seed=31, device=device, blocked_rows=[(1, 0, 3)])},
        ),
        Case(
            "padding mask (B, 1, 1, Lk), lengths [6, 1]",
            qkv(32, batch=(2, 2), lq=6, lk=6, d=8),
            {"mask": C.key_padding_mask([6, 1], 6, device=device)},
        ),
        Case(
            "causal mask (L, L)",
            qkv(33, batch=(2,), lq=5, lk=5, d=16),
            {"mask": causal_mask(5, device=device)},
        ),
        Case("one query (Lq = 1), no mask", qkv(34, batch=(3,), lq=1, lk=7, d=8, dv=2)),
        Case("one key (Lk = 1), no mask", qkv(35, batch=(2,), lq=4, lk=1, d=8)),
        Case(
            "no leading dims, mask=None passed explicitly",
            qkv(36, batch=(), lq=3, lk=4, d=8),
            {"mask": None},
        ),
        Case("d_k = 64, three leading dims, no mask", qkv(37, batch=(2, 2, 1), lq=3, lk=5, d=64)),
    ]


ATTENTION = FunctionTask(
    id="ch02.attention",
    title="attention",
    points=3,
    statement=r"""
        Write `attention(q, k, v, mask=None)` returning
        `masked_softmax(attention_scores(q, k), mask) @ v`, of shape `(..., Lq, d_v)` for `v` of
        shape `(..., Lk, d_v)`. Use your two functions above. While this task is graded they are
        replaced by correct versions, so a mistake in task 1 or 2 costs points there only.
        """,
    reference=attention,
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
            "no mask, (batch,) = (2,), d = 8, dv = 6",
            C.qkv(batch=(2,), lq=4, lk=5, d=8, dv=6, seed=6),
        ),
        Case(
            "padding mask (B, 1, 1, Lk), lengths [5, 2], with heads",
            C.qkv(batch=(2, 2), lq=4, lk=5, d=8, seed=7),
            {"mask": C.key_padding_mask([5, 2], 5)},
        ),
    ],
    hidden_cases=over_devices(_attention_hidden),
    properties=(
        Property("every output is finite (a query with no allowed key gives 0, not NaN)", finite),
        Property("a query with no allowed key gets output 0", _all_masked_rows_are_zero),
    ),
    mistakes=(
        Mistake(
            "the mask is applied to the weights after the softmax",
            source="""
                def attention(q, k, v, mask=None):
                    weights = torch.softmax(attention_scores(q, k), dim=-1)
                    if mask is not None:
                        weights = weights * mask
                    return weights @ v
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d_k)",
            lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask, scale=1.0),
        ),
        Mistake(
            "the mask is read the wrong way round: True means 'may attend'",
            lambda q, k, v, mask=None: scaled_dot_product_attention(
                q, k, v, None if mask is None else ~mask
            ),
        ),
    ),
    forbidden=FROM_SCRATCH,
    provided={"attention_scores": attention_scores, "masked_softmax": masked_softmax},
)


# --- task 4: score_variance -----------------------------------------------------------------------

SCORE_VARIANCE = AnswerTask(
    id="ch02.score_variance",
    title=r"why divide by $\sqrt{d_k}$?",
    points=2,
    statement=r"""
        The components of $q, k \in \mathbb{R}^{64}$ are independent, with mean 0 and variance 1.
        What is the variance of the score $q \cdot k$? And of the scaled score
        $q \cdot k / \sqrt{d_k}$? Store both as `score_variance = (unscaled, scaled)`. Give the
        exact values (you may check them by simulation).
        """,
    answer_type=Numbers(count=2, rtol=0.05),
    expected=(64.0, 1.0),
    properties=(Property("both variances are positive", lambda variances, _: min(variances) > 0),),
    mistakes=(
        Mistake(
            "8 = sqrt(64) is the standard deviation; a sum of 64 independent terms of "
            "variance 1 has variance 64",
            source="""
                d_k = 64
                score_variance = (8, 1)
                """,
        ),
        Mistake(
            "dividing by sqrt(d_k) divides the variance by d_k, since Var(cX) = c² Var(X)",
            (64, 8),
        ),
    ),
)


TASKS = [ATTENTION_SCORES, MASKED_SOFTMAX, ATTENTION, SCORE_VARIANCE]
