"""Chapter 15's graded tasks (selfattn_course/grading/tasks/ch15.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 15 can: each reference
against an independent computation (by hand, a loop, a model's attention), one property per
test.
"""

from __future__ import annotations

import torch

from selfattn_course.grading.tasks import ch15
from selfattn_course.seq2seq import TinyTranslator


def test_decoder_masks_by_hand():
    self_mask, cross_mask = ch15.decoder_masks(torch.tensor([2, 3]), torch.tensor([3, 1]))
    lower = torch.ones(3, 3, dtype=torch.bool).tril()
    only_first = torch.tensor([[1, 0, 0]] * 3, dtype=torch.bool)
    assert torch.equal(self_mask[:, 0], torch.stack([lower, only_first]))
    assert torch.equal(cross_mask[0, 0], torch.tensor([[1, 1, 0]] * 3, dtype=torch.bool))
    assert bool(cross_mask[1].all())


def test_decoder_masks_equal_a_loop_over_every_entry():
    src, tgt = torch.tensor([4, 1, 3]), torch.tensor([2, 5, 3])
    self_mask, cross_mask = ch15.decoder_masks(src, tgt)
    for b in range(3):
        for i in range(5):
            for j in range(5):
                assert bool(self_mask[b, 0, i, j]) == (j <= i and j < int(tgt[b]))
            for j in range(4):
                assert bool(cross_mask[b, 0, i, j]) == (j < int(src[b]))


def test_with_the_cross_mask_padding_the_source_leaves_the_decoder_unchanged():
    torch.manual_seed(0)
    model = TinyTranslator(10, d_model=8, num_heads=2, d_ff=16).eval()
    src = torch.tensor([[4, 5, 6, 0, 0], [4, 5, 6, 7, 8]])
    lengths = torch.tensor([3, 5])
    queries = model.embed(torch.tensor([[1, 7, 8], [1, 8, 9]]))
    _, cross = ch15.decoder_masks(lengths, torch.tensor([3, 3]))
    attention = model.decoder[0].cross_attn
    out, _ = attention(queries, model.encode(src, lengths), mask=cross)
    short, _ = attention(queries[:1], model.encode(src[:1, :3], lengths[:1]))
    torch.testing.assert_close(out[:1], short)


def test_greedy_tokens_by_hand():
    table = ch15._chain_table()
    tokens = ch15.greedy_tokens(table, torch.tensor([5, 1, 3]), 2, 5)
    expected = torch.tensor([[2, 0, 0, 0, 0], [3, 4, 2, 0, 0], [4, 2, 0, 0, 0]])
    assert torch.equal(tokens, expected)


def test_greedy_tokens_follow_a_python_loop_per_sentence():
    table = ch15._table(7, seed=5)
    start = torch.tensor([1, 4, 6])
    tokens = ch15.greedy_tokens(table, start, 2, 9)
    for b, first in enumerate(start.tolist()):
        last, row, done = first, [], False
        for _ in range(9):
            if done:
                row.append(0)
                continue
            last = int(table[last].argmax())
            row.append(last)
            done = last == 2
        assert tokens[b].tolist() == row


def test_scores_without_cache_is_the_sum_of_the_causal_triangles():
    total = sum(int(torch.ones(t, t).tril().sum()) for t in range(1, ch15.GENERATED_TOKENS + 1))
    assert ch15.SCORES_WITHOUT_CACHE.expected == total == 1540  # 20·21·22/6
