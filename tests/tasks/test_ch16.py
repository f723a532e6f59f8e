"""Chapter 16's graded tasks (selfattn_course/grading/tasks/ch16.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 16 can: each reference
against an independent computation (by hand, a loop, collections.Counter), one property per test.
"""

from __future__ import annotations

from collections import Counter

import torch

from selfattn_course.grading.tasks import ch16


def _best_span_by_loop(start_logits, end_logits, valid, max_len):
    best = []
    for b in range(start_logits.shape[0]):
        candidates = [
            (float(start_logits[b, i] + end_logits[b, j]), i, j)
            for i in range(start_logits.shape[1])
            for j in range(i, min(i + max_len, start_logits.shape[1]))
            if valid[b, i] and valid[b, j]
        ]
        _, i, j = max(candidates)
        best.append((i, j))
    return torch.tensor(best)


def test_best_span_by_hand_takes_the_best_pair_not_the_best_ends():
    # best start 3 (5.0) and best end 1 (4.0) are not a span; with max_len 3 the best allowed
    # pair is (1, 2): 1 + 2 = 3, against (3, 4): 5 + 1 = 6, which wins.
    start = torch.tensor([[0.0, 1.0, 0.0, 5.0, 0.0]])
    end = torch.tensor([[0.0, 4.0, 2.0, 0.0, 1.0]])
    result = ch16.best_span(start, end, torch.ones(1, 5, dtype=torch.bool), 3)
    assert result.tolist() == [[3, 4]]


def test_best_span_equals_a_loop_over_every_allowed_span():
    for seed, (batch, length, max_len, first) in enumerate(
        [(5, 12, 3, 4), (3, 9, 1, 0), (2, 7, 20, 2)]
    ):
        inputs = ch16._span_inputs(batch, length, max_len, seed=seed, first=first)
        expected = _best_span_by_loop(*inputs.values())
        assert torch.equal(ch16.best_span(**inputs), expected)


def test_best_span_returns_long_on_the_logits_device():
    inputs = ch16._span_inputs(2, 6, 2, seed=3, dtype=torch.float64)
    result = ch16.best_span(**inputs)
    assert result.dtype == torch.long and result.shape == (2, 2)


def _f1_by_counter(prediction, truth):
    common = Counter(prediction) & Counter(truth)
    shared = sum(common.values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(prediction), shared / len(truth)
    return 2 * precision * recall / (precision + recall)


def test_token_f1_by_hand():
    # [5, 6, 7] against [6, 7]: 2 shared, P = 2/3, R = 1, F1 = 2·(2/3)/(5/3) = 0.8
    result = ch16.token_f1(torch.tensor([5, 6, 7]), torch.tensor([6, 7]))
    assert result.dtype == torch.float64 and result.shape == ()
    assert abs(float(result) - 0.8) < 1e-12


def test_token_f1_equals_squads_counter_formula():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        lengths = torch.randint(1, 8, (2,), generator=generator).tolist()
        prediction = torch.randint(0, 4, (lengths[0],), generator=generator)
        truth = torch.randint(0, 4, (lengths[1],), generator=generator)
        expected = _f1_by_counter(prediction.tolist(), truth.tolist())
        assert abs(float(ch16.token_f1(prediction, truth)) - expected) < 1e-12


def test_token_f1_is_zero_without_a_shared_token():
    assert float(ch16.token_f1(torch.tensor([1, 2]), torch.tensor([3]))) == 0.0


def test_span_counts_equal_enumerating_the_spans():
    n, max_len = ch16.PASSAGE_TOKENS, ch16.LONGEST_ANSWER
    limited = sum(1 for i in range(n) for j in range(i, n) if j < i + max_len)
    unlimited = sum(1 for i in range(n) for j in range(i, n))
    assert ch16.SPAN_COUNTS.expected == (limited, unlimited)
