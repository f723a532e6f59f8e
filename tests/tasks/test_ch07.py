"""Chapter 7's graded tasks (selfattn_course/grading/tasks/ch07.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 7 can: each reference
against an independent computation (by hand, a loop, torch's FLOP counter, the package's
``costs``), one property per test.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from selfattn_course import costs
from selfattn_course.grading.tasks import ch07


def _counted_flops(layer, inputs) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(inputs)
    return counter.get_total_flops()


def test_conv1d_flops_by_hand_and_as_the_package_counts_them():
    assert ch07.conv1d_flops(2, 3, 1) == 36  # 2 positions · 1 tap · 2·3·3
    assert ch07.conv1d_flops(100, 64, 5) == costs.conv1d_flops(100, 64, 5)


def test_conv1d_flops_equal_torchs_count_of_a_same_padded_conv1d():
    layer = nn.Conv1d(16, 16, kernel_size=5, padding=2)
    assert _counted_flops(layer, torch.zeros(1, 16, 40)) == ch07.conv1d_flops(40, 16, 5)


def test_conv2d_flops_equal_torchs_count_of_a_same_padded_conv2d():
    layer = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    counted = _counted_flops(layer, torch.zeros(1, 3, 10, 12))
    assert counted == ch07.conv2d_flops(10, 12, 3, 3, 8) == 2 * 10 * 12 * 9 * 3 * 8


def test_the_crossover_is_the_largest_length_where_the_mixing_costs_no_more_than_the_conv():
    d, k = ch07.CROSSOVER_WIDTH, ch07.CROSSOVER_KERNEL
    n = ch07._mixing_crossover(d, k)
    assert costs.attention_mixing_flops(n, d) <= costs.conv1d_flops(n, d, k)
    assert costs.attention_mixing_flops(n + 1, d) > costs.conv1d_flops(n + 1, d, k)


def test_circular_conv1d_is_a_loop_over_positions_and_taps():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, 5, generator=generator, dtype=torch.float64)
    n, k = 6, 5
    by_loop = torch.zeros(2, n, 4, dtype=torch.float64)
    for i in range(n):
        for j in range(k):
            by_loop[:, i] += x[:, (i + j - k // 2) % n] @ weight[:, :, j].T
    torch.testing.assert_close(ch07.circular_conv1d(x, weight), by_loop)


def test_circular_conv1d_is_translation_equivariant():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, 10, 2, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 2, 3, generator=generator, dtype=torch.float64)
    for shift in (1, 4, -3):
        torch.testing.assert_close(
            ch07.circular_conv1d(torch.roll(x, shift, dims=-2), weight),
            torch.roll(ch07.circular_conv1d(x, weight), shift, dims=-2),
        )


def test_weights_over_activations_counts_numbers():
    heads, n, d = ch07.RATIO_HEADS, ch07.RATIO_LENGTH, ch07.RATIO_WIDTH
    weights, activations = heads * n * n, n * d  # per example
    assert ch07.WEIGHTS_OVER_ACTIVATIONS.expected == weights / activations == 64
