"""Chapter 20, video: tubelet tokens, divided space-time attention and what it saves.

The tubelet reference is written here with the package's :func:`selfattn_course.vision.patchify`
(``tests/tasks/test_ch20.py`` checks it against ``Conv3d`` and a loop over tubelets); the learner
may call ``patchify`` too, but not ``F.unfold`` or torch's convolutions. The time-attention
reference is the package's :func:`selfattn_course.attention.scaled_dot_product_attention` over
the frames of each spatial position; the learner may call neither it nor torch's attention. The
FLOP count follows the course's convention (:mod:`selfattn_course.costs`): a multiply-add is
2 FLOPs and only the two products of the mixing, ``Q Kᵀ`` and ``A V``, count.
"""

from __future__ import annotations

import torch

from selfattn_course import costs, vision
from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.grading.spec import Case, FunctionTask, Mistake, Property, over_devices
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.calls import returns_number
from selfattn_course.grading.spec.cases import plain_numbers
from selfattn_course.grading.verdicts.forbid import ATTENTION_BUILTINS, CONV_BUILTINS

#: What the tubelet task may not call: torch's ready-made cutting and its convolutions.
TUBELET_BUILTINS: tuple[str, ...] = (
    "torch.nn.functional.unfold",
    "torch.nn.functional.fold",
    "torch.nn.Conv3d.forward",
    *CONV_BUILTINS,
)

# --- task 1: tubelets -----------------------------------------------------------------------------


def tubelets(video: torch.Tensor, t: int, p: int) -> torch.Tensor:
    """``(B, T, C, H, W) -> (B, (T/t)·(H/p)·(W/p), C·t·p·p)``: ViViT's tubelet tokens.

    Token ``i·(H/p)·(W/p) + r·(W/p) + c`` is the tubelet of frames ``i·t .. i·t + t - 1``, grid
    row ``r`` and column ``c``, flattened in the order ``(C, t, p, p)`` (a ``Conv3d`` weight):
    ``out[b, n, ch·t·p·p + k·p·p + a·p + e] = video[b, i·t + k, ch, r·p + a, c·p + e]``.
    """
    batch, frames, channels, height, width = video.shape
    if frames % t:
        raise ValueError(f"the number of frames {frames} is not a multiple of t {t}")
    groups = video.reshape(batch, frames // t, t, channels, height, width)
    groups = groups.transpose(2, 3).reshape(batch, frames // t, channels * t, height, width)
    tokens = vision.patchify(groups, p)  # (B, T/t, S, C·t·p·p), each flattened (C, t, p, p)
    return tokens.reshape(batch, -1, tokens.shape[-1])


def _video_case(name, shape, t, p, seed, dtype=torch.float32, device="cpu"):
    video = C.randn(shape, seed=seed, dtype=dtype, device=device)
    return Case(name, {"video": video, "t": t, "p": p})


def _tubelets_hidden(dtype, device) -> list[Case]:
    def case(name, shape, t, p, seed):
        return _video_case(name, shape, t, p, seed, dtype=dtype, device=device)

    return [
        case("random (2, 4, 3, 8, 8), t = 2, p = 4", (2, 4, 3, 8, 8), 2, 4, seed=20),
        case("not square: (1, 6, 2, 6, 9), t = 3, p = 3", (1, 6, 2, 6, 9), 3, 3, seed=21),
        case("t = 1: frame patches, (2, 3, 3, 4, 4), p = 2", (2, 3, 3, 4, 4), 1, 2, seed=22),
        case("one tubelet: (1, 2, 2, 3, 3), t = 2, p = 3", (1, 2, 2, 3, 3), 2, 3, seed=23),
        case("p = 1, one channel: (3, 4, 1, 2, 3), t = 2", (3, 4, 1, 2, 3), 2, 1, seed=24),
    ]


def _tubelets_shape(result, inputs) -> bool:
    batch, frames, channels, height, width = inputs["video"].shape
    t, p = inputs["t"], inputs["p"]
    tokens = (frames // t) * (height // p) * (width // p)
    return tuple(result.shape) == (batch, tokens, channels * t * p * p)


TUBELETS = FunctionTask(
    id="ch20.tubelets",
    title="cut a video into tubelets",
    points=4,
    statement=r"""
        Write `tubelets(video, t, p)`: cut `video` of shape `(B, T, C, H, W)` (frames first,
        each frame an image `(C, H, W)`) into non-overlapping tubelets of $t$ frames and
        $p \times p$ pixels ($t$ divides $T$, $p$ divides $H$ and $W$) and flatten each, giving
        `(B, N, C·t·p·p)` with $N = (T/t)(H/p)(W/p)$ tokens. Number the tubelets time first,
        then row by row over the grid: token $i \cdot (H/p)(W/p) + r \cdot (W/p) + c$ holds
        frames $it, \dots, it + t - 1$ at grid row $r$, column $c$. Flatten each tubelet in the
        order `(C, t, p, p)`, the layout of a `Conv3d` weight:
        `out[b, n, ch·t·p·p + k·p·p + a·p + e] = video[b, i·t + k, ch, r·p + a, c·p + e]`.
        Use `reshape` and `permute` (you may call `selfattn_course.vision.patchify`); do not
        call `F.unfold` or torch's convolutions.
        """,
    reference=tubelets,
    visible_cases=lambda: [
        Case(
            "by hand: arange(32) as a (1, 2, 1, 4, 4) video, t = 2, p = 2: the first token is "
            "[0, 1, 4, 5, 16, 17, 20, 21]",
            {"video": torch.arange(32.0).reshape(1, 2, 1, 4, 4), "t": 2, "p": 2},
        ),
        _video_case("random (2, 4, 3, 4, 6), t = 2, p = 2", (2, 4, 3, 4, 6), 2, 2, seed=1),
    ],
    hidden_cases=over_devices(_tubelets_hidden),
    properties=(Property("the output has shape (B, (T/t)·(H/p)·(W/p), C·t·p·p)", _tubelets_shape),),
    mistakes=(
        Mistake(
            "each tubelet is flattened (t, C, p, p), time before channels; the statement asks "
            "for (C, t, p, p), the layout of a Conv3d weight: move C in front of t",
            source="""
                def tubelets(video, t, p):
                    b, f, c, h, w = video.shape
                    grid = video.reshape(b, f // t, t, c, h // p, p, w // p, p)
                    grid = grid.permute(0, 1, 4, 6, 2, 3, 5, 7)
                    return grid.reshape(b, -1, t * c * p * p)
                """,
        ),
        Mistake(
            "the tokens are numbered space first (all time steps of one patch, then the next "
            "patch); number them time first: token i·(H/p)·(W/p) + r·(W/p) + c",
            source="""
                def tubelets(video, t, p):
                    b, f, c, h, w = video.shape
                    grid = video.reshape(b, f // t, t, c, h // p, p, w // p, p)
                    grid = grid.permute(0, 4, 6, 1, 3, 2, 5, 7)
                    return grid.reshape(b, -1, c * t * p * p)
                """,
        ),
        Mistake(
            "you reshaped without moving the axes: consecutive numbers in memory are not a "
            "tubelet; split T, H and W into (T/t, t), (H/p, p), (W/p, p) and bring the three "
            "grid axes forward",
            source="""
                def tubelets(video, t, p):
                    b, f, c, h, w = video.shape
                    return video.reshape(b, (f // t) * (h // p) * (w // p), c * t * p * p)
                """,
        ),
    ),
    forbidden=TUBELET_BUILTINS,
)


# --- task 2: time_attention -----------------------------------------------------------------------


def time_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """TimeSformer's time attention: ``(B, T, S, d) -> (B, T, S, d)``.

    Token ``(t, s)`` attends over the ``T`` tokens ``(·, s)`` at its own spatial position:
    ``softmax(q kᵀ / sqrt(d)) v`` over the frames, i.e. the package's attention on the
    ``(B, S, T, d)`` transposes.
    """
    out = scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def _qkv_case(name, batch, frames, patches, d, seed, dtype=torch.float32, device="cpu"):
    shape = (batch, frames, patches, d)
    return Case(
        name,
        {
            "q": C.randn(shape, seed=seed, dtype=dtype, device=device),
            "k": C.randn(shape, seed=seed + 100, dtype=dtype, device=device),
            "v": C.randn(shape, seed=seed + 200, dtype=dtype, device=device),
        },
    )


def _time_attention_hidden(dtype, device) -> list[Case]:
    def case(name, *sizes, seed):
        return _qkv_case(name, *sizes, seed=seed, dtype=dtype, device=device)

    return [
        case("random B = 2, T = 4, S = 6, d = 8", 2, 4, 6, 8, seed=30),
        case("more frames than patches: T = 7, S = 3", 1, 7, 3, 5, seed=31),
        case("one frame: every token attends only to itself", 2, 1, 5, 4, seed=32),
        case("one patch: attention over the frames only", 3, 5, 1, 6, seed=33),
        case("d = 1", 1, 3, 4, 1, seed=34),
    ]


def _same_shape_as_v(result, inputs) -> bool:
    return tuple(result.shape) == tuple(inputs["v"].shape)


TIME_ATTENTION = FunctionTask(
    id="ch20.time_attention",
    title="time attention by reshaping",
    points=3,
    statement=r"""
        Write `time_attention(q, k, v)` for TimeSformer's divided attention: `q`, `k`, `v` have
        shape `(B, T, S, d)` ($T$ frames, $S$ patches per frame). The token of frame $t$ and
        patch $s$ attends only to the $T$ tokens of patch $s$ (the same spatial position in
        every frame), with weights $\operatorname{softmax}(q k^\top / \sqrt{d})$ over those
        frames. Return `(B, T, S, d)`. Do it with a transpose and batched matrix products
        (`@`, `torch.softmax`): no loop, and do not call `scaled_dot_product_attention` (the
        package's or torch's).
        """,
    reference=time_attention,
    visible_cases=lambda: [
        _qkv_case("random B = 1, T = 3, S = 4, d = 2", 1, 3, 4, 2, seed=1),
        _qkv_case("random B = 2, T = 5, S = 2, d = 4", 2, 5, 2, 4, seed=2),
    ],
    hidden_cases=over_devices(_time_attention_hidden),
    properties=(Property("the output has the shape of v, (B, T, S, d)", _same_shape_as_v),),
    mistakes=(
        Mistake(
            "your tokens attend over the S patches of their own frame (space attention); time "
            "attention runs over the T frames at the same patch: transpose T and S first",
            source="""
                def time_attention(q, k, v):
                    d = q.shape[-1]
                    weights = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1)
                    return weights @ v
                """,
        ),
        Mistake(
            "the scores are not divided by sqrt(d)",
            source="""
                def time_attention(q, k, v):
                    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
                    weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
                    return (weights @ v).transpose(1, 2)
                """,
        ),
        Mistake(
            "your tokens attend over all T·S tokens (joint space-time attention); time attention "
            "keeps only the T tokens at the same spatial position",
            source="""
                def time_attention(q, k, v):
                    b, t, s, d = q.shape
                    q, k, v = (x.reshape(b, t * s, d) for x in (q, k, v))
                    weights = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1)
                    return (weights @ v).reshape(b, t, s, d)
                """,
        ),
    ),
    forbidden=ATTENTION_BUILTINS,
)


# --- task 3: divided_mixing_flops -----------------------------------------------------------------


def divided_mixing_flops(frames: int, patches: int, d: int) -> int:
    """FLOPs of ``Q Kᵀ`` and ``A V`` in divided attention: ``4·T·S·(T + S)·d``.

    Time attention: ``S`` sequences of ``T`` tokens, ``S · 4T²d``; space attention: ``T``
    sequences of ``S`` tokens, ``T · 4S²d``.
    """
    return int(
        patches * costs.attention_mixing_flops(frames, d)
        + frames * costs.attention_mixing_flops(patches, d)
    )


def _flops_hidden(_devices) -> list[Case]:
    return [
        plain_numbers("TimeSformer: T = 8, S = 196, d = 64", frames=8, patches=196, d=64),
        plain_numbers("one frame: T = 1, S = 16, d = 4", frames=1, patches=16, d=4),
        plain_numbers("one patch: T = 32, S = 1, d = 8", frames=32, patches=1, d=8),
        plain_numbers("T = S = 50, d = 768", frames=50, patches=50, d=768),
        plain_numbers("T = 1, S = 1, d = 1", frames=1, patches=1, d=1),
    ]


DIVIDED_MIXING_FLOPS = FunctionTask(
    id="ch20.divided_mixing_flops",
    title="the cost of divided attention",
    points=3,
    statement=r"""
        Write `divided_mixing_flops(frames, patches, d)`: the FLOPs of the mixing products
        $QK^\top$ and $AV$ (not the projections) of one divided space-time attention layer over
        a clip of $T$ = `frames` frames of $S$ = `patches` tokens of width $d$: time attention
        (each of the $S$ positions attends over its $T$ frames), then space attention (each of
        the $T$ frames attends over its $S$ patches). A multiply-add counts as 2 FLOPs; return
        a plain number. Compare it with joint attention over all $TS$ tokens, $4(TS)^2d$, for
        $T = 8$, $S = 196$.
        """,
    reference=divided_mixing_flops,
    visible_cases=lambda: [
        plain_numbers(
            "by hand: T = 2, S = 3, d = 1 gives 4·2·3·(2 + 3) = 120", frames=2, patches=3, d=1
        ),
        plain_numbers("T = 8, S = 196, d = 768", frames=8, patches=196, d=768),
    ],
    hidden_cases=_flops_hidden,
    mistakes=(
        Mistake(
            "you counted joint attention over all T·S tokens, 4(TS)²d; divided attention runs "
            "S sequences of T tokens and T sequences of S tokens",
            source="""
                def divided_mixing_flops(frames, patches, d):
                    tokens = frames * patches
                    return 4 * tokens**2 * d
                """,
        ),
        Mistake(
            "you counted only one of the two attentions (time or space); divided attention "
            "does both",
            source="""
                def divided_mixing_flops(frames, patches, d):
                    return patches * 4 * frames**2 * d
                """,
        ),
        Mistake(
            "you counted a multiply-add as 1 FLOP; it is 2 (one multiply, one add)",
            lambda frames, patches, d: 2 * frames * patches * (frames + patches) * d,
        ),
    ),
    runner=returns_number,
)


TASKS = [TUBELETS, TIME_ATTENTION, DIVIDED_MIXING_FLOPS]
