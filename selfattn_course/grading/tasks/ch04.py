"""Chapter 4, where self-attention is used: the tokens and masks of images, text and recommenders.

References: ``patchify`` is written here as a loop over the patch grid (independent of the
reshape-and-permute a learner usually writes, and of the chapter's version); the masks are built
with :mod:`selfattn_course.masks`, which the learner may not call while their functions run.

Conventions (the chapter's): a token or item id 0 is padding; text is padded on the right,
item histories on the left (as in SASRec); a mask is True where attention is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from selfattn_course import masks
from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import (
    Case,
    FunctionTask,
    Mistake,
    Property,
    joined,
    over_devices,
    over_devices_only,
)
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.verdicts.forbid import MASK_BUILTINS

#: The package's mask builders: the mask tasks ask for them to be written out.


def _padded_ids(
    lengths: Sequence[int], max_len: int, *, seed: int, left: bool = False, device="cpu"
) -> torch.Tensor:
    """``(B, max_len)`` random ids in 1..49, padded with 0 on the right (or the left)."""
    generator = C.seeded_generator(seed)
    ids = torch.randint(1, 50, (len(lengths), max_len), generator=generator)
    real = C.padding_valid(lengths, max_len)
    if left:
        real = real.flip(-1)
    return torch.where(real, ids, torch.zeros_like(ids)).to(device)


def _lower_triangle(length: int, device, diagonal: int = 0) -> torch.Tensor:
    """``(L, L)`` boolean, True where ``j <= i + diagonal``."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril(diagonal)


# --- task 1: patchify -----------------------------------------------------------------------------


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, (H/p)(W/p), C·p·p)``: patch ``(r, c)`` of the grid is token
    ``r·(W/p) + c``, flattened in the order (channel, row in the patch, column in the patch)."""
    batch, _, height, width = images.shape
    tokens = []
    for row in range(height // patch):
        for col in range(width // patch):
            block = images[
                :, :, row * patch : (row + 1) * patch, col * patch : (col + 1) * patch
            ]  # (B, C, p, p)
            tokens.append(block.reshape(batch, -1))
    return torch.stack(tokens, dim=1)


def _same_as_convolution(tokens, inputs) -> bool:
    """A linear map of the tokens equals a convolution with kernel = stride = patch."""
    images, patch = inputs["images"].detach().cpu().double(), inputs["patch"]
    channels = images.shape[1]
    weight = C.randn((3, channels, patch, patch), seed=99, dtype=torch.float64)
    by_conv = F.conv2d(images, weight, stride=patch).flatten(2).transpose(1, 2)  # (B, N, 3)
    by_linear = tokens.detach().cpu().double() @ weight.reshape(3, -1).T
    return bool(torch.allclose(by_linear, by_conv, rtol=1e-9, atol=1e-9))


def _images(shape, seed, dtype, device):
    if dtype == torch.uint8:
        generator = C.seeded_generator(seed)
        pixels = torch.randint(0, 256, tuple(shape), generator=generator, dtype=torch.uint8)
        return pixels.to(device)
    return C.randn(shape, seed=seed, dtype=dtype, device=device)


def _patchify_hidden(dtype, device) -> list[Case]:
    def images(shape, seed):
        return _images(shape, seed, dtype, device)

    return [
        Case("(2, 3, 16, 16), patch 4", {"images": images((2, 3, 16, 16), 42), "patch": 4}),
        Case(
            "not square: (1, 3, 12, 20), patch 4",
            {"images": images((1, 3, 12, 20), 43), "patch": 4},
        ),
        Case(
            "patch 1: every pixel is a token, (2, 2, 3, 5)",
            {"images": images((2, 2, 3, 5), 44), "patch": 1},
        ),
        Case(
            "one patch covers the image: (2, 3, 8, 8), patch 8",
            {"images": images((2, 3, 8, 8), 45), "patch": 8},
        ),
        Case(
            "odd patch size: (3, 1, 6, 9), patch 3",
            {"images": images((3, 1, 6, 9), 46), "patch": 3},
        ),
    ]


def _patchify_split(images, patch, order):
    """Split ``(B, C, H, W)`` into ``(B, C, H/p, p, W/p, p)``, permute by ``order``, flatten."""
    batch, channels, height, width = images.shape
    grid = images.reshape(batch, channels, height // patch, patch, width // patch, patch)
    return grid.permute(*order).reshape(batch, -1, channels * patch * patch)


PATCHIFY = FunctionTask(
    id="ch04.patchify",
    title="patches as tokens",
    points=3,
    statement=r"""
        Write `patchify(images, patch)`: cut images `(B, C, H, W)` into $p \times p$ squares
        (`p = patch`; $H$ and $W$ are multiples of $p$) and flatten each into one token, giving
        `(B, (H/p)·(W/p), C·p·p)`. Read the patches row by row: token $r \cdot (W/p) + c$ is the
        patch in grid row $r$, column $c$. Inside a token keep the order (channel, row, column),
        that of `images[b, :, rows, cols].reshape(-1)`, so that a `Linear` layer on your tokens
        equals ViT's `Conv2d(C, E, kernel_size=p, stride=p)`. Keep the dtype of the images (they
        may be `uint8` pixels). The test compares your tokens with a loop over the grid and with
        such a convolution.
        """,
    reference=patchify,
    forbidden=("selfattn_course.vision.patchify",),
    visible_cases=lambda: [
        Case(
            "by hand: a 4 x 4 image holding 0..15, patch 2: token 0 = [0, 1, 4, 5], "
            "token 1 = [2, 3, 6, 7]",
            {"images": torch.arange(16.0).reshape(1, 1, 4, 4), "patch": 2},
        ),
        Case(
            "3 channels, 8 x 8, patch 4: 4 tokens of 48 values",
            {"images": C.randn((2, 3, 8, 8), seed=40), "patch": 4},
        ),
        Case(
            "not square: 4 x 6, patch 2: a 2 x 3 grid",
            {"images": C.randn((1, 1, 4, 6), seed=41), "patch": 2},
        ),
    ],
    hidden_cases=joined(
        over_devices(_patchify_hidden),
        over_devices_only(
            lambda device: [
                Case(
                    "uint8 pixels (0..255), (2, 3, 8, 8), patch 2",
                    {"images": _images((2, 3, 8, 8), 47, torch.uint8, device), "patch": 2},
                )
            ]
        ),
    ),
    properties=(
        Property(
            "a linear layer on your tokens equals a convolution with kernel_size = stride = patch "
            "on the images (ViT's patch embedding); the values inside a token must be in the "
            "order (channel, row, column)",
            _same_as_convolution,
        ),
    ),
    mistakes=(
        Mistake(
            "each token is flattened as (row, column, channel); the order asked is "
            "(channel, row, column)",
            source="""
                def patchify(images, patch):
                    # 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
                    b, c, h, w = images.shape
                    grid = images.reshape(b, c, h // patch, patch, w // patch, patch)
                    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, -1, patch * patch * c)
                """,
        ),
        Mistake(
            "the patches are read column by column; token r·(W/p) + c is grid row r, column c",
            lambda images, patch: _patchify_split(images, patch, (0, 4, 2, 1, 3, 5)),
        ),
        Mistake(
            "a plain reshape mixes pixels of different patches: split H and W into "
            "(grid, patch) and permute first",
            lambda images, patch: images.reshape(
                images.shape[0],
                (images.shape[2] // patch) * (images.shape[3] // patch),
                images.shape[1] * patch * patch,
            ),
        ),
    ),
)


# --- task 2: padding_masks ------------------------------------------------------------------------


def padding_masks(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``(B, L)``, 0 = padding -> ``valid (B, L)`` (True = real token) and the
    attention mask ``(B, 1, 1, L)`` (every query may attend to the real keys)."""
    valid = tokens != 0
    return valid, masks.key_padding_to_attention(valid)


def _padded_like_unpadded(result, inputs) -> bool:
    """With the mask, each sentence's outputs at its real tokens equal attention over it alone."""
    tokens = inputs["tokens"].cpu()
    mask = result[1].cpu()
    batch, length = tokens.shape
    x = C.randn((batch, 1, length, 4), seed=98, dtype=torch.float64)  # one head
    padded = scaled_dot_product_attention(x, x, x, mask)
    for b in range(batch):
        n = int((tokens[b] != 0).sum())
        if n == 0:  # an empty sentence has no real token to compare
            continue
        alone = scaled_dot_product_attention(x[b, :, :n], x[b, :, :n], x[b, :, :n])
        if not torch.allclose(padded[b, :, :n], alone, rtol=1e-9, atol=1e-12):
            return False
    return True


def _padding_hidden(device) -> list[Case]:
    def tokens(lengths, max_len, seed):
        return {"tokens": _padded_ids(lengths, max_len, seed=seed, device=device)}

    return [
        Case("lengths [6, 2, 4, 6] padded to 6", tokens([6, 2, 4, 6], 6, 51)),
        Case("an empty sentence (length 0): an all-masked row", tokens([3, 0], 3, 52)),
        Case("length-1 sequences (L = 1)", tokens([1, 1, 0], 1, 53)),
        Case("no padding at all", tokens([4, 4], 4, 54)),
        Case(
            "int32 ids, lengths [7, 1, 3] padded to 9",
            {"tokens": tokens([7, 1, 3], 9, 55)["tokens"].to(torch.int32)},
        ),
    ]


PADDING_MASKS = FunctionTask(
    id="ch04.padding_masks",
    title="the padding mask of a batch",
    points=3,
    statement=r"""
        `tokens` `(B, L)` holds the token ids of $B$ sentences, padded on the **right** with id 0
        to the length of the longest. Write `padding_masks(tokens)` returning `(valid, mask)`:

        - `valid` `(B, L)`, boolean, True for a real token;
        - `mask` `(B, 1, 1, L)`, boolean, True where attention is allowed: every query (and
          every head) may attend to the real tokens of its sentence.

        With this mask a padded sentence gets, at its real tokens, the same attention output as
        the sentence on its own, without padding: the test checks that as well.
        """,
    reference=padding_masks,
    visible_cases=lambda: [
        Case(
            "by hand: [[5, 7, 0]] gives valid [[True, True, False]] and mask of shape (1, 1, 1, 3)",
            {"tokens": torch.tensor([[5, 7, 0]])},
        ),
        Case("lengths [3, 5, 1] padded to 5", {"tokens": _padded_ids([3, 5, 1], 5, seed=50)}),
    ],
    hidden_cases=over_devices_only(_padding_hidden),
    properties=(
        Property(
            "with your mask, attention over the padded batch gives each sentence the same "
            "outputs at its real tokens as attention over that sentence alone",
            _padded_like_unpadded,
        ),
    ),
    mistakes=(
        Mistake(
            "the masks are the wrong way round: True marks a real token (id != 0)",
            source="""
                def padding_masks(tokens):
                    pad = tokens == 0  # torch's key_padding_mask convention
                    return pad, pad[:, None, None, :]
                """,
        ),
    ),
    forbidden=MASK_BUILTINS,
)


# --- task 3: next_item_mask -----------------------------------------------------------------------


def next_item_mask(history: torch.Tensor) -> torch.Tensor:
    """Left-padded item ids ``(B, L)``, 0 = padding -> ``(B, 1, L, L)``, True where key ``j`` is a
    real item and ``j <= i``."""
    valid = history != 0
    return masks.combine(
        masks.key_padding_to_attention(valid),
        masks.causal_mask(history.shape[-1], device=history.device),
    )


def _no_future_keys(mask, _inputs) -> bool:
    length = mask.shape[-1]
    future = torch.ones(length, length, dtype=torch.bool, device=mask.device).triu(1)
    return not bool((mask & future).any())


def _no_padding_keys(mask, inputs) -> bool:
    padding_keys = (inputs["history"] == 0)[:, None, None, :]
    return not bool((mask & padding_keys).any())


def _real_items_see_themselves(mask, inputs) -> bool:
    real = inputs["history"] != 0  # (B, L)
    diagonal = mask.diagonal(dim1=-2, dim2=-1)[:, 0]  # (B, L)
    return bool(diagonal[real].all())


def _next_item_hidden(device) -> list[Case]:
    def history(lengths, max_len, seed):
        return {"history": _padded_ids(lengths, max_len, seed=seed, left=True, device=device)}

    return [
        Case("lengths [7, 2, 5] left-padded to 7", history([7, 2, 5], 7, 61)),
        Case("an empty history (all padding): every row all-masked", history([4, 0], 4, 62)),
        Case("length-1 histories (L = 1), one of them padding", history([1, 0], 1, 63)),
        Case("one user, no padding, L = 9", history([9], 9, 64)),
        Case(
            "int32 ids, lengths [3, 6] left-padded to 6",
            {"history": history([3, 6], 6, 65)["history"].to(torch.int32)},
        ),
    ]


def _next_item_causal_only(history):
    length = history.shape[-1]
    causal = _lower_triangle(length, history.device)
    return causal.expand(history.shape[0], 1, length, length)


NEXT_ITEM_MASK = FunctionTask(
    id="ch04.next_item_mask",
    title="a causal mask for next-item prediction",
    points=3,
    statement=r"""
        A recommender reads item histories `history` `(B, L)`, padded on the **left** with item
        0 (so the most recent item is always last), and predicts at every position the item that
        comes next. Write `next_item_mask(history)` returning a boolean mask `(B, 1, L, L)` that
        is True where position $i$ may attend to position $j$: $j$ is a real item **and**
        $j \le i$. A padding position then sees no key at all (its row is all False); the
        course's attention gives such a row output 0.
        """,
    reference=next_item_mask,
    visible_cases=lambda: [
        Case(
            "by hand: [[0, 4, 9]] (one padding item on the left)",
            {"history": torch.tensor([[0, 4, 9]])},
        ),
        Case(
            "histories of lengths [5, 3, 1], left-padded to 5",
            {"history": _padded_ids([5, 3, 1], 5, seed=60, left=True)},
        ),
    ],
    hidden_cases=over_devices_only(_next_item_hidden),
    properties=(
        Property("no position attends to a later one (j > i)", _no_future_keys),
        Property("no position attends to a padding item (id 0)", _no_padding_keys),
        Property("every real item may attend to itself (the diagonal)", _real_items_see_themselves),
    ),
    mistakes=(
        Mistake(
            "the causal part is reversed: position i may see j <= i (lower triangle, tril)",
            source="""
                def next_item_mask(history):
                    length = history.shape[-1]
                    future = torch.ones(
                        length, length, dtype=torch.bool, device=history.device
                    ).triu()
                    return (history != 0)[:, None, None, :] & future
                """,
        ),
        Mistake(
            "position i may not see itself; the rule is j <= i, not j < i",
            lambda history: (
                (history != 0)[:, None, None, :]
                & _lower_triangle(history.shape[-1], history.device, diagonal=-1)
            ),
        ),
        Mistake(
            "the padding is applied to the queries (rows); it must hide the padding keys "
            "(columns), shape (B, 1, 1, L)",
            lambda history: (
                (history != 0)[:, None, :, None]
                & _lower_triangle(history.shape[-1], history.device)
            ),
        ),
        Mistake(
            "the two masks are combined with OR; a position is allowed only if both allow it (AND)",
            lambda history: (
                (history != 0)[:, None, None, :]
                | _lower_triangle(history.shape[-1], history.device)
            ),
        ),
        Mistake(
            "the padding is missing: AND the causal mask with the real items (B, 1, 1, L)",
            _next_item_causal_only,
        ),
    ),
    forbidden=MASK_BUILTINS,
)


# --- task 4: inputs_and_targets -------------------------------------------------------------------


def inputs_and_targets(history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L) -> (B, L-1), (B, L-1)``: position ``t`` of the inputs predicts item ``t + 1``."""
    return history[:, :-1], history[:, 1:]


INPUTS_AND_TARGETS = FunctionTask(
    id="ch04.inputs_and_targets",
    title="inputs and targets",
    points=1,
    statement=r"""
        In training, position $t$ of the inputs predicts the item at position $t + 1$ of the
        history. Write `inputs_and_targets(history)` returning `(inputs, targets)`, each
        `(B, L-1)`. (Targets that are padding, item 0, are skipped by the loss with
        `ignore_index=0`.)
        """,
    reference=inputs_and_targets,
    visible_cases=lambda: [
        Case(
            "by hand: [[0, 0, 3, 7, 9]] gives inputs [[0, 0, 3, 7]] and targets [[0, 3, 7, 9]]",
            {"history": torch.tensor([[0, 0, 3, 7, 9]])},
        ),
        Case(
            "lengths [6, 2] left-padded to 6",
            {"history": _padded_ids([6, 2], 6, seed=70, left=True)},
        ),
    ],
    hidden_cases=over_devices_only(
        lambda device: [
            Case(
                "lengths [8, 3, 5] left-padded to 8",
                {"history": _padded_ids([8, 3, 5], 8, seed=71, left=True, device=device)},
            ),
            Case(
                "L = 2: one input, one target",
                {"history": _padded_ids([2, 1], 2, seed=72, left=True, device=device)},
            ),
        ]
    ),
    mistakes=(
        Mistake(
            "inputs and targets are swapped: the inputs are items 0..L-2, the targets items 1..L-1",
            source="""
                def inputs_and_targets(history):
                    return history[:, 1:], history[:, :-1]
                """,
        ),
    ),
)


TASKS = [PATCHIFY, PADDING_MASKS, NEXT_ITEM_MASK, INPUTS_AND_TARGETS]
