"""selfattn_course.vision: patches and windows, checked against torch and loops."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from selfattn_course import vision


def test_patchify_by_hand_on_a_4_by_4_image():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # rows [0..3], [4..7], [8..11], [12..15]
    expected = torch.tensor(
        [[[0.0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]
    )  # patches: top-left, top-right, bottom-left, bottom-right
    torch.testing.assert_close(vision.patchify(image, 2), expected)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 4),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    patch=st.integers(1, 4),
    dim=st.integers(1, 6),
)
def test_linear_map_of_patches_equals_conv2d_with_kernel_equal_to_stride(
    batch, channels, rows, cols, patch, dim
):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, channels, rows * patch, cols * patch, generator=generator)
    weight = torch.randn(dim, channels, patch, patch, generator=generator, dtype=torch.float32)
    bias = torch.randn(dim, generator=generator)
    by_conv = F.conv2d(images.double(), weight.double(), bias.double(), stride=patch)
    by_conv = by_conv.flatten(2).transpose(1, 2)  # (B, N, D)
    by_patches = vision.patchify(images.double(), patch) @ weight.double().reshape(dim, -1).T
    torch.testing.assert_close(by_patches + bias.double(), by_conv)


def test_patchify_equals_unfold_with_stride_equal_to_kernel():
    images = torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    by_unfold = F.unfold(images, kernel_size=4, stride=4).transpose(1, 2)
    torch.testing.assert_close(vision.patchify(images, 4), by_unfold)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 4), patch=st.integers(1, 3))
def test_unpatchify_inverts_patchify(rows, cols, patch):
    images = torch.randn(2, 3, rows * patch, cols * patch, generator=torch.Generator())
    patches = vision.patchify(images, patch)
    assert patches.shape == (2, rows * cols, 3 * patch * patch)
    torch.testing.assert_close(
        vision.unpatchify(patches, patch, rows * patch, cols * patch), images, rtol=0, atol=0
    )


def test_patchify_keeps_extra_leading_dimensions():
    images = torch.randn(2, 5, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    out = vision.patchify(images, 2)
    assert out.shape == (2, 5, 4, 12)
    torch.testing.assert_close(out[1, 3], vision.patchify(images[1, 3:4], 2)[0])


def test_patch_that_does_not_divide_the_image_is_an_error():
    with pytest.raises(ValueError, match="not a multiple of patch"):
        vision.patchify(torch.zeros(1, 3, 10, 10), 4)


def _windows_by_loop(x, window):
    batch, height, width, channels = x.shape
    out = []
    for r in range(height // window):
        for c in range(width // window):
            block = x[:, r * window : (r + 1) * window, c * window : (c + 1) * window, :]
            out.append(block.reshape(batch, window * window, channels))
    return torch.stack(out, dim=1)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    window=st.integers(1, 4),
    channels=st.integers(1, 3),
)
def test_window_partition_equals_a_loop_over_windows_and_reverse_inverts_it(
    batch, rows, cols, window, channels
):
    x = torch.randn(batch, rows * window, cols * window, channels, generator=torch.Generator())
    windows = vision.window_partition(x, window)
    torch.testing.assert_close(windows, _windows_by_loop(x, window), rtol=0, atol=0)
    back = vision.window_reverse(windows, window, rows * window, cols * window)
    torch.testing.assert_close(back, x, rtol=0, atol=0)


def test_unshifted_mask_lets_every_pixel_of_a_window_attend_to_every_other():
    mask = vision.shifted_window_mask(8, 4, 2, 0)
    assert mask.shape == (8, 4, 4) and mask.dtype == torch.bool and bool(mask.all())


def test_shifted_mask_by_hand_on_a_4_by_4_map():
    # window 2, shift 1: regions along each axis are rows {0, 1}, {2}, {3}
    mask = vision.shifted_window_mask(4, 4, 2, 1)
    assert bool(mask[0].all())  # top-left window: all in region (0, 0)
    # top-right window: pixels 0, 2 are column 2 (region 1), pixels 1, 3 column 3 (wrapped)
    columns = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]]).bool()
    torch.testing.assert_close(mask[1], columns)
    # bottom-left window: pixels 0, 1 are row 2 (region 1), pixels 2, 3 row 3 (wrapped)
    rows = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]).bool()
    torch.testing.assert_close(mask[2], rows)
    torch.testing.assert_close(mask[3], torch.eye(4, dtype=torch.bool))  # four regions


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(2, 4), cols=st.integers(2, 4), window=st.integers(1, 4), data=st.data())
def test_shifted_mask_allows_exactly_pixels_contiguous_in_the_unshifted_image(
    rows, cols, window, data
):
    shift = data.draw(st.integers(0, window - 1))
    height, width = rows * window, cols * window
    # where each pixel of the shifted map was in the image, window by window
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([(ys + shift) % height, (xs + shift) % width], dim=-1)[None]
    origin = vision.window_partition(coords, window)[0]  # (nW, w·w, 2)
    distance = (origin[:, :, None, :] - origin[:, None, :, :]).abs()
    contiguous = (distance < window).all(dim=-1)
    torch.testing.assert_close(vision.shifted_window_mask(height, width, window, shift), contiguous)


def test_shifted_mask_allows_pixels_near_each_other_before_the_roll():
    # number the pixels, roll as Swin does, and read each pixel's row and column back
    height = width = 8
    window, shift = 4, 2
    labels = torch.arange(height * width).reshape(height, width)
    rolled = torch.roll(labels, (-shift, -shift), dims=(0, 1))
    windows = vision.window_partition(rolled[None, :, :, None], window)[0, :, :, 0]
    rows, cols = windows // width, windows % width
    near = ((rows[:, :, None] - rows[:, None, :]).abs() < window) & (
        (cols[:, :, None] - cols[:, None, :]).abs() < window
    )
    torch.testing.assert_close(vision.shifted_window_mask(height, width, window, shift), near)


def test_shift_must_be_smaller_than_the_window():
    with pytest.raises(ValueError, match="shift"):
        vision.shifted_window_mask(8, 8, 4, 4)
