"""Chapter 6's graded tasks (selfattn_course/grading/tasks/ch06.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 6 can: each reference against an
independent computation (by hand, a loop over positions, counting positions), one property per
test.
"""

from __future__ import annotations

import math

import torch

from selfattn_course.grading.tasks import ch06


def test_conv1d_is_a_cross_correlation_computed_by_hand():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    weight = torch.tensor([[[1.0, 0.0, -1.0]]])
    # y[i] = 1·x[i] + 0·x[i+1] - 1·x[i+2]: 1 - 3 and 2 - 4, no flip of the kernel
    torch.testing.assert_close(ch06.conv1d(x, weight), torch.tensor([[[-2.0, -2.0]]]))


def test_conv1d_matches_a_loop_over_positions_taps_and_channels():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 11, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, generator=generator, dtype=torch.float64)
    dilation = 2
    length = 11 - dilation * 2
    looped = torch.zeros(2, 4, length, dtype=torch.float64)
    for b in range(2):
        for o in range(4):
            for i in range(length):
                looped[b, o, i] = bias[o] + sum(
                    weight[o, c, t] * x[b, c, i + t * dilation] for c in range(3) for t in range(3)
                )
    torch.testing.assert_close(ch06.conv1d(x, weight, bias, dilation=dilation), looped)


def test_receptive_field_counts_the_inputs_a_stack_reads():
    # follow the positions back from one output: each layer of dilation r adds taps r apart
    def seen(k, dilations):
        positions = {0}
        for dilation in reversed(dilations):
            positions = {p + t * dilation for p in positions for t in range(k)}
        return len(positions)

    for k, dilations in [(3, [1]), (3, [1] * 10), (2, [1, 2, 4, 8]), (3, [1, 3, 9]), (5, [1, 2])]:
        assert ch06.receptive_field(k, dilations) == seen(k, dilations)
    assert ch06.receptive_field(3, []) == 1


def test_layers_to_connect_are_the_fewest_that_cover_the_sequence():
    n, k = ch06.CONNECT_N, ch06.CONNECT_K
    plain, dilated = ch06.LAYERS_TO_CONNECT_EXPECTED
    assert 1 + plain * (k - 1) >= n > 1 + (plain - 1) * (k - 1)  # 1001 >= 1000 > 999
    assert k**dilated >= n > k ** (dilated - 1)  # 2187 >= 1000 > 729
    assert (plain, dilated) == (math.ceil(999 / 2), 7)
