"""Chapter 23's graded tasks (selfattn_course/grading/tasks/ch23.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 23 can: each reference
against an independent computation (by hand, a loop, pixel counts), one property per test.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from selfattn_course.grading.tasks import ch23


def test_generalized_iou_of_boxes_worked_by_hand():
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    b = torch.tensor([[2.0, 1.0, 6.0, 5.0], [0.0, 0.0, 4.0, 2.0]])
    # A vs B: intersection 2, union 22, enclosing 30; A vs A: 1
    expected = torch.tensor([[2 / 22 - 8 / 30, 1.0]])
    torch.testing.assert_close(ch23.generalized_iou(a, b), expected)


def test_giou_by_hand_answer_equals_the_reference_function():
    a, b = torch.tensor([ch23.BOX_A]), torch.tensor([ch23.BOX_B])
    assert ch23.generalized_iou(a, b).item() == pytest.approx(ch23.GIOU_BY_HAND.expected)


def test_match_queries_on_the_greedy_trap_worked_by_hand():
    # query 1 -> object 0 (2), query 0 -> object 1 (2): total 4 < greedy's 1 + 5
    cost = torch.tensor(ch23._GREEDY_TRAP)
    assert ch23.match_queries(cost).tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(4))
def test_match_queries_cost_is_the_least_over_all_injections(seed):
    cost = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    matched = ch23.match_queries(cost)
    total = cost[matched, torch.arange(3)].sum().item()
    # independent: the least of every sum over distinct rows, by nested loops
    least = min(
        cost[i, 0] + cost[j, 1] + cost[k, 2]
        for i, j, k in itertools.product(range(5), repeat=3)
        if len({i, j, k}) == 3
    ).item()
    assert total == pytest.approx(least)
    assert len(set(matched.tolist())) == 3


def test_patch_labels_count_each_patch_in_a_loop():
    mask = torch.randint(0, 4, (2, 6, 9), generator=torch.Generator().manual_seed(0))
    labels = ch23.patch_labels(mask, 3, 4)
    for b in range(2):
        for i in range(2):
            for j in range(3):
                cell = mask[b, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3].flatten().tolist()
                counts = [cell.count(label) for label in range(4)]
                assert labels[b, i, j].item() == counts.index(max(counts))


def test_patch_labels_tie_goes_to_the_smaller_label():
    mask = torch.tensor([[[2, 1], [1, 2]]])
    assert ch23.patch_labels(mask, 2, 3).tolist() == [[[1]]]
