"""Tests for selfattn_course.encodings: sinusoidal, learned, T5 buckets, RoPE, ALiBi."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.encodings import (
    LearnedPositionalEmbedding,
    RelativePositionBias,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    relative_position_bucket,
    rope_ntk_base,
    sinusoidal,
)
from selfattn_course.masks import causal_mask

# --- sinusoidal ---------------------------------------------------------------------------


def test_sinusoidal_by_hand_for_dim_4():
    # dim 4, base 10000: frequencies 1 / 10000^(0/4) = 1 and 1 / 10000^(2/4) = 1/100.
    encoding = sinusoidal(3, 4, dtype=torch.float64)
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],  # p = 0: sin 0, cos 0, sin 0, cos 0
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(encoding, expected, rtol=0, atol=1e-15)


def test_sinusoidal_matches_the_formula_written_as_a_loop():
    num_positions, dim, base = 7, 10, 50.0
    expected = np.zeros((num_positions, dim))
    for p in range(num_positions):
        for i in range(dim // 2):
            expected[p, 2 * i] = math.sin(p / base ** (2 * i / dim))
            expected[p, 2 * i + 1] = math.cos(p / base ** (2 * i / dim))
    np.testing.assert_allclose(
        sinusoidal(num_positions, dim, base=base, dtype=torch.float64).numpy(), expected, atol=1e-14
    )


def test_sinusoidal_shift_is_a_rotation_of_each_pair():
    # PE[p + k] = R(k * w_i) PE[p] for each (sin, cos) pair i: a linear map depending on k only.
    dim, k = 8, 3
    encoding = sinusoidal(20, dim, dtype=torch.float64)
    frequencies = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    for p in (0, 5, 11):
        sin_p, cos_p = encoding[p, 0::2], encoding[p, 1::2]
        angle = k * frequencies
        # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b - sin a sin b
        torch.testing.assert_close(
            encoding[p + k, 0::2], sin_p * torch.cos(angle) + cos_p * torch.sin(angle)
        )
        torch.testing.assert_close(
            encoding[p + k, 1::2], cos_p * torch.cos(angle) - sin_p * torch.sin(angle)
        )


def test_sinusoidal_pairs_lie_on_the_unit_circle():
    encoding = sinusoidal(50, 16, dtype=torch.float64)
    torch.testing.assert_close(
        encoding[:, 0::2] ** 2 + encoding[:, 1::2] ** 2, torch.ones(50, 8, dtype=torch.float64)
    )


def test_sinusoidal_is_float32_on_the_cpu_by_default_and_obeys_dtype_and_device(device):
    assert sinusoidal(4, 6).dtype == torch.float32
    assert sinusoidal(4, 6).device == torch.device("cpu")
    encoding = sinusoidal(4, 6, dtype=torch.float16, device=device)
    assert (
        encoding.dtype == torch.float16 and encoding.device == device and encoding.shape == (4, 6)
    )


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((4, 5), {}, ValueError, "dim must be even (sin and cos come in pairs), got dim=5"),
        ((4, 0), {}, ValueError, "dim must be >= 1, got 0"),
        ((-1, 4), {}, ValueError, "num_positions must be >= 0, got -1"),
        ((4, 4.0), {}, TypeError, "dim must be an integer"),
        ((4, 4), {"base": 0.0}, ValueError, "base must be positive, got 0.0"),
        ((4, 4), {"base": "10000"}, TypeError, "base must be a number, got str"),
    ],
)
def test_sinusoidal_rejects_bad_input(args, kwargs, error, words):
    with pytest.raises(error) as info:
        sinusoidal(*args, **kwargs)
    assert words in str(info.value)


# --- LearnedPositionalEmbedding -----------------------------------------------------------


def test_learned_embedding_of_a_length_is_the_first_rows_of_the_table():
    table = LearnedPositionalEmbedding(16, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(table(5), table.weight[:5])


def test_learned_embedding_adds_its_rows_to_every_sequence_of_the_batch():
    table = LearnedPositionalEmbedding(16, 4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1))
    out = table(x)
    for b in range(3):
        torch.testing.assert_close(out[b], x[b] + table.weight[:6])


def test_learned_embedding_uses_given_positions():
    # A decoder step with a cache: the new tokens sit at positions 4, 5.
    table = LearnedPositionalEmbedding(16, 4, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(2, 2, 4)
    torch.testing.assert_close(
        table(x, positions=torch.tensor([4, 5])), table.weight[4:6].expand(2, 2, 4)
    )
    per_sequence = torch.tensor([[0, 1], [7, 8]])
    torch.testing.assert_close(table(x, positions=per_sequence)[1], table.weight[7:9])


def test_learned_embedding_past_the_table_names_the_position_and_says_why():
    table = LearnedPositionalEmbedding(512, 8)
    with pytest.raises(ValueError) as info:
        table(601)
    assert "position 600 is past the table of 512 positions" in str(info.value)
    assert "a learned table cannot extrapolate" in str(info.value)
    with pytest.raises(ValueError, match="position 512 is past the table"):
        table(torch.zeros(1, 513, 8))


def test_learned_embedding_is_deterministic_given_a_generator_and_has_std_0_02():
    first = LearnedPositionalEmbedding(512, 64, generator=torch.Generator().manual_seed(3))
    again = LearnedPositionalEmbedding(512, 64, generator=torch.Generator().manual_seed(3))
    other = LearnedPositionalEmbedding(512, 64, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first.weight, again.weight)
    assert not torch.equal(first.weight, other.weight)
    assert 0.019 < first.weight.std().item() < 0.021  # 32768 draws: standard error ~ 0.0001


def test_learned_embedding_table_is_trained_by_backprop():
    table = LearnedPositionalEmbedding(8, 4)
    table(torch.ones(2, 3, 4)).sum().backward()
    expected = torch.zeros(8, 4)
    expected[:3] = 2.0  # rows 0..2 used once per sequence, two sequences
    assert torch.equal(table.weight.grad, expected)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (
            lambda t: t(torch.zeros(2, 3, 5)),
            ValueError,
            "x must have last dim 4 (the table's dim), got shape (2, 3, 5)",
        ),
        (
            lambda t: t(torch.zeros(3, 4, dtype=torch.long)),
            TypeError,
            "x must hold floating-point numbers",
        ),
        (lambda t: t(torch.zeros(4)), ValueError, "x must have at least 2 dimensions"),
        (
            lambda t: t(torch.zeros(2, 3, 4), positions=torch.tensor([0.0, 1.0, 2.0])),
            TypeError,
            "positions must be an integer",
        ),
        (
            lambda t: t(torch.zeros(2, 3, 4), positions=torch.tensor([-1, 0, 1])),
            ValueError,
            "non-negative, got -1",
        ),
        (
            lambda t: t(torch.zeros(2, 3, 4), positions=torch.arange(4)),
            ValueError,
            "positions of shape (4,) does not broadcast to x.shape[:-1] of shape (2, 3)",
        ),
        (lambda t: t(3, positions=torch.arange(3)), TypeError, "for a length, pass only the int"),
        (lambda t: t(-1), ValueError, "length must be >= 0, got -1"),
    ],
)
def test_learned_embedding_rejects_bad_input(call, error, words):
    table = LearnedPositionalEmbedding(8, 4)
    with pytest.raises(error) as info:
        call(table)
    assert words in str(info.value)


def test_learned_embedding_rejects_a_bad_size():
    with pytest.raises(ValueError, match="max_positions must be >= 1, got 0"):
        LearnedPositionalEmbedding(0, 4)


# --- relative_position_bucket (T5) --------------------------------------------------------


def t5_bucket_transcribed(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """Hugging Face's T5Attention._relative_position_bucket, copied by hand (the oracle)."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1)
    )
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(
    "num_buckets, max_distance", [(32, 128), (8, 20), (16, 64), (64, 256), (6, 5)]
)
def test_relative_position_bucket_matches_t5_on_a_range(bidirectional, num_buckets, max_distance):
    relative_position = torch.arange(-600, 601)
    expected = t5_bucket_transcribed(relative_position, bidirectional, num_buckets, max_distance)
    kwargs = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    assert torch.equal(relative_position_bucket(relative_position, **kwargs), expected)
    np.testing.assert_array_equal(
        relative_position_bucket(relative_position.numpy(), **kwargs), expected.numpy()
    )


@pytest.mark.parametrize(
    "relative_position, bucket",
    [
        (0, 0),
        (-1, 1),  # a key 1 before the query
        (1, 17),  # a key 1 after it: the upper 16 buckets
        (-7, 7),  # the last exact bucket
        (-8, 8),  # the first log bucket: 8 + floor(log(8/8) / log(128/8) * 8) = 8
        (-15, 9),  # 8 + floor(log(15/8) / log(16) * 8) = 8 + floor(1.81) = 9
        (-16, 10),  # 8 + floor(log 2 / log 16 * 8) = 8 + 2
        (8, 24),  # 16 + 8
        (-127, 15),  # 8 + floor(7.99) = 15
        (-128, 15),  # 8 + 8 = 16, capped at 15
        (-5000, 15),
        (5000, 31),
    ],
)
def test_relative_position_bucket_bidirectional_by_hand(relative_position, bucket):
    assert relative_position_bucket(relative_position) == bucket


@pytest.mark.parametrize(
    "relative_position, bucket",
    [
        (5, 0),  # a future key: all share bucket 0 (a causal mask removes them anyway)
        (0, 0),
        (-5, 5),
        (-15, 15),
        (-16, 16),  # the first log bucket: 16 + floor(log 1 ...) = 16
        (-32, 21),  # 16 + floor(log 2 / log 8 * 16) = 16 + floor(5.33)
        (-64, 26),  # 16 + floor(log 4 / log 8 * 16) = 16 + floor(10.67)
        (-128, 31),  # 16 + 16 = 32, capped at 31
    ],
)
def test_relative_position_bucket_one_directional_by_hand(relative_position, bucket):
    assert relative_position_bucket(relative_position, bidirectional=False) == bucket


@given(st.booleans(), st.sampled_from([(32, 128), (8, 20), (16, 40)]))
def test_relative_position_bucket_grows_with_distance_and_stays_in_range(bidirectional, config):
    num_buckets, max_distance = config
    kwargs = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
    before = relative_position_bucket(-np.arange(0, 400), **kwargs)  # keys further and further back
    assert np.all(np.diff(before) >= 0)
    assert before.min() >= 0 and before.max() < num_buckets
    assert np.all(before[max_distance:] == before[-1])  # saturated from max_distance on
    if bidirectional:
        after = relative_position_bucket(np.arange(1, 400), **kwargs)
        assert np.all(np.diff(after) >= 0) and after.min() >= num_buckets // 2


def test_relative_position_bucket_keeps_the_kind_device_and_shape(device):
    relative_position = torch.arange(-3, 3, device=device).reshape(2, 3)
    buckets = relative_position_bucket(relative_position)
    assert buckets.dtype == torch.long and buckets.device == device and buckets.shape == (2, 3)
    numpy_buckets = relative_position_bucket(np.array([[1, -1]], dtype=np.int32))
    assert isinstance(numpy_buckets, np.ndarray) and numpy_buckets.dtype == np.int64


@pytest.mark.parametrize(
    "relative_position, kwargs, error, words",
    [
        (np.array([0.5]), {}, TypeError, "relative_position must hold integers, got dtype float64"),
        (torch.tensor([True]), {}, TypeError, "relative_position must hold integers"),
        (
            np.array([1]),
            {"num_buckets": 3},
            ValueError,
            "num_buckets must be at least 4 (bidirectional=True), got 3",
        ),
        (
            np.array([1]),
            {"num_buckets": 1, "bidirectional": False},
            ValueError,
            "num_buckets must be at least 2",
        ),
        (
            np.array([1]),
            {"max_distance": 8},
            ValueError,
            "max_distance must exceed the 8 exact buckets, got max_distance=8",
        ),
        (np.array([1]), {"max_distance": 0}, ValueError, "max_distance must be >= 1, got 0"),
    ],
)
def test_relative_position_bucket_rejects_bad_input(relative_position, kwargs, error, words):
    with pytest.raises(error) as info:
        relative_position_bucket(relative_position, **kwargs)
    assert words in str(info.value)


# --- RelativePositionBias -----------------------------------------------------------------


def test_relative_position_bias_looks_up_the_bucket_of_key_minus_query():
    module = RelativePositionBias(
        3, num_buckets=8, max_distance=20, generator=torch.Generator().manual_seed(0)
    )
    bias = module(4, 6)
    assert bias.shape == (1, 3, 4, 6)
    table = module.relative_attention_bias.weight  # (num_buckets, H)
    for i in range(4):
        for j in range(6):
            bucket = relative_position_bucket(j - i, num_buckets=8, max_distance=20)
            torch.testing.assert_close(bias[0, :, i, j], table[int(bucket)])


def test_relative_position_bias_depends_only_on_the_offset():
    module = RelativePositionBias(
        2, bidirectional=False, generator=torch.Generator().manual_seed(0)
    )
    bias = module(7)
    assert bias.shape == (1, 2, 7, 7)
    torch.testing.assert_close(bias[..., 1:, 1:], bias[..., :-1, :-1])  # constant along diagonals


def test_relative_position_bias_is_deterministic_and_learns():
    first = RelativePositionBias(4, generator=torch.Generator().manual_seed(5))
    again = RelativePositionBias(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first(3), again(3))
    first(3).sum().backward()
    assert first.relative_attention_bias.weight.grad.abs().sum() > 0


def test_relative_position_bias_works_as_a_score_bias():
    generator = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 4, 5, 8, generator=generator) for _ in range(3))
    bias = RelativePositionBias(4, generator=generator)(5)
    out = scaled_dot_product_attention(q, k, v, bias=bias)
    scores = q @ k.transpose(-2, -1) / math.sqrt(8) + bias
    torch.testing.assert_close(out, torch.softmax(scores, dim=-1) @ v)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"num_heads": 0}, ValueError, "num_heads must be >= 1, got 0"),
        ({"num_heads": 2, "num_buckets": 2}, ValueError, "num_buckets must be at least 4"),
        ({"num_heads": 2, "max_distance": 4}, ValueError, "max_distance must exceed"),
    ],
)
def test_relative_position_bias_rejects_a_bad_configuration_when_built(kwargs, error, words):
    with pytest.raises(error) as info:
        RelativePositionBias(**kwargs)
    assert words in str(info.value)


def test_relative_position_bias_rejects_a_negative_length():
    with pytest.raises(ValueError, match="lk must be >= 0, got -1"):
        RelativePositionBias(2)(3, -1)


# --- apply_rope ---------------------------------------------------------------------------


def rope_by_complex_numbers(
    x: np.ndarray, positions: np.ndarray, base: float, interleaved: bool
) -> np.ndarray:
    """Reference: each pair is a complex number z, rotated as z * exp(1j * p * theta_i)."""
    d = x.shape[-1]
    theta = base ** (-np.arange(0, d, 2) / d)  # (d/2,)
    rotation = np.exp(1j * positions[:, None] * theta)  # (L, d/2)
    if interleaved:
        z = (x[..., 0::2] + 1j * x[..., 1::2]) * rotation
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = z.real, z.imag
        return out
    z = (x[..., : d // 2] + 1j * x[..., d // 2 :]) * rotation
    return np.concatenate([z.real, z.imag], axis=-1)


def llama_rope_transcribed(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Hugging Face LLaMA's rotate_half form, written out: x * cos + rotate_half(x) * sin."""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = positions.double()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotate_half = torch.cat((-x2, x1), dim=-1)
    return x * emb.cos() + rotate_half * emb.sin()


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_matches_a_complex_number_implementation(interleaved):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 8))
    positions = np.array([0.0, 1.0, 2.0, 5.0, 9.5, 100.0])  # fractional: position interpolation
    expected = rope_by_complex_numbers(x, positions, 500.0, interleaved)
    np.testing.assert_allclose(
        apply_rope(x, positions, base=500.0, interleaved=interleaved), expected, atol=1e-12
    )
    torch_out = apply_rope(
        torch.from_numpy(x), torch.from_numpy(positions), base=500.0, interleaved=interleaved
    )
    np.testing.assert_allclose(torch_out.numpy(), expected, atol=1e-12)


def test_rope_default_layout_is_llamas_rotate_half():
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(apply_rope(x), llama_rope_transcribed(x, torch.arange(5), 10000.0))


def test_rope_layouts_are_permutations_of_each_other():
    # Moving the even features to the first half and the odd ones to the second turns adjacent
    # pairs (2i, 2i+1) into half pairs (i, i + d/2).
    d = 8
    to_halves = torch.cat(
        [torch.arange(0, d, 2), torch.arange(1, d, 2)]
    )  # [0, 2, 4, 6, 1, 3, 5, 7]
    back = torch.argsort(to_halves)
    x = torch.randn(3, 7, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(
        apply_rope(x, interleaved=True), apply_rope(x[..., to_halves])[..., back]
    )


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_preserves_the_norm_of_every_vector(interleaved):
    x = torch.randn(2, 4, 9, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rotated = apply_rope(x, interleaved=interleaved)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))


def test_rope_at_position_zero_is_the_identity():
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(apply_rope(x), x)  # L = 1: the only position is 0


@given(st.integers(-50, 1000), st.booleans())
def test_rope_scores_are_unchanged_when_both_positions_shift(shift, interleaved):
    generator = torch.Generator().manual_seed(4)
    q, k = (torch.randn(6, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    positions = torch.tensor([0, 3, 4, 10, 11, 30])
    scores = (
        apply_rope(q, positions, interleaved=interleaved)
        @ apply_rope(k, positions, interleaved=interleaved).T
    )
    shifted = (
        apply_rope(q, positions + shift, interleaved=interleaved)
        @ apply_rope(k, positions + shift, interleaved=interleaved).T
    )
    torch.testing.assert_close(shifted, scores, rtol=1e-9, atol=1e-9)


def test_rope_score_of_one_query_and_one_key_depends_only_on_their_distance():
    # The same q and k at every position: scores[i, j] = f(i - j), a Toeplitz matrix.
    generator = torch.Generator().manual_seed(5)
    q, k = (
        torch.randn(8, generator=generator, dtype=torch.float64),
        torch.randn(8, generator=generator, dtype=torch.float64),
    )
    length = 12
    scores = apply_rope(q.expand(length, 8)) @ apply_rope(k.expand(length, 8)).T
    torch.testing.assert_close(scores[1:, 1:], scores[:-1, :-1])
    assert not torch.allclose(scores[0, 0], scores[0, 1])  # but it does depend on the distance


def test_rope_default_positions_are_arange():
    x = np.random.default_rng(6).standard_normal((3, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(apply_rope(x), apply_rope(x, np.arange(5)))
    np.testing.assert_array_equal(apply_rope(x), apply_rope(x, [0, 1, 2, 3, 4]))


def test_rope_accepts_per_sequence_positions_that_broadcast_over_heads():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 4, 8, generator=generator)  # (B, H, L, d)
    positions = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])[:, None, :]  # (B, 1, L)
    out = apply_rope(x, positions)
    torch.testing.assert_close(out[1], apply_rope(x[1], torch.tensor([5, 6, 7, 8])))


def test_rope_numpy_in_numpy_out_keeping_the_dtype():
    x = np.random.default_rng(8).standard_normal((4, 6)).astype(np.float32)
    out = apply_rope(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, 6)
    np.testing.assert_allclose(out, apply_rope(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_rope_keeps_the_dtype_and_device(device, dtype):
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(9)).to(
        device=device, dtype=dtype
    )
    out = apply_rope(x)
    assert out.dtype == dtype and out.device == device
    expected = apply_rope(x.double().cpu())
    torch.testing.assert_close(out.double().cpu(), expected, rtol=0.02, atol=0.02)


@pytest.mark.parametrize(
    "x, positions, kwargs, error, words",
    [
        (
            np.zeros((3, 5)),
            None,
            {},
            ValueError,
            "x must have an even last dim d (features form pairs), got d=5 in shape (3, 5)",
        ),
        (np.zeros(4), None, {}, ValueError, "x must have at least 2 dimensions, got shape (4,)"),
        (
            np.zeros((3, 4), dtype=np.int64),
            None,
            {},
            TypeError,
            "x must hold floating-point numbers",
        ),
        (
            np.zeros((3, 4)),
            np.arange(4),
            {},
            ValueError,
            "positions of shape (4,) does not broadcast to x.shape[:-1] of shape (3,)",
        ),
        (torch.zeros(3, 4), np.arange(3), {}, TypeError, "all NumPy or all torch"),
        (
            np.zeros((3, 4)),
            np.array([True, False, True]),
            {},
            TypeError,
            "positions must hold integers or floats, got dtype bool",
        ),
        (np.zeros((3, 4)), None, {"base": -1.0}, ValueError, "base must be positive, got -1.0"),
        (
            [[0.0, 1.0]],
            None,
            {},
            TypeError,
            "x must be a numpy.ndarray or a torch.Tensor, got list",
        ),
    ],
)
def test_rope_rejects_bad_input(x, positions, kwargs, error, words):
    with pytest.raises(error) as info:
        apply_rope(x, positions, **kwargs)
    assert words in str(info.value)


# --- alibi_slopes -------------------------------------------------------------------------


def official_alibi_slopes(n):
    """ofirpress/attention_with_linear_biases get_slopes, copied by hand (the oracle)."""

    def get_slopes_power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (
        get_slopes_power_of_2(closest_power_of_2)
        + official_alibi_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2]
    )


def test_alibi_slopes_for_8_heads_halve_from_one_half_to_1_over_256():
    expected = [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]
    assert alibi_slopes(8, dtype=torch.float64).tolist() == expected


def test_alibi_slopes_for_12_heads_by_hand():
    # The 8 slopes of 8 heads, then every other slope of 16 heads
    # (2^-0.5, 2^-1, 2^-1.5, ...): 4 of them.
    expected = [2.0**-e for e in (1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5)]
    torch.testing.assert_close(
        alibi_slopes(12, dtype=torch.float64),
        torch.tensor(expected, dtype=torch.float64),
        rtol=1e-15,
        atol=0,
    )


@pytest.mark.parametrize("num_heads", list(range(1, 41)) + [48, 64, 96])
def test_alibi_slopes_match_the_official_code(num_heads):
    expected = torch.tensor(official_alibi_slopes(num_heads), dtype=torch.float64)
    torch.testing.assert_close(
        alibi_slopes(num_heads, dtype=torch.float64), expected, rtol=1e-13, atol=0
    )


def test_alibi_slopes_dtype_and_device(device):
    slopes = alibi_slopes(4, device=device)
    assert slopes.dtype == torch.float32 and slopes.device == device and slopes.shape == (4,)


@pytest.mark.parametrize("num_heads, error", [(0, ValueError), (2.0, TypeError)])
def test_alibi_slopes_rejects_bad_head_counts(num_heads, error):
    with pytest.raises(error, match="num_heads must be"):
        alibi_slopes(num_heads)


# --- alibi_bias ---------------------------------------------------------------------------


def test_alibi_bias_by_hand_for_two_heads():
    # 2 heads: slopes 2^-4 = 1/16 and 2^-8 = 1/256; bias[h, i, j] = m_h * (j - i).
    bias = alibi_bias(2, 3, dtype=torch.float64)
    offsets = torch.tensor([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], dtype=torch.float64)
    torch.testing.assert_close(bias, torch.stack([offsets / 16, offsets / 256]), rtol=0, atol=0)


def test_alibi_bias_is_non_positive_at_and_below_the_diagonal():
    bias = alibi_bias(8, 6, 9)
    assert bias.shape == (8, 6, 9)
    allowed = causal_mask(6, 9).expand(8, 6, 9)
    assert torch.all(bias[allowed] <= 0)
    assert torch.all(bias[~allowed] > 0)


def test_alibi_bias_with_causal_equals_the_official_key_position_only_form():
    # The official code adds m_h * j, not m_h * (j - i); per row the two differ by a constant,
    # which the softmax cancels.
    generator = torch.Generator().manual_seed(0)
    heads, length = 4, 6
    q, k, v = (
        torch.randn(2, heads, length, 8, generator=generator, dtype=torch.float64) for _ in range(3)
    )
    ours = scaled_dot_product_attention(
        q, k, v, bias=alibi_bias(heads, length, dtype=torch.float64), causal=True
    )
    key_only = alibi_slopes(heads, dtype=torch.float64)[:, None, None] * torch.arange(
        length, dtype=torch.float64
    )
    official = scaled_dot_product_attention(
        q, k, v, bias=key_only.expand(heads, length, length), causal=True
    )
    torch.testing.assert_close(ours, official)


def test_alibi_bias_dtype_and_device(device):
    bias = alibi_bias(2, 3, 4, device=device, dtype=torch.float16)
    assert bias.dtype == torch.float16 and bias.device == device and bias.shape == (2, 3, 4)


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((0, 3), ValueError, "num_heads must be >= 1, got 0"),
        ((2, -3), ValueError, "lq must be >= 0, got -3"),
        ((2, 3, -1), ValueError, "lk must be >= 0, got -1"),
        ((2, 3.5), TypeError, "lq must be an integer"),
    ],
)
def test_alibi_bias_rejects_bad_input(args, error, words):
    with pytest.raises(error) as info:
        alibi_bias(*args)
    assert words in str(info.value)


# --- rope_ntk_base ------------------------------------------------------------------------


def test_rope_ntk_base_by_hand_for_d_4():
    # d = 4: base' = base · s^(4/2) = 10000 · 2² = 40000
    assert rope_ntk_base(4, 2) == pytest.approx(40000.0)


@pytest.mark.parametrize("dim, scale", [(8, 2.0), (64, 4), (128, 8.0)])
def test_rope_ntk_base_slows_the_slowest_pair_by_scale_and_keeps_the_fastest(dim, scale):
    exponents = np.arange(0, dim, 2) / dim
    theta = 10000.0**-exponents
    theta_ntk = rope_ntk_base(dim, scale) ** -exponents
    assert theta_ntk[0] == theta[0] == 1.0
    assert theta_ntk[-1] == pytest.approx(theta[-1] / scale, rel=1e-12)
    assert np.all(theta_ntk <= theta)


def test_rope_ntk_base_of_scale_1_is_the_base():
    assert rope_ntk_base(16, 1, base=500.0) == 500.0


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((3, 2.0), ValueError, "even"),
        ((2, 2.0), ValueError, "at least 4"),
        ((8, 0.5), ValueError, "at least 1"),
        ((8, "2"), TypeError, "number"),
    ],
)
def test_rope_ntk_base_rejects_bad_input(args, error, words):
    with pytest.raises(error, match=words):
        rope_ntk_base(*args)
