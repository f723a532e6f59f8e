"""Chapter 27, short sequences: where a Transformer block's work goes, and what padding wastes.

Counting conventions (the chapter's and chapter 3's): a multiply-add counts as 2 FLOPs. One
block over ``n`` tokens of width ``d`` with a feed-forward network of hidden width ``4d``:

- the four projections (Q, K, V, output): ``8nd²``; the FFN's two layers: ``16nd²``;
- the scores ``Q Kᵀ`` and the mixing ``A V``: ``4n²d``, the only part that grows with ``n²``.

The scores' share of the block is ``4n²d / (24nd² + 4n²d) = n / (6d + n)``. The references are
written out here and checked against :mod:`selfattn_course.costs` in ``tests/tasks/test_ch27.py``.
``score_share`` must work on a tensor of lengths, on any device and floating dtype;
``padding_waste`` takes a plain list of lengths and returns a plain number.
"""

from __future__ import annotations

import torch

from selfattn_course.grading.spec import AnswerTask, Case, FunctionTask, Mistake, Property
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.predicates import positive, whole_number

# --- task 1: score_share --------------------------------------------------------------------------


def score_share(n: torch.Tensor, d: int) -> torch.Tensor:
    """Share of a block's FLOPs spent on scores and mixing: ``n / (6d + n)``, elementwise.

    ``n``: lengths, a floating tensor of any shape; ``d``: the model width (FFN width ``4d``).
    Returns a tensor of ``n``'s shape, dtype and device, in ``[0, 1)``.
    """
    mixing = 4 * n**2 * d
    rest = 24 * n * d**2  # projections 8nd² + FFN 16nd²
    return mixing / (rest + mixing)


def _lengths(values, dtype=torch.float32, device="cpu"):
    return torch.tensor(values, dtype=dtype, device=device)


def _share_in_unit_interval(result, _inputs) -> bool:
    return bool(((result >= 0) & (result < 1)).all())


def _score_share_hidden(dtype, device) -> list[Case]:
    powers = [float(2**k) for k in range(0, 16)]
    return [
        Case("n = 2^0 ... 2^15, d = 512", {"n": _lengths(powers, dtype, device), "d": 512}),
        Case("n = 6d exactly: one half", {"n": _lengths([4608.0], dtype, device), "d": 768}),
        Case(
            "a (2, 3) grid of lengths, d = 64",
            {"n": _lengths([[1.0, 7.0, 100.0], [384.0, 1000.0, 50000.0]], dtype, device), "d": 64},
        ),
        Case(
            "random lengths in [1, 4097), d = 4096",
            {
                "n": (C.randn((5,), seed=27, dtype=dtype, device=device).abs() * 1000 + 1),
                "d": 4096,
            },
        ),
    ]


SCORE_SHARE = FunctionTask(
    id="ch27.score_share",
    title="the scores' share of a block",
    points=4,
    statement=r"""
        One Transformer block of width $d$ over $n$ tokens computes four $d \times d$ projections
        ($Q$, $K$, $V$ and the output), a feed-forward network $d \to 4d \to d$, the scores
        $QK^\top$ and the mixing $AV$ (a multiply-add counts as 2 FLOPs). Write
        `score_share(n, d)`: the fraction of the block's FLOPs spent on the scores and the mixing,
        for a **tensor** `n` of lengths (any shape, floating dtype, any device) and an integer
        `d`. Return a tensor of `n`'s shape, dtype and device.
        """,
    reference=score_share,
    visible_cases=lambda: [
        Case("by hand: n = 16, d = 512 gives 16 / 3088", {"n": _lengths([16.0]), "d": 512}),
        Case("n = 6d = 3072 gives one half", {"n": _lengths([3072.0]), "d": 512}),
        Case("several lengths, d = 128", {"n": _lengths([1.0, 64.0, 768.0, 4096.0]), "d": 128}),
    ],
    hidden_cases=C.over_devices(_score_share_hidden),
    properties=(Property("every share lies in [0, 1)", _share_in_unit_interval),),
    mistakes=(
        Mistake(
            "you left out the feed-forward network: a block also spends 16nd² on its d -> 4d -> d "
            "layers, so the share is n / (6d + n), not n / (2d + n)",
            source="""
                def score_share(n, d):
                    return 4 * n**2 * d / (8 * n * d**2 + 4 * n**2 * d)
                """,
        ),
        Mistake(
            "you counted only the scores Q Kᵀ (2n²d); the mixing A V costs another 2n²d",
            source="""
                def score_share(n, d):
                    return 2 * n**2 * d / (24 * n * d**2 + 2 * n**2 * d)
                """,
        ),
        Mistake(
            "you divided the scores' FLOPs by the rest of the block, not by the whole block "
            "(the rest plus the scores)",
            lambda n, d: 4 * n**2 * d / (24 * n * d**2),
        ),
    ),
    forbidden=(
        "selfattn_course.costs.attention_mixing_flops",
        "selfattn_course.costs.attention_layer_flops",
    ),
)


# --- task 2: equal_cost_length --------------------------------------------------------------------

#: The model width of the task (BERT-base).
EQUAL_COST_WIDTH = 768


EQUAL_COST_LENGTH = AnswerTask(
    id="ch27.equal_cost_length",
    title="where the scores cost as much as the rest",
    points=2,
    statement=r"""
        For the block of task 1 with $d = 768$ (BERT-base's width), at what sequence length $n$
        do the scores and the mixing cost exactly as many FLOPs as the projections and the
        feed-forward network together? Store the whole number in `equal_cost_length`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=6 * EQUAL_COST_WIDTH,
    properties=(
        Property("n is a whole number of tokens", whole_number),
        Property("n is positive", positive),
    ),
    mistakes=(
        Mistake(
            "n = 2d balances the scores against the four projections only; the FFN's 16nd² "
            "counts too",
            source="""
                d = 768
                equal_cost_length = 2 * d  # 4n²d = 8nd²
                """,
        ),
        Mistake(
            "n = d is Table 1's comparison of the mixing with a recurrent layer, not with the "
            "rest of a block",
            source="""
                d = 768
                equal_cost_length = d  # attention is cheaper while n < d
                """,
        ),
    ),
)


# --- task 3: padding_waste ------------------------------------------------------------------------


def padding_waste(lengths: list[int]) -> float:
    """Share of the attention scores of a padded batch that involve a padding token.

    A batch of sequences of ``lengths`` padded to ``L = max(lengths)`` computes ``B · L²``
    scores per head; sequence ``i`` needs ``lengths[i]²`` of them. Returns
    ``1 - Σ lengths[i]² / (B · L²)``.
    """
    longest = max(lengths)
    useful = sum(length**2 for length in lengths)
    return 1.0 - useful / (len(lengths) * longest**2)


def _in_unit_interval(result, _inputs) -> bool:
    return bool(0 <= float(result) < 1)


def _padding_case(name: str, lengths: list[int]) -> Case:
    return Case(name, {"lengths": lengths})


PADDING_WASTE = FunctionTask(
    id="ch27.padding_waste",
    title="the scores wasted on padding",
    points=4,
    statement=r"""
        A batch of $B$ sequences of lengths $\ell_1, \dots, \ell_B$ is padded to the longest,
        $L = \max_i \ell_i$, so each head computes $B \cdot L^2$ scores, although sequence $i$
        needs only the $\ell_i^2$ between its real tokens. Write `padding_waste(lengths)`
        (`lengths` a list of ints): the fraction of the $B L^2$ scores that involve a padding
        token (as query, key or both), as a plain number.
        """,
    reference=padding_waste,
    visible_cases=lambda: [
        _padding_case("by hand: [2, 4] gives 1 - (4 + 16) / 32 = 0.375", [2, 4]),
        _padding_case("equal lengths waste nothing", [5, 5, 5]),
        _padding_case("one long outlier", [3, 4, 5, 64]),
    ],
    hidden_cases=lambda _devices: [
        _padding_case("one sequence", [17]),
        _padding_case("lengths 1 and 100", [1, 100]),
        _padding_case("eight lengths", [12, 7, 33, 5, 5, 21, 9, 40]),
        _padding_case("sixty-four lengths 1..64", list(range(1, 65))),
        _padding_case("a batch of ones", [1, 1, 1, 1]),
    ],
    properties=(Property("the waste lies in [0, 1)", _in_unit_interval),),
    mistakes=(
        Mistake(
            "you counted padded tokens, 1 - Σℓ / (B·L); the scores form an L x L grid per "
            "sequence, so count ℓ² of B·L² entries",
            source="""
                def padding_waste(lengths):
                    return 1 - sum(lengths) / (len(lengths) * max(lengths))
                """,
        ),
        Mistake(
            "you returned the useful share Σℓ² / (B·L²); the waste is one minus it",
            lambda lengths: sum(x**2 for x in lengths) / (len(lengths) * max(lengths) ** 2),
        ),
        Mistake(
            "you squared the mean length; the useful scores are the mean of the squares, "
            "Σℓ² / B, which is larger than (Σℓ / B)² when the lengths differ",
            lambda lengths: 1 - (sum(lengths) / len(lengths)) ** 2 / max(lengths) ** 2,
        ),
    ),
    runner=returns_number,
)


TASKS = [SCORE_SHARE, EQUAL_COST_LENGTH, PADDING_WASTE]
