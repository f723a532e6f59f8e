"""Chapter 18's graded tasks (selfattn_course/grading/tasks/ch18.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 18 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from selfattn_course.grading.tasks import ch18


def test_hit_and_ndcg_match_a_sort_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.3, 0.2], [0.5, 0.7, 0.1, 0.3], [0.1, 0.4, 0.3, 0.2]])
    hit, ndcg = ch18.hit_and_ndcg(scores, torch.tensor([0, 0, 0]), 2)
    # the target (item 0) is first, second and last (rank 3): hits 1, 1, 0
    torch.testing.assert_close(hit, torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(ndcg, torch.tensor([1.0, 1 / math.log2(3), 0.0]))


def test_hit_and_ndcg_agree_with_argsort_positions():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(20, 40, generator=generator, dtype=torch.float64)
    targets = torch.randint(40, (20,), generator=generator)
    hit, ndcg = ch18.hit_and_ndcg(scores, targets, 10)
    order = scores.argsort(dim=1, descending=True)
    position = (order == targets[:, None]).nonzero()[:, 1]  # 0-based place in the ranking
    expected_hit = (position < 10).double()
    torch.testing.assert_close(hit, expected_hit)
    torch.testing.assert_close(ndcg, expected_hit / torch.log2(position.double() + 2))


def test_leave_one_out_holds_out_the_last_item_and_keeps_left_padding():
    inputs, targets = ch18.leave_one_out(torch.tensor([[0, 4, 7, 9], [1, 2, 3, 5]]))
    torch.testing.assert_close(inputs, torch.tensor([[0, 0, 4, 7], [0, 1, 2, 3]]))
    torch.testing.assert_close(targets, torch.tensor([9, 5]))


def test_transition_counts_match_a_python_loop():
    history = torch.tensor([[0, 0, 1, 2, 1], [3, 3, 1, 2, 2]])
    counts = ch18.transition_counts(history, 3)
    expected = torch.zeros(4, 4, dtype=torch.long)
    for row in history.tolist():
        for a, b in zip(row[:-1], row[1:], strict=True):
            if a and b:
                expected[a, b] += 1
    torch.testing.assert_close(counts, expected)


def test_sampled_hit_probability_matches_a_simulation():
    rng = np.random.default_rng(0)
    higher = rng.hypergeometric(80, 1000 - 80, 100, size=200_000)  # sampled negatives above
    simulated = (higher < 10).mean()
    assert abs(ch18.SAMPLED_HIT_PROBABILITY.expected - simulated) < 0.005
