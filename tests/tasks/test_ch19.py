"""Chapter 19's graded tasks (selfattn_course/grading/tasks/ch19.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 19 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from selfattn_course.grading.tasks import ch19


def test_padding_mask_from_lengths_by_hand():
    by_hand = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(ch19.padding_mask_from_lengths(torch.tensor([3, 5]), 5), by_hand)


def test_causal_bottom_right_matches_a_loop_over_positions():
    lq, lk = 3, 7
    by_loop = torch.zeros(lq, lk, dtype=torch.bool)
    for i in range(lq):
        position = lk - lq + i  # query i is the (lk - lq + i)-th token
        for j in range(lk):
            by_loop[i, j] = j <= position
    assert torch.equal(ch19.causal_bottom_right(lq, lk), by_loop)


def test_causal_bottom_right_equals_torch_tril_with_the_offset():
    assert torch.equal(
        ch19.causal_bottom_right(2, 5), torch.ones(2, 5, dtype=torch.bool).tril(diagonal=3)
    )


def test_prefix_lm_by_hand():
    by_hand = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(ch19.prefix_lm(4, 2), by_hand)


def test_prefix_lm_is_a_full_block_then_causal():
    mask = ch19.prefix_lm(6, 3)
    assert bool(mask[:3, :3].all()) and not bool(mask[:3, 3:].any())
    assert torch.equal(mask[3:, 3:], torch.ones(3, 3, dtype=torch.bool).tril())


def test_masked_attention_matches_torch_on_rows_with_an_allowed_key():
    generator = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 2, 5, 8, generator=generator, dtype=torch.float64).unbind(0)
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    mask = valid[:, None, None, :] & torch.ones(5, 5, dtype=torch.bool).tril()
    torch.testing.assert_close(
        ch19.masked_attention(q, k, v, mask), F.scaled_dot_product_attention(q, k, v, mask)
    )


def test_masked_attention_by_hand_on_one_query():
    # one query, keys with scores 0 and ln 3 (after scaling), third key blocked:
    # weights 1/4 and 3/4, so the output is 1/4 * 1 + 3/4 * 5 = 4
    q = torch.tensor([[1.0]])
    k = torch.tensor([[0.0], [math.log(3.0)], [100.0]])
    v = torch.tensor([[1.0], [5.0], [-1000.0]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(ch19.masked_attention(q, k, v, mask), torch.tensor([[4.0]]))


def test_masked_attention_gives_zero_for_a_query_with_no_allowed_key():
    q, k, v = torch.ones(1, 2, 4), torch.ones(1, 3, 4), torch.ones(1, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False]])
    out = ch19.masked_attention(q, k, v, mask)
    assert torch.equal(out[0, 0], torch.zeros(4))
    torch.testing.assert_close(out[0, 1], torch.ones(4))


def test_keys_seen_matches_the_combined_mask():
    from selfattn_course import masks

    mask = masks.combine(
        masks.key_padding_to_attention(masks.padding_mask([4], 6)), masks.causal_mask(6).numpy()
    )
    assert set(mask[0, 0, 5].nonzero()[0].tolist()) == ch19.KEYS_SEEN.expected
