"""Chapter 29's graded tasks (selfattn_course/grading/tasks/ch29.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 29 can: each reference
against an independent computation (by hand, a loop), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch29


def test_roc_points_by_hand():
    scores = torch.tensor([0.9, 0.7, 0.4, 0.2])
    labels = torch.tensor([1, 0, 1, 0])
    # thresholds 0.9, 0.7, 0.4, 0.2: TP 1, 1, 2, 2 of P = 2; FP 0, 1, 1, 2 of N = 2
    by_hand = torch.tensor([[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 1], [1, 1]])
    torch.testing.assert_close(ch29.roc_points(scores, labels), by_hand)


def test_roc_points_match_a_loop_over_thresholds_with_ties():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (30,), generator=g)
    labels[:2] = torch.tensor([0, 1])
    scores = torch.round(labels + torch.randn(30, generator=g, dtype=torch.float64))
    rows = [(0.0, 0.0)]
    for t in sorted(set(scores.tolist()), reverse=True):
        tp = sum(
            1 for s, y in zip(scores.tolist(), labels.tolist(), strict=True) if s >= t and y == 1
        )
        fp = sum(
            1 for s, y in zip(scores.tolist(), labels.tolist(), strict=True) if s >= t and y == 0
        )
        rows.append((fp / (labels == 0).sum().item(), tp / (labels == 1).sum().item()))
    expected = torch.tensor(rows, dtype=torch.float64)
    torch.testing.assert_close(ch29.roc_points(scores, labels), expected)


def test_the_area_under_the_roc_points_is_the_probability_a_positive_outranks_a_negative():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (200,), generator=g)
    scores = torch.round(4 * (labels + torch.randn(200, generator=g, dtype=torch.float64)))
    points = ch29.roc_points(scores, labels)
    area = torch.trapezoid(points[:, 1], points[:, 0]).item()
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    assert math.isclose(area, pairs.mean().item(), rel_tol=1e-12)


def test_entropy_of_one_hot_and_uniform_heads_by_hand():
    weights = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]], [[0.25, 0.25, 0.25, 0.25]]]])
    torch.testing.assert_close(ch29.attention_entropy(weights), torch.tensor([0.0, math.log(4)]))


def test_entropy_matches_a_loop_with_masked_keys():
    weights = ch29._weights((2, 3, 4, 4), 5, dtype=torch.float64, causal=True)
    expected = torch.zeros(3, dtype=torch.float64)
    for b in range(2):
        for h in range(3):
            for i in range(4):
                row = [a for a in weights[b, h, i].tolist() if a > 0]
                expected[h] -= sum(a * math.log(a) for a in row) / (2 * 4)
    torch.testing.assert_close(ch29.attention_entropy(weights), expected)


def test_median_latency_drops_the_warmup_and_averages_the_two_middle_values():
    assert ch29.median_latency((0.9, 0.01, 0.012, 0.011), 1) == 0.011
    assert math.isclose(ch29.median_latency((0.5, 0.3, 0.02, 0.01, 0.04, 0.03), 2), 0.025)


def test_the_head_to_prune_has_the_smallest_loss_increase():
    increases = [loss - ch29.FULL_LOSS for loss in ch29.MASKED_LOSSES]  # 0.005, 0.48, -0.001, 0.19
    assert ch29.HEAD_TO_PRUNE == 2
    assert increases[2] == min(increases)
