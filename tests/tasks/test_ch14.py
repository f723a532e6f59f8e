"""Chapter 14's graded tasks (selfattn_course/grading/tasks/ch14.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 14 can: each reference
against an independent computation (by hand, a loop, a model), one property per test.
"""

from __future__ import annotations

import torch
from torch import nn

from selfattn_course.attention import TransformerBlock
from selfattn_course.grading.tasks import ch14


def test_masked_mean_pool_by_hand_ignores_junk_padding():
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [1e3, -1e3]], [[5.0, 6.0], [7.0, 8.0], [9.0, 1.0]]]
    )
    valid = torch.tensor([[True, True, False], [True, True, True]])
    by_hand = torch.tensor([[2.0, 3.0], [7.0, 5.0]])  # (1+3)/2, (2+4)/2; (5+7+9)/3, (6+8+1)/3
    torch.testing.assert_close(ch14.masked_mean_pool(hidden, valid), by_hand)


def test_masked_mean_pool_of_an_empty_row_is_zero():
    pooled = ch14.masked_mean_pool(torch.randn(1, 4, 3), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(pooled, torch.zeros(1, 3))


def test_macro_f1_by_hand():
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 1])
    # class 0: TP 1, FP 1, FN 0 -> 2/3; class 1: TP 2, FP 0, FN 1 -> 4/5
    expected = (2 / 3 + 4 / 5) / 2
    assert abs(ch14.macro_f1(logits, labels).item() - expected) < 1e-12


def test_macro_f1_counts_an_absent_class_as_zero():
    logits = torch.tensor([[2.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.0]])
    # predictions [0, 0, 1, 0], labels [0, 0, 1, 1]: class 0 -> 4/5, class 1 -> 2/3, class 2 -> 0
    expected = (4 / 5 + 2 / 3 + 0) / 3
    assert abs(ch14.macro_f1(logits, torch.tensor([0, 0, 1, 1])).item() - expected) < 1e-12


def test_macro_f1_matches_precision_and_recall_from_a_confusion_matrix():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(300, 4, generator=g), torch.randint(4, (300,), generator=g)
    predicted = logits.argmax(-1)
    confusion = torch.zeros(4, 4)
    for p, t in zip(predicted.tolist(), labels.tolist(), strict=True):
        confusion[t, p] += 1
    f1s = []
    for c in range(4):
        precision = confusion[c, c] / confusion[:, c].sum()
        recall = confusion[c, c] / confusion[c, :].sum()
        f1s.append(2 * precision * recall / (precision + recall))
    assert abs(ch14.macro_f1(logits, labels).item() - sum(f1s).item() / 4) < 1e-6


def test_order_accuracy_is_what_a_model_without_positions_scores_on_swapped_pairs():
    # any weights: a random encoder without positions gives a text and its swapped twin
    # the same logits, so exactly one of each (opposite-label) pair is right
    torch.manual_seed(0)
    embed, block, head = nn.Embedding(10, 16), TransformerBlock(16, 2, 32), nn.Linear(16, 2)
    g = torch.Generator().manual_seed(1)
    texts = torch.randint(2, 10, (50, 7), generator=g)
    texts[:, 1], texts[:, 4] = 0, 1  # marker 0 before marker 1: label 1
    swapped = texts.clone()
    swapped[:, 1], swapped[:, 4] = 1, 0
    ids = torch.cat([texts, swapped])
    labels = torch.cat([torch.ones(50), torch.zeros(50)]).long()
    with torch.no_grad():
        predicted = head(block(embed(ids)).mean(dim=1)).argmax(-1)
    accuracy = (predicted == labels).double().mean().item()
    assert ch14.ORDER_ACCURACY.expected == (accuracy, accuracy) == (0.5, 0.5)
