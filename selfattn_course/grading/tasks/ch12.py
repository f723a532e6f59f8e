"""Chapter 12, position information: sinusoidal encodings, RoPE, T5 buckets and ALiBi slopes.

The references are the package's :mod:`selfattn_course.encodings` (``sinusoidal`` for integer
positions, written out here for any positions; ``apply_rope``; ``relative_position_bucket``;
``alibi_slopes``). The from-scratch tasks may not call the function they rebuild. Each task
below is one block: its statement, reference, cases, mistakes and forbidden calls. The exercise
notebook is generated from these blocks and solutions/ch12/ch12.md
(selfattn_course/authoring/notebooks.py).
"""

from __future__ import annotations

import torch

from selfattn_course.encodings import alibi_slopes, apply_rope, relative_position_bucket
from selfattn_course.grading.spec import AnswerTask, Case, FunctionTask, Mistake, over_devices
from selfattn_course.grading.spec import cases as C
from selfattn_course.grading.spec.answers import Number
from selfattn_course.grading.spec.cases import plain_numbers

ENCODING_BUILTINS = (
    "selfattn_course.encodings.sinusoidal",
    "selfattn_course.encodings.apply_rope",
)


# --- task 1: sinusoidal_encoding ------------------------------------------------------------------


def sinusoidal_encoding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """``(..., ) -> (..., dim)``: ``PE[2i] = sin(p ω_i)``, ``PE[2i+1] = cos(p ω_i)``,
    ``ω_i = 10000^(-2i/d)``, in ``positions``' dtype and device."""
    exponents = torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim
    angles = positions.to(torch.float64)[..., None] * 10000.0 ** (-exponents)  # (..., d/2)
    encoding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # (..., d/2, 2)
    return encoding.reshape(*positions.shape, dim).to(positions.dtype)


def _positions(length, dtype, device, start=0):
    return torch.arange(start, start + length, dtype=dtype, device=device)


def _sinusoidal_hidden(dtype, device) -> list[Case]:
    return [
        Case("100 positions, d = 64", {"positions": _positions(100, dtype, device), "dim": 64}),
        Case("one position, d = 2", {"positions": _positions(1, dtype, device), "dim": 2}),
        Case(
            "positions 500..519, d = 16",
            {"positions": _positions(20, dtype, device, start=500), "dim": 16},
        ),
        Case(
            "a batch (3, 5) of positions, d = 8",
            {"positions": _positions(15, dtype, device).reshape(3, 5), "dim": 8},
        ),
    ]


SINUSOIDAL_ENCODING = FunctionTask(
    id="ch12.sinusoidal_encoding",
    title="the sinusoidal encoding",
    points=3,
    statement=r"""
        Write `sinusoidal_encoding(positions, dim)`: for a float tensor of positions of any
        shape `(...)`, return the encoding of shape `(..., dim)` with
        $PE[p, 2i] = \sin(p\,\omega_i)$ and $PE[p, 2i+1] = \cos(p\,\omega_i)$,
        $\omega_i = 10000^{-2i/d}$, $i = 0, \dots, d/2 - 1$ (sine on the even features, cosine on
        the odd ones), in the dtype and on the device of `positions`. `dim` is even. Do not call
        `selfattn_course.encodings.sinusoidal`.
        """,
    reference=sinusoidal_encoding,
    visible_cases=lambda: [
        Case(
            "by hand: d = 2 gives [sin p, cos p]; p = 0 gives [0, 1]",
            {"positions": torch.tensor([0.0]), "dim": 2},
        ),
        Case("10 positions, d = 8", {"positions": torch.arange(10.0), "dim": 8}),
    ],
    hidden_cases=over_devices(_sinusoidal_hidden),
    mistakes=(
        Mistake(
            "sine and cosine are interleaved (sin on features 0, 2, 4, ..., cos on 1, 3, 5, ...), "
            "not the first half sine and the second half cosine",
            source="""
                def sinusoidal_encoding(positions, dim):
                    i = torch.arange(0, dim, 2, dtype=positions.dtype, device=positions.device)
                    angles = positions[..., None] / 10000 ** (i / dim)
                    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
                """,
        ),
        Mistake(
            "the exponent is 2i/d for pair i: step the exponents by 2 over d, not by 1",
            source="""
                def sinusoidal_encoding(positions, dim):
                    i = torch.arange(dim // 2, dtype=positions.dtype, device=positions.device)
                    angles = positions[..., None] / 10000 ** (i / dim)
                    return torch.stack([torch.sin(angles), torch.cos(angles)], -1).flatten(-2)
                """,
        ),
    ),
    forbidden=ENCODING_BUILTINS,
)


# --- task 2: rope ---------------------------------------------------------------------------------


def rope(x: torch.Tensor, positions: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """RoPE of ``x`` ``(..., L, d)`` at ``positions`` ``(L,)``, in either pair layout."""
    return apply_rope(x, positions, interleaved=interleaved)


def _rope_hidden(dtype, device) -> list[Case]:
    def case(name, shape, seed, interleaved, start=0):
        x = C.randn(shape, seed=seed, dtype=dtype, device=device)
        positions = _positions(shape[-2], dtype, device, start=start)
        return Case(name, {"x": x, "positions": positions, "interleaved": interleaved})

    return [
        case("(2, 4, 16, 32), halves", (2, 4, 16, 32), 20, False),
        case("(2, 4, 16, 32), interleaved", (2, 4, 16, 32), 21, True),
        case("d = 2, length 1, halves", (1, 1, 2), 22, False),
        case("d = 2, length 1, interleaved", (1, 1, 2), 23, True),
        case("positions 1000..1007, interleaved", (3, 8, 8), 24, True, start=1000),
        case("positions 1000..1007, halves", (3, 8, 8), 25, False, start=1000),
    ]


ROPE = FunctionTask(
    id="ch12.rope",
    title="rotary position embedding, both layouts",
    points=3,
    statement=r"""
        Write `rope(x, positions, interleaved)`: rotate the features of `x` `(..., L, d)` at the
        float positions `positions` `(L,)`. Pair $i$ ($i = 0, \dots, d/2 - 1$) of the vector at
        position $p$ is rotated by the angle $p\,\theta_i$, $\theta_i = 10000^{-2i/d}$:
        $(a, b) \mapsto (a\cos p\theta_i - b\sin p\theta_i,\; a\sin p\theta_i + b\cos p\theta_i)$.
        With `interleaved=True` pair $i$ is the features $(2i, 2i+1)$; with `interleaved=False` it
        is $(i, i + d/2)$, the two halves. Return a tensor of `x`'s shape, dtype and device. Do
        not call `selfattn_course.encodings.apply_rope`.
        """,
    reference=rope,
    visible_cases=lambda: [
        Case(
            "by hand: d = 2, x = [1, 0] at p = 1 gives [cos 1, sin 1]",
            {
                "x": torch.tensor([[1.0, 0.0]]),
                "positions": torch.tensor([1.0]),
                "interleaved": True,
            },
        ),
        Case(
            "(2, 6, 8), halves",
            {"x": C.randn((2, 6, 8), seed=2), "positions": torch.arange(6.0), "interleaved": False},
        ),
        Case(
            "(2, 6, 8), interleaved",
            {"x": C.randn((2, 6, 8), seed=3), "positions": torch.arange(6.0), "interleaved": True},
        ),
    ],
    hidden_cases=over_devices(_rope_hidden),
    mistakes=(
        Mistake(
            "the layouts are swapped: interleaved=True pairs adjacent features (2i, 2i+1), "
            "interleaved=False pairs feature i with feature i + d/2",
            source="""
                def rope(x, positions, interleaved):
                    d = x.shape[-1]
                    i = torch.arange(0, d, 2, dtype=x.dtype, device=x.device)
                    angles = positions[:, None] * 10000 ** (-i / d)
                    cos, sin = torch.cos(angles), torch.sin(angles)
                    if not interleaved:
                        a, b = x[..., 0::2], x[..., 1::2]
                        return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
                    a, b = x[..., : d // 2], x[..., d // 2 :]
                    return torch.cat([a * cos - b * sin, a * sin + b * cos], -1)
                """,
        ),
        Mistake(
            "the rotation turns the wrong way: the second feature gets + a·sin + b·cos, "
            "the first a·cos − b·sin",
            source="""
                def rope(x, positions, interleaved):
                    d = x.shape[-1]
                    i = torch.arange(0, d, 2, dtype=x.dtype, device=x.device)
                    angles = positions[:, None] * 10000 ** (-i / d)
                    cos, sin = torch.cos(angles), torch.sin(angles)
                    if interleaved:
                        a, b = x[..., 0::2], x[..., 1::2]
                        return torch.stack([a * cos + b * sin, b * cos - a * sin], -1).flatten(-2)
                    a, b = x[..., : d // 2], x[..., d // 2 :]
                    return torch.cat([a * cos + b * sin, b * cos - a * sin], -1)
                """,
        ),
    ),
    forbidden=ENCODING_BUILTINS,
)


# --- task 3: t5_bucket ----------------------------------------------------------------------------

#: The relative position j - i of the task: a key 40 positions before its query.
BUCKET_RELATIVE_POSITION = -40

T5_BUCKET_OF_40 = int(relative_position_bucket(BUCKET_RELATIVE_POSITION, bidirectional=True))

T5_BUCKET = AnswerTask(
    id="ch12.t5_bucket",
    title="the T5 bucket of a distance",
    points=2,
    statement=r"""
        T5's encoder (bidirectional, 32 buckets, `max_distance = 128`) splits its buckets into
        16 for keys at or before the query and 16 for keys after it (those get $+16$). Within each
        half, distances $0, \dots, 7$ get a bucket each; a distance $t \ge 8$ gets
        $8 + \lfloor \ln(t/8) / \ln(128/8) \cdot 8 \rfloor$, at most 15. Which bucket does a key
        **40 positions before** its query ($j - i = -40$) fall in? Store the whole number in
        `t5_bucket`.
        """,
    answer_type=Number(rtol=0.0, atol=0.0),
    expected=T5_BUCKET_OF_40,
    mistakes=(
        Mistake(
            "a key before the query (j - i < 0) stays in the first 16 buckets; "
            "only keys after the query get + 16",
            source="""
                distance = 40
                t5_bucket = 16 + min(8 + int(math.log(distance / 8) / math.log(16) * 8), 15)
                """,
        ),
        Mistake(
            "that is the decoder's (one-directional, 32-bucket) bucket; the encoder is "
            "bidirectional: 16 buckets per direction, 8 of them exact",
            int(relative_position_bucket(BUCKET_RELATIVE_POSITION, bidirectional=False)),
        ),
        Mistake("round down (floor) the logarithmic part, do not round it up", T5_BUCKET_OF_40 + 1),
    ),
)


# --- task 4: alibi_slope_list ---------------------------------------------------------------------


def alibi_slope_list(num_heads: int) -> torch.Tensor:
    """ALiBi's slopes for ``num_heads`` heads, float64 ``(H,)``."""
    return alibi_slopes(num_heads, dtype=torch.float64)


def _slope_cases() -> list[Case]:
    return [plain_numbers(f"{h} heads", num_heads=h) for h in (1, 2, 16, 6, 12, 20)]


ALIBI_SLOPE_LIST = FunctionTask(
    id="ch12.alibi_slope_list",
    title="ALiBi slopes for h heads",
    points=2,
    statement=r"""
        Write `alibi_slope_list(num_heads)`: ALiBi's slopes, a float64 tensor of shape
        `(num_heads,)`. For $n$ heads, $n$ a power of two, $m_h = 2^{-8(h+1)/n}$,
        $h = 0, \dots, n-1$ (8 heads: $1/2, 1/4, \dots, 1/256$). Otherwise take the slopes of
        $2^k$ heads, the largest power of two below $n$, then append every other slope of
        $2^{k+1}$ heads (the 1st, 3rd, 5th, ...) until there are $n$: 12 heads give the 8 slopes
        $2^{-1}, \dots, 2^{-8}$, then $2^{-0.5}, 2^{-1.5}, 2^{-2.5}, 2^{-3.5}$. Do not call
        `selfattn_course.encodings.alibi_slopes`.
        """,
    reference=alibi_slope_list,
    visible_cases=lambda: [
        plain_numbers("by hand: 8 heads give 1/2, 1/4, ..., 1/256", num_heads=8),
        plain_numbers("4 heads", num_heads=4),
    ],
    hidden_cases=lambda _devices: _slope_cases(),
    mistakes=(
        Mistake(
            "for a head count that is not a power of two, ALiBi does not use 2^(-8(h+1)/n): take "
            "the slopes of the power of two below, then every other slope of the one above",
            source="""
                def alibi_slope_list(num_heads):
                    h = torch.arange(num_heads, dtype=torch.float64)
                    return 2 ** (-8 * (h + 1) / num_heads)
                """,
        ),
        Mistake(
            "the first slope is 2^(-8/n), not 1: the exponent uses h + 1 for h = 0 .. n-1",
            source="""
                def alibi_slope_list(num_heads):
                    h = torch.arange(num_heads, dtype=torch.float64)
                    return 2 ** (-8 * h / num_heads)
                """,
        ),
    ),
    forbidden=("selfattn_course.encodings.alibi_slopes",),
)


TASKS = [SINUSOIDAL_ENCODING, ROPE, T5_BUCKET, ALIBI_SLOPE_LIST]
