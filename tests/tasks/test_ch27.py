"""Chapter 27's graded tasks (selfattn_course/grading/tasks/ch27.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 27 can: each reference
against an independent computation (the package's FLOP counts, a loop over a padded grid).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from selfattn_course import costs
from selfattn_course.grading.tasks import ch27


def test_score_share_matches_the_package_flop_counts_of_a_block():
    lengths = np.array([1, 16, 100, 3072, 50000])
    d = 512
    mixing = costs.attention_mixing_flops(lengths, d)
    block = costs.attention_layer_flops(lengths, d) + 16 * lengths * d**2  # + FFN d -> 4d -> d
    expected = torch.tensor(mixing / block, dtype=torch.float64)
    got = ch27.score_share(torch.tensor(lengths, dtype=torch.float64), d)
    torch.testing.assert_close(got, expected)


def test_score_share_is_half_at_six_d_and_by_hand_at_sixteen():
    n = torch.tensor([16.0, 3072.0], dtype=torch.float64)
    torch.testing.assert_close(
        ch27.score_share(n, 512), torch.tensor([16 / 3088, 0.5], dtype=torch.float64)
    )


def test_score_share_keeps_shape_dtype_and_device():
    n = torch.ones(2, 3, dtype=torch.float32)
    got = ch27.score_share(n, 8)
    assert got.shape == (2, 3) and got.dtype == torch.float32 and got.device == n.device


def test_equal_cost_length_balances_the_package_flop_counts():
    n, d = ch27.EQUAL_COST_LENGTH.expected, ch27.EQUAL_COST_WIDTH
    rest = costs.attention_layer_flops(n, d) - costs.attention_mixing_flops(n, d) + 16 * n * d**2
    assert costs.attention_mixing_flops(n, d) == rest


def test_padding_waste_counts_the_padded_score_grid_cell_by_cell():
    lengths = [3, 1, 4, 1, 5]
    longest = max(lengths)
    wasted = 0
    for length in lengths:
        for query in range(longest):
            for key in range(longest):
                wasted += query >= length or key >= length
    assert math.isclose(ch27.padding_waste(lengths), wasted / (len(lengths) * longest**2))


def test_padding_waste_is_zero_for_equal_lengths():
    assert ch27.padding_waste([7, 7, 7]) == 0.0
