"""Chapter 12's graded tasks (selfattn_course/grading/tasks/ch12.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 12 can: each reference
against an independent computation (by hand, a loop, the package), one property per test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.encodings import sinusoidal
from selfattn_course.grading.tasks import ch12


def test_sinusoidal_encoding_matches_the_package_at_integer_positions():
    positions = torch.arange(50, dtype=torch.float64)
    torch.testing.assert_close(
        ch12.sinusoidal_encoding(positions, 16), sinusoidal(50, 16, dtype=torch.float64)
    )


def test_sinusoidal_encoding_of_d_2_is_sin_p_and_cos_p_by_hand():
    result = ch12.sinusoidal_encoding(torch.tensor([0.0, 1.0]), 2)
    by_hand = torch.tensor([[0.0, 1.0], [math.sin(1.0), math.cos(1.0)]])
    torch.testing.assert_close(result, by_hand)


def test_rope_rotates_one_pair_by_hand_in_both_layouts():
    x = torch.tensor([[1.0, 0.0]])  # d = 2: both layouts pair feature 0 with feature 1
    by_hand = torch.tensor([[math.cos(2.0), math.sin(2.0)]])  # rotated by p θ_0 = 2
    for interleaved in (True, False):
        torch.testing.assert_close(ch12.rope(x, torch.tensor([2.0]), interleaved), by_hand)


def test_rope_score_depends_only_on_the_difference_of_positions():
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 1, 8, generator=generator, dtype=torch.float64)
    for interleaved in (True, False):
        scores = [
            (
                ch12.rope(q, torch.tensor([m + 3.0]), interleaved)
                * ch12.rope(k, torch.tensor([float(m)]), interleaved)
            ).sum()
            for m in (0, 10, 100)
        ]
        torch.testing.assert_close(scores[0], scores[1])
        torch.testing.assert_close(scores[0], scores[2])


def test_t5_bucket_of_minus_40_is_12_by_hand():
    # 16 buckets per direction, 8 exact: 8 + floor(ln(40/8) / ln(16) * 8) = 8 + floor(4.64) = 12
    assert ch12.T5_BUCKET_OF_40 == 8 + math.floor(math.log(5) / math.log(16) * 8) == 12


def test_alibi_slopes_of_8_heads_are_halvings_by_hand():
    expected = torch.tensor([2.0**-k for k in range(1, 9)], dtype=torch.float64)
    torch.testing.assert_close(ch12.alibi_slope_list(8), expected)


def test_alibi_slopes_of_12_heads_add_every_other_slope_of_16():
    expected = [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    torch.testing.assert_close(
        ch12.alibi_slope_list(12), torch.tensor(expected, dtype=torch.float64)
    )
