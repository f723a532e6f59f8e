"""Chapter 16, extractive question answering: the best span, SQuAD's token F1, counting spans.

References: ``best_span`` and ``token_f1`` are written out here (the tests check them against
loops over every span and over every token, and against ``collections.Counter``); the span count
is the closed form of a sum, checked in the tests against enumerating the spans. No attention is
involved, so nothing is forbidden but the reference itself.
"""

from __future__ import annotations

import torch

from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Numbers
from selfattn_course.grading.spec.predicates import between_zero_and_one

# --- task 1: best_span ----------------------------------------------------------------------------


def best_span(
    start_logits: torch.Tensor, end_logits: torch.Tensor, valid: torch.Tensor, max_len: int
) -> torch.Tensor:
    """The highest-scoring answer span of each example: ``(B, L), (B, L), (B, L) -> (B, 2)``.

    The score of the span from token ``s`` to token ``e`` (both included) is
    ``start_logits[b, s] + end_logits[b, e]``; a span is allowed when ``s <= e < s + max_len``
    (at most ``max_len`` tokens) and both ends are in the passage (``valid`` True). Returns the
    ``(s, e)`` of the best allowed span, ``torch.long``, on the device of the logits.
    """
    length = start_logits.shape[-1]
    positions = torch.arange(length, device=start_logits.device)
    offset = positions[None, :] - positions[:, None]  # e - s, (L, L)
    allowed = (offset >= 0) & (offset < max_len)
    allowed = allowed & valid[:, :, None] & valid[:, None, :]
    scores = start_logits[:, :, None] + end_logits[:, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = scores.flatten(1).argmax(dim=-1)
    return torch.stack([flat // length, flat % length], dim=-1)


def _span_inputs(batch, length, max_len, *, seed, dtype=torch.float32, device="cpu", first=0):
    """Random logits and a passage mask that is True from ``first`` to the end of each row."""
    valid = torch.zeros(batch, length, dtype=torch.bool, device=device)
    valid[:, first:] = True
    return {
        "start_logits": C.randn((batch, length), seed=seed, dtype=dtype, device=device),
        "end_logits": C.randn((batch, length), seed=seed + 1, dtype=dtype, device=device),
        "valid": valid,
        "max_len": max_len,
    }


def _start_before_end(result, _inputs) -> bool:
    return bool((result[:, 0] <= result[:, 1]).all())


def _within_the_passage(result, inputs) -> bool:
    valid = inputs["valid"]
    rows = torch.arange(valid.shape[0], device=valid.device)
    return bool(valid[rows, result[:, 0]].all() and valid[rows, result[:, 1]].all())


def _best_span_hidden(dtype, device) -> list[Case]:
    def spans(batch, length, max_len, seed, first=0):
        return _span_inputs(
            batch, length, max_len, seed=seed, dtype=dtype, device=device, first=first
        )

    return [
        Case("batch 8, 20 tokens, max_len 4, passage from token 5", spans(8, 20, 4, 40, first=5)),
        Case("max_len 1: single-token answers", spans(6, 12, 1, 41, first=3)),
        Case("max_len longer than the passage", spans(4, 9, 30, 42, first=2)),
        Case("one example of 64 tokens, max_len 8", spans(1, 64, 8, 43, first=10)),
    ]


BEST_SPAN = FunctionTask(
    id="ch16.best_span",
    title="the best answer span",
    points=4,
    statement=r"""
        An extractive reader gives every token $i$ a start logit $s_i$ and an end logit $e_i$.
        Write `best_span(start_logits, end_logits, valid, max_len)` that returns, for each
        example, the span $(i, j)$ with the largest score $s_i + e_j$ among the spans with
        $i \le j < i + \text{max\_len}$ (at most `max_len` tokens) whose two ends are passage
        tokens (`valid[b, i]` and `valid[b, j]` True). The logits and `valid` have shape `(B, L)`;
        return a `torch.long` tensor `(B, 2)` of `(start, end)` on the logits' device. Every row
        of `valid` has at least one True.
        """,
    reference=best_span,
    visible_cases=lambda: [
        Case(
            "by hand: the best start (3) comes after the best end (1); the best span is (3, 4)",
            {
                "start_logits": torch.tensor([[0.0, 1.0, 0.0, 5.0, 0.0]]),
                "end_logits": torch.tensor([[0.0, 4.0, 2.0, 0.0, 1.0]]),
                "valid": torch.ones(1, 5, dtype=torch.bool),
                "max_len": 3,
            },
        ),
        Case("random: batch 3, 10 tokens, max_len 3", _span_inputs(3, 10, 3, seed=1, first=4)),
    ],
    hidden_cases=over_devices(_best_span_hidden),
    properties=(
        Property("every start is at or before its end", _start_before_end),
        Property("both ends of every span are passage tokens (valid)", _within_the_passage),
    ),
    mistakes=(
        Mistake(
            "you took the best start and the best end separately; the end can then come before "
            "the start or too far after it: search the pairs (i, j) together",
            source="""
                def best_span(start_logits, end_logits, valid, max_len):
                    blocked = float("-inf")
                    start = start_logits.masked_fill(~valid, blocked).argmax(dim=-1)
                    end = end_logits.masked_fill(~valid, blocked).argmax(dim=-1)
                    return torch.stack([start, end], dim=-1)
                """,
        ),
        Mistake(
            "a span of max_len tokens ends at i + max_len - 1: you allowed j = i + max_len too",
            lambda s, e, valid, max_len: best_span(s, e, valid, max_len + 1),
        ),
        Mistake(
            "you did not use valid: the question and the special tokens are not answers",
            lambda s, e, valid, max_len: best_span(s, e, torch.ones_like(valid), max_len),
        ),
    ),
    forbidden=("selfattn_course.grading.tasks.ch16.best_span",),
)


# --- task 2: token_f1 -----------------------------------------------------------------------------


def token_f1(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """SQuAD's token F1 of two token sequences ``(Lp,)`` and ``(Lt,)``: a float64 scalar.

    The overlap counts each token as often as it occurs in both (a multiset intersection:
    ``Counter(prediction) & Counter(truth)``); precision = overlap / Lp, recall = overlap / Lt,
    F1 = 2PR / (P + R), and 0 when the overlap is 0. Both sequences have at least one token.
    """
    tokens = torch.cat([prediction, truth]).unique()
    in_prediction = (prediction[None, :] == tokens[:, None]).sum(dim=-1)
    in_truth = (truth[None, :] == tokens[:, None]).sum(dim=-1)
    overlap = torch.minimum(in_prediction, in_truth).sum().to(torch.float64)
    if overlap == 0:
        return torch.zeros((), dtype=torch.float64, device=prediction.device)
    precision = overlap / prediction.numel()
    recall = overlap / truth.numel()
    return 2 * precision * recall / (precision + recall)


def _ids(values, device="cpu"):
    return torch.tensor(values, dtype=torch.long, device=device)


def _token_f1_hidden(device) -> list[Case]:
    generator = C.seeded_generator(50)

    def random_ids(length, vocabulary):
        return torch.randint(0, vocabulary, (length,), generator=generator).to(device)

    return [
        Case(
            "repeated tokens",
            {"prediction": _ids([7, 7, 7, 2], device), "truth": _ids([7, 7, 2, 2], device)},
        ),
        Case(
            "no token in common", {"prediction": _ids([1, 2], device), "truth": _ids([3], device)}
        ),
        Case(
            "the same tokens in another order",
            {"prediction": _ids([4, 5, 6], device), "truth": _ids([6, 4, 5], device)},
        ),
        Case("random, 9 and 5 tokens", {"prediction": random_ids(9, 6), "truth": random_ids(5, 6)}),
        Case(
            "random, 1 and 12 tokens", {"prediction": random_ids(1, 3), "truth": random_ids(12, 3)}
        ),
    ]


TOKEN_F1 = FunctionTask(
    id="ch16.token_f1",
    title="SQuAD's token F1",
    points=3,
    statement=r"""
        SQuAD scores a predicted answer against the true one by the F1 of their **tokens**,
        each counted as often as it occurs in both (a bag of tokens, not a set, and not
        positions). Write `token_f1(prediction, truth)` for two 1-D `torch.long` tensors of token
        ids (each at least one token): with $c$ the number of shared tokens, precision
        $P = c / L_p$, recall $R = c / L_t$ and $F_1 = 2PR / (P + R)$, or 0 when $c = 0$. Return a
        `torch.float64` scalar tensor (shape `()`) on the inputs' device.
        """,
    reference=token_f1,
    visible_cases=lambda: [
        Case(
            "by hand: [5, 6, 7] against [6, 7]: c = 2, P = 2/3, R = 1, F1 = 0.8",
            {"prediction": _ids([5, 6, 7]), "truth": _ids([6, 7])},
        ),
        Case(
            "by hand: an exact match gives 1", {"prediction": _ids([3, 1]), "truth": _ids([3, 1])}
        ),
        Case(
            "by hand: [2, 2] against [2, 2, 9]: both 2s are shared, P = 1, R = 2/3, F1 = 0.8",
            {"prediction": _ids([2, 2]), "truth": _ids([2, 2, 9])},
        ),
    ],
    hidden_cases=over_devices_only(_token_f1_hidden),
    properties=(Property("F1 is between 0 and 1", between_zero_and_one),),
    mistakes=(
        Mistake(
            "you counted shared tokens as a set (each distinct token once); SQuAD counts each "
            "token as often as it occurs in both answers",
            source="""
                def token_f1(prediction, truth):
                    shared = set(prediction.tolist()) & set(truth.tolist())
                    c = torch.tensor(float(len(shared)), dtype=torch.float64)
                    if c == 0:
                        return torch.zeros((), dtype=torch.float64, device=prediction.device)
                    p, r = c / len(prediction), c / len(truth)
                    return (2 * p * r / (p + r)).to(prediction.device)
                """,
        ),
        Mistake(
            "you counted every predicted token that occurs somewhere in the truth, however often "
            "it occurs there; a shared token counts at most as often as it occurs in each",
            lambda p, t: _f1_from_count(p, t, torch.isin(p, t).sum()),
        ),
        Mistake(
            "you compared the tokens position by position; F1 is over bags of tokens, in any order",
            lambda p, t: _f1_from_count(
                p, t, (p[: min(len(p), len(t))] == t[: min(len(p), len(t))]).sum()
            ),
        ),
    ),
    forbidden=("selfattn_course.grading.tasks.ch16.token_f1",),
)


def _f1_from_count(prediction, truth, count):
    count = count.to(torch.float64)
    if count == 0:
        return torch.zeros((), dtype=torch.float64, device=prediction.device)
    precision, recall = count / prediction.numel(), count / truth.numel()
    return 2 * precision * recall / (precision + recall)


# --- task 3: span_counts --------------------------------------------------------------------------

#: Task 3's passage length and longest answer.
PASSAGE_TOKENS = 200
LONGEST_ANSWER = 30


def _span_counts(n: int, max_len: int) -> tuple[int, int]:
    """Spans ``s <= e < s + max_len`` in ``n`` tokens, and all spans ``s <= e``:
    ``sum_s min(max_len, n - s) = max_len·n - max_len(max_len - 1)/2`` (for max_len <= n) and
    ``n(n + 1)/2``."""
    limited = max_len * n - max_len * (max_len - 1) // 2
    return limited, n * (n + 1) // 2


SPAN_COUNTS = AnswerTask(
    id="ch16.span_counts",
    title="how many spans the search scores",
    points=3,
    statement=r"""
        A passage has $n = 200$ tokens. How many spans $(i, j)$ does the best-span search score
        when answers have at most 30 tokens ($i \le j < i + 30$), and how many with no limit
        ($i \le j$)? Store `span_counts = (with_limit, without_limit)`.
        """,
    answer_type=Numbers(count=2, rtol=0.0, atol=0.0, integers=True),
    expected=_span_counts(PASSAGE_TOKENS, LONGEST_ANSWER),
    mistakes=(
        Mistake(
            "near the end of the passage fewer than 30 ends are left: start i has min(30, n - i) "
            "ends, not always 30",
            (PASSAGE_TOKENS * LONGEST_ANSWER, PASSAGE_TOKENS * (PASSAGE_TOKENS + 1) // 2),
        ),
        Mistake(
            "without a limit the end still comes at or after the start: n(n + 1)/2 pairs, not n²",
            (_span_counts(PASSAGE_TOKENS, LONGEST_ANSWER)[0], PASSAGE_TOKENS**2),
        ),
    ),
)


TASKS = [BEST_SPAN, TOKEN_F1, SPAN_COUNTS]
