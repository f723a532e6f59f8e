"""Chapter 17's graded tasks (selfattn_course/grading/tasks/ch17.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 17 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch17


def test_add_knowledge_mean_averages_each_examples_existing_entries_by_hand():
    text = torch.zeros(2, 1, 2)
    knowledge = torch.tensor([[[2.0, 2.0], [4.0, 4.0]], [[1.0, 3.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    out = ch17.add_knowledge_mean(text, knowledge, mask)
    # example 0: mean of [2, 2] and [4, 4] = [3, 3]; example 1: [1, 3] alone
    torch.testing.assert_close(out, torch.tensor([[[3.0, 3.0]], [[1.0, 3.0]]]))


def test_add_knowledge_mean_adds_nothing_to_an_example_without_knowledge():
    text = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    knowledge = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[True] * 5, [False] * 5])
    out = ch17.add_knowledge_mean(text, knowledge, mask)
    torch.testing.assert_close(out[1], text[1])
    torch.testing.assert_close(out[0], text[0] + knowledge[0].mean(dim=0))


def test_knowledge_cross_attention_matches_torch_multihead_attention_with_inverted_mask():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 4, generator=generator, dtype=torch.float64)
    knowledge = torch.randn(3, 5, 4, generator=generator, dtype=torch.float64)
    w = [torch.randn(4, 4, generator=generator, dtype=torch.float64) for _ in range(3)]
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [False, True] * 2 + [True]])
    layer = torch.nn.MultiheadAttention(4, 1, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        layer.in_proj_weight.copy_(torch.cat([w[0].T, w[1].T, w[2].T]))
        layer.out_proj.weight.copy_(torch.eye(4, dtype=torch.float64))
    expected, _ = layer(x, knowledge, knowledge, key_padding_mask=~mask)  # True = blocked there
    torch.testing.assert_close(ch17.knowledge_cross_attention(x, knowledge, mask, *w), expected)


def test_knowledge_cross_attention_gives_zero_for_an_example_without_knowledge():
    x, knowledge = torch.ones(2, 3, 2), torch.ones(2, 4, 2)
    mask = torch.tensor([[True] * 4, [False] * 4])
    out = ch17.knowledge_cross_attention(
        x, knowledge, mask, torch.eye(2), torch.eye(2), torch.eye(2)
    )
    torch.testing.assert_close(out[1], torch.zeros(3, 2))


def test_retrieve_then_attend_matches_a_loop_over_the_queries():
    generator = torch.Generator().manual_seed(3)
    queries = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    keys = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    values = torch.randn(10, 2, generator=generator, dtype=torch.float64)
    out = ch17.retrieve_then_attend(queries, keys, values, 3)
    for b in range(2):
        for i in range(3):
            q = queries[b, i]
            best = sorted(range(10), key=lambda j: -float(q @ keys[j]))[:3]
            exps = [math.exp(float(q @ keys[j]) / 2.0) for j in best]  # sqrt(d) = 2
            expected = sum(e / sum(exps) * values[j] for e, j in zip(exps, best, strict=True))
            torch.testing.assert_close(out[b, i], expected)


def test_transe_answer_worked_out_by_hand():
    # h + r = (1, 1); distances: t0 1, t1 sqrt(0.04 + 0.01), t2 1, t3 sqrt(2)
    index, distance = ch17.TRANSE_BEST_TAIL.expected
    assert index == 1
    assert math.isclose(distance, math.sqrt(0.05), rel_tol=1e-6)
