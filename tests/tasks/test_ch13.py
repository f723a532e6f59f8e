"""Chapter 13's graded tasks (selfattn_course/grading/tasks/ch13.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 13 can: each reference
against an independent computation (by hand, a loop, torch's convolution and FLOP counter),
one property per test.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from selfattn_course import costs
from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.tasks import ch13


def test_patchify_by_hand():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    expected = torch.tensor([[[0.0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]])
    torch.testing.assert_close(ch13.patchify(image, 2), expected)


def test_a_linear_map_of_the_patches_is_a_conv2d_with_kernel_equal_to_stride():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 8, 12, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, 3, 4, 4, generator=generator, dtype=torch.float64)
    by_conv = F.conv2d(images, weight, stride=4).flatten(2).transpose(1, 2)
    torch.testing.assert_close(ch13.patchify(images, 4) @ weight.reshape(5, -1).T, by_conv)


def test_window_partition_is_a_loop_over_windows():
    x = torch.randn(2, 6, 9, 4, generator=torch.Generator().manual_seed(1))
    w = 3
    by_loop = torch.stack(
        [
            x[:, r * w : (r + 1) * w, c * w : (c + 1) * w].reshape(2, w * w, 4)
            for r in range(2)
            for c in range(3)
        ],
        dim=1,
    )
    torch.testing.assert_close(ch13.window_partition(x, w), by_loop, rtol=0, atol=0)


def test_window_mixing_flops_by_hand_and_by_formula():
    assert ch13.window_mixing_flops(2, 2, 1, 3) == 48  # four windows of one token: 4·1·1·3 each
    assert ch13.window_mixing_flops(56, 56, 7, 96) == 4 * 56 * 56 * 7**2 * 96  # 4·H·W·w²·d


def test_window_mixing_flops_equal_torchs_count_of_attention_in_each_window():
    height, width, window, d = 8, 12, 4, 16
    tokens = torch.zeros(1, height, width, d)
    windows = ch13.window_partition(tokens, window)  # (1, nW, w², d)
    with FlopCounterMode(display=False) as counter:
        scores = windows @ windows.transpose(-2, -1)
        scores.softmax(dim=-1) @ windows
    assert counter.get_total_flops() == ch13.window_mixing_flops(height, width, window, d)
    assert scaled_dot_product_attention(windows, windows, windows).shape == windows.shape


def test_window_attention_equals_global_attention_when_one_window_covers_the_map():
    assert ch13.window_mixing_flops(8, 8, 8, 16) == costs.attention_mixing_flops(64, 16)


def test_pixels_over_patches_is_the_patch_side_to_the_fourth():
    assert ch13._pixels_over_patches(224, 16) == 16**4 == (50_176 / 196) ** 2
    assert ch13.PIXELS_OVER_PATCHES.expected == 65_536
