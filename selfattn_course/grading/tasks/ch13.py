"""Chapter 13, images as tokens: patches, windows, and what attention over them costs.

The references of the two shape tasks are the package's :func:`selfattn_course.vision.patchify`
and :func:`selfattn_course.vision.window_partition` (``tests/test_vision.py`` checks them against
``Conv2d``, ``F.unfold`` and a loop over windows); the learner may call neither, nor
``F.unfold`` / ``F.fold`` or torch's convolutions, which would do the cutting for them. The FLOP
counts follow the course's convention (:mod:`selfattn_course.costs`): a multiply-add is 2 FLOPs,
only matrix products count.
"""

from __future__ import annotations

import torch

from selfattn_course import costs, vision
from selfattn_course.grading.spec import (
    AnswerTask,
    Case,
    FunctionTask,
    Mistake,
    Property,
    over_devices,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.spec.predicates import positive, whole_number
from selfattn_course.grading.verdicts.forbid import CONV_BUILTINS

#: What the shape tasks may not call: the package's answers and torch's ready-made cutting.
CUTTING_BUILTINS: tuple[str, ...] = (
    "selfattn_course.vision.patchify",
    "selfattn_course.vision.unpatchify",
    "selfattn_course.vision.window_partition",
    "selfattn_course.vision.window_reverse",
    "torch.nn.functional.unfold",
    "torch.nn.functional.fold",
    *CONV_BUILTINS,
)

# --- task 1: patchify -----------------------------------------------------------------------------


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, N, C·p·p)``: :func:`selfattn_course.vision.patchify`."""
    return vision.patchify(images, patch)


def _image_case(name, batch, channels, height, width, patch, seed, dtype=None, device="cpu"):
    images = C.randn(
        (batch, channels, height, width), seed=seed, dtype=dtype or torch.float32, device=device
    )
    return Case(name, {"images": images, "patch": patch})


def _patchify_hidden(dtype, device) -> list[Case]:
    def case(name, *shape, seed):
        return _image_case(name, *shape, seed=seed, dtype=dtype, device=device)

    return [
        case("random (2, 3, 8, 8), p = 4", 2, 3, 8, 8, 4, seed=20),
        case("not square: (1, 2, 6, 9), p = 3", 1, 2, 6, 9, 3, seed=21),
        case("one patch: (2, 3, 5, 5), p = 5", 2, 3, 5, 5, 5, seed=22),
        case("p = 1: every pixel a token", 1, 4, 3, 2, 1, seed=23),
        case("one channel, tall: (3, 1, 12, 4), p = 2", 3, 1, 12, 4, 2, seed=24),
    ]


def _patchify_shape(result, inputs) -> bool:
    batch, channels, height, width = inputs["images"].shape
    patch = inputs["patch"]
    return tuple(result.shape) == (
        batch,
        (height // patch) * (width // patch),
        channels * patch * patch,
    )


PATCHIFY = FunctionTask(
    id="ch13.patchify",
    title="cut an image into patch tokens",
    points=3,
    statement=r"""
        Write `patchify(images, patch)`: cut `images` of shape `(B, C, H, W)` into
        non-overlapping $p \times p$ patches ($p$ = `patch` divides $H$ and $W$) and flatten
        each, giving `(B, N, C·p·p)` with $N = (H/p)(W/p)$ tokens. Number the patches row by
        row over the grid (token $r \cdot W/p + c$ is the patch in grid row $r$, column $c$),
        and flatten each patch in the order `(C, p, p)`, the layout of a `Conv2d` weight:
        `out[b, n, ch·p·p + i·p + j] = images[b, ch, r·p + i, c·p + j]`. With this order a
        linear layer on the tokens is exactly a `Conv2d` with `kernel_size = stride = p`.
        Use `reshape` and `permute`; do not call `F.unfold`, torch's convolutions or the
        package's `selfattn_course.vision`.
        """,
    reference=patchify,
    visible_cases=lambda: [
        Case(
            "by hand: arange(16) as a 4 x 4 image, p = 2 gives [[0, 1, 4, 5], [2, 3, 6, 7], ...]",
            {"images": torch.arange(16.0).reshape(1, 1, 4, 4), "patch": 2},
        ),
        _image_case("random (2, 3, 4, 6), p = 2", 2, 3, 4, 6, 2, seed=1),
    ],
    hidden_cases=over_devices(_patchify_hidden),
    properties=(Property("the output has shape (B, (H/p)·(W/p), C·p·p)", _patchify_shape),),
    mistakes=(
        Mistake(
            "you reshaped without moving the axes: a row of pixels is not a patch; split H and "
            "W into (H/p, p) and (W/p, p), then bring the two grid axes forward",
            source="""
                def patchify(images, patch):
                    b, c, h, w = images.shape
                    return images.reshape(b, (h // patch) * (w // patch), c * patch * patch)
                """,
        ),
        Mistake(
            "each patch is flattened channels last, (p, p, C); the statement asks for (C, p, p), "
            "the layout of a Conv2d weight",
            source="""
                def patchify(images, patch):
                    b, c, h, w = images.shape
                    grid = images.reshape(b, c, h // patch, patch, w // patch, patch)
                    grid = grid.permute(0, 2, 4, 3, 5, 1)
                    return grid.reshape(b, -1, c * patch * patch)
                """,
        ),
        Mistake(
            "the patches are numbered column by column; number them row by row over the grid",
            source="""
                def patchify(images, patch):
                    b, c, h, w = images.shape
                    grid = images.reshape(b, c, h // patch, patch, w // patch, patch)
                    grid = grid.permute(0, 4, 2, 1, 3, 5)
                    return grid.reshape(b, -1, c * patch * patch)
                """,
        ),
    ),
    forbidden=CUTTING_BUILTINS,
)


# --- task 2: window_partition ---------------------------------------------------------------------


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, H, W, C) -> (B, nW, w·w, C)``: :func:`selfattn_course.vision.window_partition`."""
    return vision.window_partition(x, window)


def _map_case(name, batch, height, width, channels, window, seed, dtype=None, device="cpu"):
    x = C.randn(
        (batch, height, width, channels), seed=seed, dtype=dtype or torch.float32, device=device
    )
    return Case(name, {"x": x, "window": window})


def _windows_hidden(dtype, device) -> list[Case]:
    def case(name, *shape, seed):
        return _map_case(name, *shape, seed=seed, dtype=dtype, device=device)

    return [
        case("random (2, 8, 8, 3), w = 4", 2, 8, 8, 3, 4, seed=30),
        case("not square: (1, 6, 9, 2), w = 3", 1, 6, 9, 2, 3, seed=31),
        case("one window: (2, 5, 5, 4), w = 5", 2, 5, 5, 4, 5, seed=32),
        case("w = 1: every pixel its own window", 1, 3, 2, 5, 1, seed=33),
        case("wide: (2, 4, 12, 1), w = 2", 2, 4, 12, 1, 2, seed=34),
    ]


def _windows_shape(result, inputs) -> bool:
    batch, height, width, channels = inputs["x"].shape
    window = inputs["window"]
    count = (height // window) * (width // window)
    return tuple(result.shape) == (batch, count, window * window, channels)


WINDOW_PARTITION = FunctionTask(
    id="ch13.window_partition",
    title="group a feature map into windows",
    points=3,
    statement=r"""
        Write `window_partition(x, window)` for Swin's window attention: `x` is a channels-last
        map `(B, H, W, C)` and $w$ = `window` divides $H$ and $W$. Return `(B, nW, w·w, C)` with
        $n_W = (H/w)(W/w)$ windows, numbered row by row over the grid of windows, and the
        $w^2$ pixels of each window in row-major order:
        `out[b, r·(W/w) + c, i·w + j] = x[b, r·w + i, c·w + j]`. Attention over the last two
        dimensions is then attention inside each window. Do not call `F.unfold` or the
        package's `selfattn_course.vision`.
        """,
    reference=window_partition,
    visible_cases=lambda: [
        Case(
            "by hand: arange(16) as a (1, 4, 4, 1) map, w = 2: first window [0, 1, 4, 5]",
            {"x": torch.arange(16.0).reshape(1, 4, 4, 1), "window": 2},
        ),
        _map_case("random (2, 4, 6, 3), w = 2", 2, 4, 6, 3, 2, seed=2),
    ],
    hidden_cases=over_devices(_windows_hidden),
    properties=(Property("the output has shape (B, (H/w)·(W/w), w·w, C)", _windows_shape),),
    mistakes=(
        Mistake(
            "you reshaped without moving the axes: that groups w·w consecutive pixels of a row "
            "(a strip), not a w x w square",
            source="""
                def window_partition(x, window):
                    b, h, w, c = x.shape
                    return x.reshape(b, (h // window) * (w // window), window * window, c)
                """,
        ),
        Mistake(
            "the pixels inside a window are in column-major order; keep row-major (i·w + j)",
            source="""
                def window_partition(x, window):
                    b, h, w, c = x.shape
                    grid = x.reshape(b, h // window, window, w // window, window, c)
                    grid = grid.permute(0, 1, 3, 4, 2, 5)
                    return grid.reshape(b, -1, window * window, c)
                """,
        ),
        Mistake(
            "the windows are numbered column by column; number them row by row over the grid",
            source="""
                def window_partition(x, window):
                    b, h, w, c = x.shape
                    grid = x.reshape(b, h // window, window, w // window, window, c)
                    grid = grid.permute(0, 3, 1, 2, 4, 5)
                    return grid.reshape(b, -1, window * window, c)
                """,
        ),
    ),
    forbidden=CUTTING_BUILTINS,
)


# --- task 3: window_mixing_flops ------------------------------------------------------------------


def window_mixing_flops(height: int, width: int, window: int, d: int) -> int:
    """FLOPs of ``Q Kᵀ`` and ``A V`` inside every ``w x w`` window of an ``H x W`` map of width
    ``d``: ``(H/w)(W/w)`` windows of ``4(w²)²d``, i.e. ``4·H·W·w²·d``."""
    windows = (height // window) * (width // window)
    return windows * costs.attention_mixing_flops(window * window, d)


WINDOW_MIXING_FLOPS = FunctionTask(
    id="ch13.window_mixing_flops",
    title="FLOPs of window attention",
    points=2,
    statement=r"""
        Write `window_mixing_flops(height, width, window, d)`: the FLOPs of the mixing
        ($Q K^\top$ and $A V$) of window attention over an `height` $\times$ `width` map of
        tokens of width $d$, cut into non-overlapping windows of $w \times w$ tokens ($w$ =
        `window` divides both sides); each token attends to the $w^2$ tokens of its own window.
        Count 2 FLOPs per multiply-add; over $n$ tokens the mixing costs $4n^2d$. Return a
        whole number.
        """,
    reference=window_mixing_flops,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: 2 x 2 map, w = 1, d = 3: four windows of 4·1·3 gives 48",
            height=2,
            width=2,
            window=1,
            d=3,
        ),
        plain_numbers(
            "Swin's first stage: 56 x 56, w = 7, d = 96", height=56, width=56, window=7, d=96
        ),
    ],
    hidden_cases=lambda _devices: [
        plain_numbers("28 x 28, w = 7, d = 192", height=28, width=28, window=7, d=192),
        plain_numbers("one window covers the map: 8 x 8, w = 8", height=8, width=8, window=8, d=16),
        plain_numbers("not square: 12 x 36, w = 6, d = 32", height=12, width=36, window=6, d=32),
        plain_numbers("one token: 1 x 1, w = 1, d = 1", height=1, width=1, window=1, d=1),
    ],
    properties=(Property("the count is a positive whole number", whole_number),),
    mistakes=(
        Mistake(
            "that is global attention over all H·W tokens, 4(HW)²d; in window attention each "
            "token only meets the w² tokens of its window",
            source="""
                def window_mixing_flops(height, width, window, d):
                    n = height * width
                    return 4 * n * n * d
                """,
        ),
        Mistake(
            "you counted one window only; there are (H/w)·(W/w) windows",
            lambda height, width, window, d: 4 * window**4 * d,
        ),
        Mistake(
            "each token meets w² keys, not w: the cost is 4·H·W·w²·d",
            lambda height, width, window, d: 4 * height * width * window * d,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP, or only one of Q Kᵀ and A V",
            lambda height, width, window, d: 2 * height * width * window**2 * d,
        ),
    ),
    runner=returns_number,
)


# --- task 4: pixels_over_patches ------------------------------------------------------------------

#: ViT-Base's image and patch sizes.
IMAGE_SIDE = 224
PATCH_SIDE = 16


def _pixels_over_patches(side: int, patch: int) -> float:
    """Weights over every pixel against over every patch: ``(side² / (side/p)²)² = p⁴``."""
    pixels = side * side
    patches = (side // patch) ** 2
    return (pixels / patches) ** 2


PIXELS_OVER_PATCHES = AnswerTask(
    id="ch13.pixels_over_patches",
    title="attention weights over pixels against over patches",
    points=2,
    statement=rf"""
        One attention head runs over a ${IMAGE_SIDE} \times {IMAGE_SIDE}$ image, once with
        every pixel a token and once with every ${PATCH_SIDE} \times {PATCH_SIDE}$ patch a
        token (as in ViT). How many times more numbers does its matrix of attention weights
        $A$ hold over pixels than over patches? Store the number in `pixels_over_patches`.
        """,
    answer_type=Number(rtol=1e-9, atol=0.0),
    expected=_pixels_over_patches(IMAGE_SIDE, PATCH_SIDE),
    properties=(Property("the ratio is positive", positive),),
    mistakes=(
        Mistake(
            "that is the ratio of the numbers of tokens (p² pixels per patch); the weights are "
            "n x n, so the ratio is squared",
            source=f"""
                side, patch = {IMAGE_SIDE}, {PATCH_SIDE}
                pixels_over_patches = side * side / (side // patch) ** 2
                """,
        ),
        Mistake(
            "you compared the side of a patch with the side of a pixel; a patch holds p² "
            "pixels, and the weights grow with the square of the number of tokens",
            float(PATCH_SIDE),
        ),
        Mistake(
            "the ratio is pixels over patches, not the other way round",
            1 / _pixels_over_patches(IMAGE_SIDE, PATCH_SIDE),
        ),
    ),
)


TASKS = [PATCHIFY, WINDOW_PARTITION, WINDOW_MIXING_FLOPS, PIXELS_OVER_PATCHES]
