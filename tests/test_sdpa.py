"""Specification of selfattn_course.attention.scaled_dot_product_attention and its validators.

References: arithmetic done by hand, and torch's own
``torch.nn.functional.scaled_dot_product_attention`` (bool ``attn_mask``, ``is_causal``, ``scale``,
float ``attn_mask`` for an additive bias). The course's function must match torch within 1e-5 in
float32 and 1e-12 in float64 wherever torch gives no NaN, and give 0 for a query that may attend
to no key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from selfattn_course.attention import scaled_dot_product_attention
from selfattn_course.attention.sdpa import allowed_positions, check_qkv, resolve_scale
from selfattn_course.masks import causal_mask

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


# --- inputs and references ------------------------------------------------------------------------


@dataclass
class Case:
    """One attention call: NumPy inputs and options, runnable with NumPy or with torch."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None
    bias: np.ndarray | None
    causal: bool
    scale: float | None

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.q.dtype.type]

    @property
    def score_shape(self) -> tuple[int, ...]:
        batch = np.broadcast_shapes(self.q.shape[:-2], self.k.shape[:-2], self.v.shape[:-2])
        return (*batch, self.q.shape[-2], self.k.shape[-2])

    def allowed(self) -> np.ndarray:
        """Where query i may attend to key j, broadcast to the full score shape."""
        lq, lk = self.score_shape[-2:]
        allowed = np.ones(self.score_shape, dtype=bool)
        if self.mask is not None:
            allowed = allowed & self.mask
        if self.causal:
            allowed = allowed & np.tri(lq, lk, dtype=bool)
        return allowed

    def run(self, library: str = "torch", **options):
        """The course's function on this case, as NumPy arrays or as torch tensors."""
        convert = torch.from_numpy if library == "torch" else (lambda a: a)
        optional = {
            name: None if a is None else convert(a)
            for name, a in (("mask", self.mask), ("bias", self.bias))
        }
        return scaled_dot_product_attention(
            convert(self.q),
            convert(self.k),
            convert(self.v),
            optional["mask"],
            bias=optional["bias"],
            causal=self.causal,
            scale=self.scale,
            **options,
        )


def shape_that_broadcasts_to(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with some leading dims dropped and some others set to 1."""
    dropped = draw(st.integers(0, len(shape) - 2))
    return tuple(s if draw(st.booleans()) else 1 for s in shape[dropped:])


@st.composite
def attention_cases(draw, with_bias: bool = False, blank_row: bool | None = None):
    """Random q, k, v with 0-3 leading dims (k, v may broadcast against q), Lq != Lk allowed,
    float32 or float64, a boolean mask of one of the common shapes, causal or not, any scale.

    Mask shapes: full ``(..., Lq, Lk)``, one ``(Lq, Lk)`` for every batch entry, key padding
    ``(B, 1, ..., 1, Lk)``, or any other shape that broadcasts. ``blank_row=True`` switches one
    query row off entirely (None: sometimes).
    """
    batch = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 3))))
    kv_batch = tuple(b if draw(st.booleans()) else 1 for b in batch)
    lq, lk = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    d, dv = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((*batch, lq, d)).astype(dtype)
    k = rng.standard_normal((*kv_batch, lk, d)).astype(dtype)
    v = rng.standard_normal((*kv_batch, lk, dv)).astype(dtype)
    score_shape = (*batch, lq, lk)

    mask_kind = draw(st.sampled_from(["none", "full", "(Lq, Lk)", "key padding", "broadcast"]))
    if blank_row:
        mask_kind = draw(st.sampled_from(["full", "(Lq, Lk)", "broadcast"]))
    mask_shape = {
        "none": None,
        "full": score_shape,
        "(Lq, Lk)": (lq, lk),
        "key padding": (batch[0], *[1] * (len(batch) - 1), 1, lk) if batch else (1, lk),
        "broadcast": shape_that_broadcasts_to(draw, score_shape),
    }[mask_kind]
    mask = None
    if mask_shape is not None:
        mask = rng.random(mask_shape) < draw(st.sampled_from([0.3, 0.7, 1.0]))
        if blank_row or (blank_row is None and draw(st.booleans())):
            mask[..., draw(st.integers(0, mask_shape[-2] - 1)), :] = False

    bias = None
    if with_bias:
        bias = rng.standard_normal(shape_that_broadcasts_to(draw, score_shape)).astype(dtype)
    causal = draw(st.booleans())
    scale = draw(st.none() | st.floats(0.1, 2.0))
    return Case(q, k, v, mask, bias, causal, scale)


def torch_reference(case: Case) -> torch.Tensor:
    """torch's SDPA on the case: ``is_causal`` when it can, else causal folded into ``attn_mask``.

    torch rejects ``attn_mask`` together with ``is_causal``, so a mask and causality are joined
    by logical AND into one bool mask; a bias becomes a float mask with -inf where blocked.
    """
    batch = case.score_shape[:-2]
    q, k, v = (torch.from_numpy(a).expand(*batch, *a.shape[-2:]) for a in (case.q, case.k, case.v))
    if case.bias is None and case.mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=case.causal, scale=case.scale)
    allowed = torch.from_numpy(case.allowed())
    if case.bias is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=case.scale)
    float_mask = (
        torch.from_numpy(case.bias).expand(allowed.shape).masked_fill(~allowed, float("-inf"))
    )
    return F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask, scale=case.scale)


def naive_reference(case: Case) -> torch.Tensor:
    """softmax(scores with -inf where blocked) @ v, in float64: NaN for a query with no key."""
    q, k, v = (torch.from_numpy(a).double() for a in (case.q, case.k, case.v))
    scale = resolve_scale(case.scale, q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale
    if case.bias is not None:
        scores = scores + torch.from_numpy(case.bias).double()
    scores = scores.masked_fill(~torch.from_numpy(case.allowed()), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def assert_matches_where_reference_is_defined(
    out: torch.Tensor, expected: torch.Tensor, tolerance: float
):
    """``out`` equals ``expected`` within ``tolerance`` wherever ``expected`` is not NaN, else 0."""
    assert not torch.isnan(out).any()
    defined = ~torch.isnan(expected)
    torch.testing.assert_close(out[defined], expected[defined], atol=tolerance, rtol=0)
    assert (out[~defined] == 0).all()


def as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(x)


# --- by hand --------------------------------------------------------------------------------------

LN2, LN3 = math.log(2.0), math.log(3.0)


def test_three_tokens_by_hand():
    # Three tokens, d = 2, scale = 1 so that the scores are plain dot products q_i . k_j.
    q = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    k = np.array([[0.0, LN3], [LN2, 0.0], [LN3, LN3]])
    v = np.array([[6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])
    # query 0 = [1, 0]: scores [0, ln2, ln3], e^s = [1, 2, 3] / 6  -> weights [1/6, 2/6, 3/6]
    # query 1 = [0, 1]: scores [ln3, 0, ln3], e^s = [3, 1, 3] / 7  -> weights [3/7, 1/7, 3/7]
    # query 2 = [0, 0]: scores [0, 0, 0]                           -> weights [1/3, 1/3, 1/3]
    weights = np.array([[1 / 6, 2 / 6, 3 / 6], [3 / 7, 1 / 7, 3 / 7], [1 / 3, 1 / 3, 1 / 3]])
    # out 0 = 1/6 [6, 0] + 2/6 [0, 6] + 3/6 [6, 6] = [1 + 3, 2 + 3]       = [4, 5]
    # out 1 = 3/7 [6, 0] + 1/7 [0, 6] + 3/7 [6, 6] = [36/7, 24/7]
    # out 2 = 1/3 ([6, 0] + [0, 6] + [6, 6])       = [4, 4]
    expected_out = np.array([[4.0, 5.0], [36 / 7, 24 / 7], [4.0, 4.0]])
    out, got_weights = scaled_dot_product_attention(q, k, v, scale=1.0, return_weights=True)
    np.testing.assert_allclose(got_weights, weights, rtol=1e-14)
    np.testing.assert_allclose(out, expected_out, rtol=1e-14)


def test_default_scale_divides_scores_by_sqrt_d_by_hand():
    # d = 4, so the default scale is 1/sqrt(4) = 1/2.
    # q . k0 = 0, q . k1 = ln3 + ln3 = 2 ln3; halved: [0, ln3]; e^s = [1, 3] / 4 -> [1/4, 3/4].
    q = np.array([[LN3, LN3, 0.0, 0.0]])
    k = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    v = np.array([[4.0], [0.0]])
    # out = 1/4 * 4 + 3/4 * 0 = 1
    np.testing.assert_allclose(scaled_dot_product_attention(q, k, v), [[1.0]], rtol=1e-14)


def test_single_key_gets_weight_one_and_returns_its_value():
    # The seed Q&A's example (query [0, 1], key [1, 0], value [1, 1]) claimed weights [0.5, 0.5];
    # with one key the only weight is e^s / e^s = 1 and the output is the value itself.
    out, weights = scaled_dot_product_attention(
        np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]), return_weights=True
    )
    np.testing.assert_array_equal(weights, [[1.0]])
    np.testing.assert_array_equal(out, [[1.0, 1.0]])


def test_causal_by_hand_each_query_averages_the_keys_up_to_itself():
    # q = 0 makes every score 0, so each query spreads its weight evenly over the keys it sees:
    # query 0 sees key 0 -> 3;  query 1 sees keys 0, 1 -> (3 + 6) / 2;  query 2 -> (3 + 6 + 9) / 3.
    q, k = np.zeros((3, 2)), np.zeros((3, 2))
    v = np.array([[3.0], [6.0], [9.0]])
    out = scaled_dot_product_attention(q, k, v, causal=True)
    np.testing.assert_allclose(out, [[3.0], [4.5], [6.0]], rtol=1e-15)


def test_causal_with_fewer_queries_than_keys_is_top_left_aligned_by_hand():
    # Lq = 2, Lk = 3, top-left: query 0 sees key 0 -> 3;  query 1 sees keys 0, 1 -> 4.5.
    # (Bottom-right alignment would give query 0 keys 0, 1 and query 1 all three.)
    out = scaled_dot_product_attention(
        np.zeros((2, 2)), np.zeros((3, 2)), np.array([[3.0], [6.0], [9.0]]), causal=True
    )
    np.testing.assert_allclose(out, [[3.0], [4.5]], rtol=1e-15)


def test_causal_with_more_queries_than_keys_is_top_left_aligned_by_hand():
    # Lq = 3, Lk = 2: query 0 sees key 0 -> 3; queries 1 and 2 see both keys -> (3 + 6) / 2.
    out = scaled_dot_product_attention(
        np.zeros((3, 2)), np.zeros((2, 2)), np.array([[3.0], [6.0]]), causal=True
    )
    np.testing.assert_allclose(out, [[3.0], [4.5], [4.5]], rtol=1e-15)


def test_masked_key_by_hand():
    # All scores 0; query 0 may not see key 1: it averages keys 0 and 2 -> (3 + 9) / 2 = 6.
    mask = np.array([[True, False, True], [True, True, True]])
    out = scaled_dot_product_attention(
        np.zeros((2, 2)), np.zeros((3, 2)), np.array([[3.0], [6.0], [9.0]]), mask
    )
    np.testing.assert_allclose(out, [[6.0], [6.0]], rtol=1e-15)


# --- against torch --------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["numpy", "torch"])
@given(case=attention_cases())
def test_matches_torch_sdpa_with_bool_mask_causal_and_scale(library, case):
    out = as_tensor(case.run(library))
    assert_matches_where_reference_is_defined(out, torch_reference(case), case.tolerance)


@pytest.mark.parametrize("library", ["numpy", "torch"])
@given(case=attention_cases(with_bias=True))
def test_bias_matches_torch_float_attn_mask(library, case):
    out = as_tensor(case.run(library))
    assert_matches_where_reference_is_defined(out, torch_reference(case), case.tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alibi_like_bias_matches_torch_float_attn_mask(dtype):
    # ALiBi: head h adds slope_h * (j - i), a penalty growing with the distance to the key.
    batch, heads, length, d = 2, 4, 5, 8
    generator = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(batch, heads, length, d, generator=generator, dtype=dtype) for _ in range(3)
    )
    slopes = torch.tensor([2.0 ** -(8 * (h + 1) / heads) for h in range(heads)], dtype=dtype)
    distance = (torch.arange(length)[None, :] - torch.arange(length)[:, None]).to(dtype)  # j - i
    bias = slopes[:, None, None] * distance  # (heads, Lq, Lk)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    tolerance = TOLERANCE[np.float32 if dtype == torch.float32 else np.float64]
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, bias=bias), expected, atol=tolerance, rtol=0
    )


@given(case=attention_cases(blank_row=True))
def test_all_masked_row_gives_zero_where_naive_softmax_gives_nan(case):
    out = as_tensor(case.run("torch"))
    no_key = ~case.allowed().any(axis=-1)  # (..., Lq): queries that may attend to nothing
    assert no_key.any()
    assert torch.isnan(naive_reference(case)[torch.from_numpy(no_key)]).all()
    assert not torch.isnan(out).any()
    assert (out[torch.from_numpy(no_key)] == 0).all()


def with_dtype(case: Case, dtype) -> Case:
    """The same case with q, k, v and bias converted to ``dtype``."""
    bias = None if case.bias is None else case.bias.astype(dtype)
    q, k, v = (a.astype(dtype) for a in (case.q, case.k, case.v))
    return Case(q, k, v, case.mask, bias, case.causal, case.scale)


@given(case=attention_cases(with_bias=True))
def test_float32_matches_float64_recomputation(case):
    # The float32 inputs, widened exactly to float64, recomputed by torch in float64.
    case32 = with_dtype(case, np.float32)
    out32 = case32.run("torch")
    assert out32.dtype == torch.float32
    expected = torch_reference(with_dtype(case32, np.float64))
    assert_matches_where_reference_is_defined(out32.double(), expected, TOLERANCE[np.float32])


@given(case=attention_cases(with_bias=True))
def test_numpy_and_torch_paths_agree(case):
    from_numpy, from_torch = case.run("numpy"), case.run("torch")
    np.testing.assert_allclose(from_numpy, from_torch.numpy(), atol=case.tolerance, rtol=0)


def test_matches_torch_sdpa_on_every_device(device):
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 4, 8, generator=generator) for _ in range(3))
    mask = torch.rand(2, 1, 1, 4, generator=generator) > 0.3
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = scaled_dot_product_attention(q.to(device), k.to(device), v.to(device), mask.to(device))
    torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)


# --- scale ----------------------------------------------------------------------------------------


def test_default_scale_is_one_over_sqrt_d():
    assert resolve_scale(None, 16) == 0.25
    assert resolve_scale(0.5, 16) == 0.5


@given(case=attention_cases(), scale=st.floats(0.05, 3.0))
def test_scale_multiplies_the_scores(case, scale):
    # softmax(scale * q k^T) is softmax((scale * q) k^T) with scale 1.
    case.scale = scale
    rescaled = Case(
        case.q * case.q.dtype.type(scale), case.k, case.v, case.mask, None, case.causal, 1.0
    )
    np.testing.assert_allclose(case.run("numpy"), rescaled.run("numpy"), atol=10 * case.tolerance)


# --- returned weights -----------------------------------------------------------------------------


@given(case=attention_cases(with_bias=True))
def test_returned_weights_rows_sum_to_one_or_zero_when_nothing_is_allowed(case):
    _, weights = case.run("numpy", return_weights=True)
    row_sums = np.where(case.allowed().any(axis=-1), 1.0, 0.0)
    np.testing.assert_allclose(
        weights.sum(axis=-1), np.broadcast_to(row_sums, weights.shape[:-1]), atol=case.tolerance
    )


@given(case=attention_cases())
def test_returned_weights_are_zero_where_attention_is_blocked(case):
    _, weights = case.run("torch", return_weights=True)
    assert (weights[torch.from_numpy(~case.allowed())] == 0).all()


@given(case=attention_cases())
def test_output_is_returned_weights_times_v(case):
    out, weights = case.run("torch", return_weights=True)
    assert weights.shape == case.score_shape
    torch.testing.assert_close(out, weights @ torch.from_numpy(case.v), atol=case.tolerance, rtol=0)


# --- dropout --------------------------------------------------------------------------------------

Q, K, V = (np.random.default_rng(seed).standard_normal((2, 3, 5, 4)) for seed in (10, 11, 12))


def test_dropout_is_deterministic_for_the_same_torch_generator_seed():
    q, k, v = map(torch.from_numpy, (Q, K, V))
    first = scaled_dot_product_attention(
        q, k, v, dropout_p=0.3, generator=torch.Generator().manual_seed(7)
    )
    second = scaled_dot_product_attention(
        q, k, v, dropout_p=0.3, generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_dropout_differs_for_different_torch_generator_seeds():
    q, k, v = map(torch.from_numpy, (Q, K, V))
    first = scaled_dot_product_attention(
        q, k, v, dropout_p=0.3, generator=torch.Generator().manual_seed(7)
    )
    second = scaled_dot_product_attention(
        q, k, v, dropout_p=0.3, generator=torch.Generator().manual_seed(8)
    )
    assert not torch.equal(first, second)


@pytest.mark.parametrize(
    "make_generator", [lambda: 7, lambda: np.random.default_rng(7)], ids=["int", "Generator"]
)
def test_dropout_is_deterministic_for_the_same_numpy_seed(make_generator):
    first = scaled_dot_product_attention(Q, K, V, dropout_p=0.3, generator=make_generator())
    second = scaled_dot_product_attention(Q, K, V, dropout_p=0.3, generator=make_generator())
    np.testing.assert_array_equal(first, second)


def test_dropout_differs_for_different_numpy_seeds():
    first = scaled_dot_product_attention(Q, K, V, dropout_p=0.3, generator=7)
    second = scaled_dot_product_attention(Q, K, V, dropout_p=0.3, generator=8)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_dropout_p_zero_is_identity(library):
    q, k, v = (Q, K, V) if library == "numpy" else map(torch.from_numpy, (Q, K, V))
    generator = 7 if library == "numpy" else torch.Generator().manual_seed(7)
    without = scaled_dot_product_attention(q, k, v, return_weights=True)
    with_zero = scaled_dot_product_attention(
        q, k, v, dropout_p=0.0, generator=generator, return_weights=True
    )
    for a, b in zip(without, with_zero, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_dropout_zeroes_each_weight_or_scales_it_by_one_over_keep_probability(library):
    p = 0.25
    q, k, v = (Q, K, V) if library == "numpy" else map(torch.from_numpy, (Q, K, V))
    generator = 3 if library == "numpy" else torch.Generator().manual_seed(3)
    _, clean = scaled_dot_product_attention(q, k, v, return_weights=True)
    out, dropped = scaled_dot_product_attention(
        q, k, v, dropout_p=p, generator=generator, return_weights=True
    )
    clean, dropped = np.asarray(clean), np.asarray(dropped)
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped[kept], clean[kept] / (1 - p), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(out), dropped @ V, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_dropout_preserves_the_expected_output(library):
    # 20000 independent draws at once: every entry of a leading dim gets its own dropout noise.
    # The mean of the outputs approaches the output without dropout (standard error ~0.01 here).
    draws = 20_000
    q = np.broadcast_to(Q[0, 0], (draws, 5, 4))
    k, v = K[0, 0], V[0, 0]
    generator = 5
    if library == "torch":
        q, k, v = (
            torch.from_numpy(np.ascontiguousarray(q)),
            torch.from_numpy(k),
            torch.from_numpy(v),
        )
        generator = torch.Generator().manual_seed(5)
    clean = np.asarray(scaled_dot_product_attention(q[:1], k, v))[0]
    noisy = np.asarray(scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=generator))
    np.testing.assert_allclose(noisy.mean(axis=0), clean, atol=0.06)
    assert noisy.std(axis=0).max() > 0.1  # the draws really differ


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_p_out_of_range_raises(p):
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\), got"):
        scaled_dot_product_attention(Q, K, V, dropout_p=p)


def test_torch_input_with_a_numpy_seed_raises():
    q, k, v = map(torch.from_numpy, (Q, K, V))
    with pytest.raises(
        TypeError, match=r"generator for torch input must be a torch.Generator, got int"
    ):
        scaled_dot_product_attention(q, k, v, dropout_p=0.1, generator=7)


def test_numpy_input_with_a_torch_generator_raises():
    with pytest.raises(
        TypeError,
        match=r"generator for NumPy input must be a numpy.random.Generator or an int seed",
    ):
        scaled_dot_product_attention(Q, K, V, dropout_p=0.1, generator=torch.Generator())


# --- kinds, dtypes, devices -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out_same_dtype_and_device(device, dtype):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    q, k, v = (torch.randn(2, 3, 4, dtype=dtype, device=device) for _ in range(3))
    bias = torch.zeros(3, 3, dtype=dtype, device=device)
    mask = torch.ones(3, 3, dtype=torch.bool, device=device)
    out, weights = scaled_dot_product_attention(
        q, k, v, mask, bias=bias, causal=True, return_weights=True
    )
    for result in (out, weights):
        assert isinstance(result, torch.Tensor)
        assert result.dtype == dtype
        assert result.device == q.device


def test_dropout_output_stays_on_the_input_device(device):
    q, k, v = (torch.randn(2, 3, 4, device=device) for _ in range(3))
    out = scaled_dot_product_attention(
        q, k, v, dropout_p=0.5, generator=torch.Generator(device=device).manual_seed(0)
    )
    assert out.device == q.device


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_in_numpy_out_same_dtype(dtype):
    q, k, v = (a.astype(dtype) for a in (Q, K, V))
    out, weights = scaled_dot_product_attention(
        q,
        k,
        v,
        np.ones((5, 5), dtype=bool),
        bias=np.zeros((5, 5), dtype=dtype),
        dropout_p=0.1,
        generator=0,
        return_weights=True,
    )
    for result in (out, weights):
        assert isinstance(result, np.ndarray)
        assert result.dtype == dtype


def test_output_shape_is_batch_lq_dv():
    out = scaled_dot_product_attention(
        np.zeros((2, 1, 3, 4)), np.zeros((1, 5, 6, 4)), np.zeros((1, 5, 6, 7))
    )
    assert out.shape == (2, 5, 3, 7)


# --- gradients ------------------------------------------------------------------------------------


def gradient_inputs():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor(
        [[True, True, False, True, True], [False] * 5, [True, False, True, False, True]]
    )
    return q, k, v, bias, mask


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_q_k_v_and_bias_with_an_all_masked_row(causal):
    q, k, v, bias, mask = gradient_inputs()

    def attention(q, k, v, bias):
        return scaled_dot_product_attention(q, k, v, mask, bias=bias, causal=causal)

    assert torch.autograd.gradcheck(attention, (q, k, v, bias))


def test_gradients_match_torch_sdpa_gradients():
    q, k, v, bias, mask = gradient_inputs()
    mask[1, 0] = True  # torch's gradient is NaN for a query with no key; give every query one
    upstream = torch.randn(2, 3, 3, dtype=torch.float64)
    (scaled_dot_product_attention(q, k, v, mask, bias=bias) * upstream).sum().backward()
    ours = [t.grad.clone() for t in (q, k, v, bias)]
    for t in (q, k, v, bias):
        t.grad = None
    float_mask = bias.masked_fill(~mask, float("-inf"))
    (F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask) * upstream).sum().backward()
    for name, got, expected in zip(
        "q k v bias".split(), ours, (q.grad, k.grad, v.grad, bias.grad), strict=True
    ):
        torch.testing.assert_close(
            got, expected, atol=1e-12, rtol=0, msg=lambda m, name=name: f"{name}: {m}"
        )


def test_gradient_of_an_all_masked_row_is_finite():
    q, k, v, bias, mask = gradient_inputs()
    scaled_dot_product_attention(q, k, v, mask, bias=bias).sum().backward()
    for t in (q, k, v, bias):
        assert torch.isfinite(t.grad).all()
    assert (q.grad[:, 1] == 0).all()  # query 1 sees no key: its output is the constant 0


# --- validators -----------------------------------------------------------------------------------


def test_check_qkv_returns_the_broadcast_score_shape():
    # q (2, 1, 3, 4), k (5, 6, 4), v (1, 6, 7): batch (2, 1) x (5,) x (1,) -> (2, 5); Lq 3, Lk 6.
    score_shape = check_qkv(np.zeros((2, 1, 3, 4)), np.zeros((5, 6, 4)), np.zeros((1, 6, 7)))
    assert score_shape == (2, 5, 3, 6)


def test_allowed_positions_joins_mask_and_causal_by_logical_and():
    mask = np.array([[True, False, True], [True, True, False]])
    # causal (2, 3), top-left: [[T, F, F], [T, T, F]]
    np.testing.assert_array_equal(
        allowed_positions(np.zeros(1), mask, True, 2, 3),
        [[True, False, False], [True, True, False]],
    )
    assert allowed_positions(np.zeros(1), mask, False, 2, 3) is mask


# --- bad input ------------------------------------------------------------------------------------

Q2, K2, V2 = np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 5, 6))
T = torch.from_numpy


@pytest.mark.parametrize(
    "inputs, error, message",
    [
        pytest.param(
            (np.zeros(4), K2, V2),
            ValueError,
            r"q must have at least 2 dimensions, got shape \(4,\)",
            id="q rank",
        ),
        pytest.param(
            (Q2, np.zeros(4), V2),
            ValueError,
            r"k must have at least 2 dimensions, got shape \(4,\)",
            id="k rank",
        ),
        pytest.param(
            (Q2, K2, np.zeros(5)),
            ValueError,
            r"v must have at least 2 dimensions, got shape \(5,\)",
            id="v rank",
        ),
        pytest.param(
            (Q2, np.zeros((2, 5, 3)), V2),
            ValueError,
            r"q and k must have the same last dim d: "
            r"q has shape \(2, 3, 4\), k has shape \(2, 5, 3\)",
            id="d",
        ),
        pytest.param(
            (Q2, K2, np.zeros((2, 4, 6))),
            ValueError,
            r"k and v must have the same sequence length Lk: "
            r"k has shape \(2, 5, 4\), v has shape \(2, 4, 6\)",
            id="Lk",
        ),
        pytest.param(
            (Q2, np.zeros((3, 5, 4)), np.zeros((3, 5, 6))),
            ValueError,
            r"leading dims of q \(2,\) and k \(3,\) do not broadcast",
            id="q-k batch",
        ),
        pytest.param(
            (Q2, K2, np.zeros((3, 5, 6))),
            ValueError,
            r"leading dims of q/k \(2,\) and v \(3,\) do not broadcast",
            id="v batch",
        ),
        pytest.param(
            (Q2.astype(np.int64), K2, V2),
            TypeError,
            r"q must hold floating-point numbers, got dtype int64",
            id="integer q",
        ),
        pytest.param(
            (T(Q2), T(K2), T(V2).int()),
            TypeError,
            r"v must hold floating-point numbers, got dtype torch.int32",
            id="integer v",
        ),
        pytest.param(
            (Q2, T(K2), V2),
            TypeError,
            r"q is a numpy.ndarray, k is a torch.Tensor, v is a numpy.ndarray",
            id="mixed kinds",
        ),
        pytest.param(
            (T(Q2), T(K2).float(), T(V2)),
            TypeError,
            r"q is torch.float64, k is torch.float32, v is torch.float64",
            id="mixed dtypes",
        ),
        pytest.param(
            (Q2.tolist(), K2, V2),
            TypeError,
            r"q must be a numpy.ndarray or a torch.Tensor, got list",
            id="list",
        ),
    ],
)
def test_bad_q_k_v_raise_naming_the_argument(inputs, error, message):
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(*inputs)


@pytest.mark.parametrize(
    "options, error, message",
    [
        pytest.param(
            {"mask": np.ones((3, 5))},
            TypeError,
            r"mask must be boolean .*got dtype float64",
            id="float mask",
        ),
        pytest.param(
            {"mask": np.ones((3, 5), dtype=np.int64)},
            TypeError,
            r"mask must be boolean .*got dtype int64",
            id="int mask",
        ),
        pytest.param(
            {"mask": np.ones((2, 3), dtype=bool)},
            ValueError,
            r"mask of shape \(2, 3\) does not broadcast to scores of shape \(2, 3, 5\)",
            id="mask shape",
        ),
        pytest.param(
            {"mask": np.ones((4, 2, 3, 5), dtype=bool)},
            ValueError,
            r"mask of shape \(4, 2, 3, 5\) does not broadcast to scores of shape \(2, 3, 5\)",
            id="mask rank",
        ),
        pytest.param(
            {"mask": torch.ones(3, 5, dtype=torch.bool)},
            TypeError,
            r"q is a numpy.ndarray, mask is a torch.Tensor",
            id="torch mask",
        ),
        pytest.param(
            {"bias": np.zeros((3, 4))},
            ValueError,
            r"bias of shape \(3, 4\) does not broadcast to scores of shape \(2, 3, 5\)",
            id="bias shape",
        ),
        pytest.param(
            {"bias": np.zeros((3, 5), dtype=np.int64)},
            TypeError,
            r"bias must hold floating-point numbers, got dtype int64",
            id="int bias",
        ),
        pytest.param(
            {"bias": np.zeros((3, 5), dtype=np.float32)},
            TypeError,
            r"q is float64, bias is float32",
            id="bias dtype",
        ),
        pytest.param(
            {"bias": np.ones((3, 5), dtype=bool)},
            TypeError,
            r"bias must hold floating-point numbers, got dtype bool",
            id="bool bias",
        ),
        pytest.param(
            {"bias": torch.zeros(3, 5, dtype=torch.float64)},
            TypeError,
            r"q is a numpy.ndarray, bias is a torch.Tensor",
            id="torch bias",
        ),
    ],
)
def test_bad_mask_or_bias_raises_naming_the_argument(options, error, message):
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(Q2, K2, V2, **options)


def test_torch_bias_of_another_dtype_raises_instead_of_changing_the_output_dtype():
    q, k, v = (torch.zeros(2, 3) for _ in range(3))
    with pytest.raises(TypeError, match=r"q is torch.float32, bias is torch.float64"):
        scaled_dot_product_attention(q, k, v, bias=torch.zeros(2, 2, dtype=torch.float64))


def test_zero_keys_give_zero_output_like_torch():
    # A query with no key at all is the extreme all-masked row: output 0, shape (..., Lq, dv).
    q = torch.randn(2, 3, 4, dtype=torch.float64)
    k = torch.randn(2, 0, 4, dtype=torch.float64)
    v = torch.randn(2, 0, 5, dtype=torch.float64)
    out, weights = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert out.shape == (2, 3, 5) and weights.shape == (2, 3, 0)
    torch.testing.assert_close(out, torch.zeros(2, 3, 5, dtype=torch.float64))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    out_np = scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy())
    np.testing.assert_array_equal(out_np, np.zeros((2, 3, 5)))


@pytest.mark.parametrize("lq, lk", [(3, 3), (2, 4), (4, 2)])
def test_causal_numpy_and_torch_use_the_same_top_left_mask(lq, lk):
    # causal=True is masks.causal_mask (query i sees keys j <= i), for NumPy as for torch.
    generator = np.random.default_rng(0)
    q, k, v = (generator.standard_normal(shape) for shape in ((lq, 4), (lk, 4), (lk, 3)))
    expected = scaled_dot_product_attention(q, k, v, causal_mask(lq, lk).numpy())
    got_numpy = scaled_dot_product_attention(q, k, v, causal=True)
    got_torch = scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), causal=True)
    np.testing.assert_allclose(got_numpy, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_torch.numpy(), expected, rtol=1e-12, atol=1e-12)
