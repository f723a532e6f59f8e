"""Specification of selfattn_course.attention.chunked_attention.

chunked_attention must give the numbers of the reference scaled_dot_product_attention (and of
torch's fused one) for every shape, mask, bias, scale and block size, in NumPy and in torch, with
gradients, while never allocating an ``(Lq, Lk)`` array and, with ``causal=True``, never touching
key blocks that lie entirely right of the diagonal.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import random_qkv
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from selfattn_course.attention import chunked_attention, scaled_dot_product_attention

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


# --- inputs ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One attention call as NumPy inputs, runnable with NumPy or torch."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None
    bias: np.ndarray | None
    causal: bool
    scale: float | None
    block_size: int

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.q.dtype.type]

    def inputs(self, library: str):
        convert = torch.from_numpy if library == "torch" else (lambda a: a)
        q, k, v = (convert(a) for a in (self.q, self.k, self.v))
        options = dict(
            mask=None if self.mask is None else convert(self.mask),
            bias=None if self.bias is None else convert(self.bias),
            causal=self.causal,
            scale=self.scale,
        )
        return q, k, v, options

    def chunked(self, library: str):
        q, k, v, options = self.inputs(library)
        return chunked_attention(q, k, v, **options, block_size=self.block_size)

    def reference(self, library: str):
        q, k, v, options = self.inputs(library)
        return scaled_dot_product_attention(q, k, v, **options)


def broadcastable_shape(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with some leading dims dropped and some others set to 1."""
    dropped = draw(st.integers(0, len(shape)))
    return tuple(s if draw(st.booleans()) else 1 for s in shape[dropped:])


@st.composite
def cases(draw, dtypes=(np.float32, np.float64)):
    """Leading dims 0-2 (k, v may broadcast against q), Lq != Lk, lengths that block sizes 1,
    2, 3, 5, 7 and 16 rarely divide, masks of any broadcastable shape (some with a query row
    that may attend to nothing), additive biases, causal or not, any scale."""
    batch = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    kv_batch = tuple(b if draw(st.booleans()) else 1 for b in batch)
    lq, lk = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    d, dv = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Spread-out scores (x3) so that the running maximum really changes from block to block.
    q = (3 * rng.standard_normal((*batch, lq, d))).astype(dtype)
    k = rng.standard_normal((*kv_batch, lk, d)).astype(dtype)
    v = rng.standard_normal((*kv_batch, lk, dv)).astype(dtype)
    score_shape = (*batch, lq, lk)

    mask = None
    if draw(st.booleans()):
        mask_shape = broadcastable_shape(draw, score_shape)
        mask = np.asarray(rng.random(mask_shape) < draw(st.sampled_from([0.3, 0.7, 1.0])))
        if len(mask_shape) >= 2 and draw(st.booleans()):
            mask[..., draw(st.integers(0, mask_shape[-2] - 1)), :] = False  # a blank query row
    bias = None
    if draw(st.booleans()):
        bias = np.asarray(rng.standard_normal(broadcastable_shape(draw, score_shape)), dtype=dtype)
    causal = draw(st.booleans())
    scale = draw(st.none() | st.floats(0.1, 2.0))
    block_size = draw(st.sampled_from([1, 2, 3, 5, 7, 16, 256]))
    return Case(q, k, v, mask, bias, causal, scale, block_size)


# --- equal to the reference -----------------------------------------------------------------------


@given(cases())
def test_matches_reference_in_torch(case):
    out = case.chunked("torch")
    torch.testing.assert_close(out, case.reference("torch"), atol=case.tolerance, rtol=0)


@given(cases())
def test_matches_reference_in_numpy(case):
    out = case.chunked("numpy")
    assert isinstance(out, np.ndarray) and out.dtype == case.q.dtype
    np.testing.assert_allclose(out, case.reference("numpy"), atol=case.tolerance, rtol=0)


@given(cases())
def test_numpy_and_torch_agree(case):
    np.testing.assert_allclose(
        case.chunked("numpy"), case.chunked("torch").numpy(), atol=case.tolerance, rtol=0
    )


@given(cases())
def test_autograd_path_equals_in_place_path(case):
    # Tensors that need gradients go through the autograd Function (whose forward also writes
    # the log-sum-exp for the backward); the rest take the in-place path directly.
    q, k, v, options = case.inputs("torch")
    with_grad = chunked_attention(
        q.clone().requires_grad_(), k, v, **options, block_size=case.block_size
    )
    assert with_grad.grad_fn is not None
    torch.testing.assert_close(
        with_grad.detach(), case.chunked("torch"), atol=case.tolerance, rtol=0
    )


@given(cases(dtypes=(np.float32,)))
def test_matches_torch_fused_attention(case):
    q, k, v, options = case.inputs("torch")
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if options["mask"] is not None:
        allowed = allowed & options["mask"]
    if case.causal:
        allowed = allowed & torch.ones(lq, lk, dtype=torch.bool).tril()
    attn_mask = torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))
    if options["bias"] is not None:
        attn_mask = attn_mask + options["bias"]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=case.scale)
    out = case.chunked("torch")
    # torch gives NaN where a query may attend to nothing; the course gives 0 there.
    defined = ~torch.isnan(expected).any(dim=-1, keepdim=True).expand_as(expected)
    torch.testing.assert_close(out[defined], expected[defined], atol=case.tolerance, rtol=0)
    assert (out[~defined] == 0).all()


@pytest.mark.parametrize("causal", [False, True])
def test_longer_sequences_match_torch_fused_attention(causal):
    # 8 heads of 200 x 300, block sizes that do not divide either length.
    q, k, v = random_qkv((2, 8, 200, 32), (2, 8, 300, 32), 16, dtype=torch.float32)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    for block_size in (33, 128, 256, 1000):
        out = chunked_attention(q, k, v, causal=causal, block_size=block_size)
        torch.testing.assert_close(out, expected, atol=2e-6, rtol=0)


def test_block_size_does_not_change_the_result():
    q, k, v = random_qkv((2, 17, 4), (2, 23, 4), 3)
    outputs = [chunked_attention(q, k, v, block_size=b) for b in (1, 4, 17, 23, 24, 10_000)]
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0], atol=1e-14, rtol=0)


def test_large_score_offsets_do_not_overflow():
    # One query, six keys with scores 900..905: exp(900) overflows float32 (max ~ e^88.7), so
    # only the running-max shift keeps this finite. In blocks of 2 the maximum rises at every
    # block (901, 903, 905), so each rescaling step is exercised.
    q = torch.ones(1, 1)
    k = torch.arange(900.0, 906.0).reshape(6, 1)
    v = torch.arange(6.0).reshape(6, 1)
    out = chunked_attention(q, k, v, scale=1.0, block_size=2)
    # softmax(900..905) = softmax(0..5), so the output is sum_j j e^j / sum_j e^j.
    weights = torch.softmax(torch.arange(6.0, dtype=torch.float64), dim=0)
    expected = (weights @ torch.arange(6.0, dtype=torch.float64)).reshape(1, 1)
    torch.testing.assert_close(out, expected.float(), atol=1e-5, rtol=0)


# --- masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("block_size", [1, 2, 64])
def test_all_masked_row_gives_zero_not_nan(library, block_size):
    q, k, v = (x.numpy() for x in random_qkv((3, 4), (5, 4), 2))
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False  # query 1 may attend to nothing
    bias = np.zeros((3, 5))
    bias[2] = -np.inf  # query 2 neither: every score is -inf
    if library == "torch":
        q, k, v, mask, bias = (torch.from_numpy(x) for x in (q, k, v, mask, bias))
    out = chunked_attention(q, k, v, mask, bias=bias, block_size=block_size)
    out = np.asarray(out)
    assert not np.isnan(out).any()
    assert (out[1:] == 0).all()
    assert (out[0] != 0).all()


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_empty_dimensions(library):
    # No keys: every query attends to nothing, so every output row is 0.
    # No queries or an empty batch: an empty output of the right shape.
    shapes = [((2, 3, 4), (2, 0, 4)), ((2, 0, 4), (2, 5, 4)), ((0, 3, 4), (0, 5, 4))]
    for shape_q, shape_k in shapes:
        q, k, v = random_qkv(shape_q, shape_k, 3)
        if library == "numpy":
            q, k, v = q.numpy(), k.numpy(), v.numpy()
        for causal in (False, True):
            out = chunked_attention(q, k, v, causal=causal, block_size=2)
            assert tuple(out.shape) == (*shape_q[:-1], 3)
            assert (np.asarray(out) == 0).all()


def test_key_padding_mask_of_shape_b_1_1_lk():
    # A (B, 1, 1, Lk) mask has size 1 in the query dim: every block of queries must see it.
    q, k, v = random_qkv((2, 3, 9, 4), (2, 3, 9, 4), 4)
    valid = torch.tensor([[True] * 9, [True] * 4 + [False] * 5]).reshape(2, 1, 1, 9)
    out = chunked_attention(q, k, v, valid, block_size=2)
    expected = scaled_dot_product_attention(q, k, v, valid)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_causal_never_reads_key_blocks_right_of_the_diagonal(library):
    # 8 tokens in blocks of 4: queries 0-3 see keys 0-3 only, so the key block 4-7 is skipped
    # for them. NaN values there would poison any computation that touched them (0 · NaN = NaN),
    # so finite outputs for queries 0-3 show that block was never read.
    q, k, v = (x.numpy() for x in random_qkv((8, 4), (8, 4), 3))
    k[4:] = np.nan
    v[4:] = np.nan
    if library == "torch":
        q, k, v = (torch.from_numpy(x) for x in (q, k, v))
    out = np.asarray(chunked_attention(q, k, v, causal=True, block_size=4))
    assert np.isfinite(out[:4]).all()
    assert np.isnan(out[4:]).all()  # queries 4-7 do see keys 4-7


def test_causal_computes_only_tiles_on_or_left_of_the_diagonal(monkeypatch):
    # Lq = Lk = 12 in blocks of 4: 3 query blocks see 1, 2 and 3 key blocks = 6 score tiles,
    # against 9 without causality.
    q, k, v = random_qkv((2, 12, 4), (2, 12, 4), 4)
    tiles = []
    original = torch.baddbmm

    def counting_baddbmm(*args, **kwargs):
        if kwargs.get("beta") == 0.0:  # the q kᵀ product that makes a tile of scores
            tiles.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "baddbmm", counting_baddbmm)
    chunked_attention(q, k, v, causal=True, block_size=4)
    assert len(tiles) == 6
    tiles.clear()
    chunked_attention(q, k, v, causal=False, block_size=4)
    assert len(tiles) == 9


# --- gradients, dtypes, devices -------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal):
    q, k, v = random_qkv((2, 5, 3), (2, 7, 3), 2, requires_grad=True)
    bias = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(1)) < 0.7
    mask[0, 2] = False  # a blank row: its gradient is 0

    def attention(q, k, v, bias):
        return chunked_attention(q, k, v, mask, bias=bias, causal=causal, block_size=3)

    assert torch.autograd.gradcheck(attention, (q, k, v, bias))


def test_gradients_match_reference():
    q, k, v = random_qkv((2, 3, 10, 4), (2, 3, 10, 4), 4, requires_grad=True)
    grads = []
    for attention in (chunked_attention, scaled_dot_product_attention):
        out = attention(q, k, v, causal=True)
        grads.append(torch.autograd.grad(out.square().sum(), (q, k, v)))
    for chunked, reference in zip(*grads, strict=True):
        torch.testing.assert_close(chunked, reference, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    q, k, v = random_qkv((2, 40, 8), (2, 40, 8), 8, dtype=torch.float32)
    out = chunked_attention(q.to(dtype), k.to(dtype), v.to(dtype), block_size=16)
    assert out.dtype == dtype
    expected = scaled_dot_product_attention(*(x.to(dtype).float() for x in (q, k, v)))
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=0)


def test_runs_on_every_device(device):
    q, k, v = random_qkv((2, 33, 8), (2, 40, 8), 8, dtype=torch.float32)
    expected = scaled_dot_product_attention(q, k, v, causal=True)
    out = chunked_attention(*(x.to(device) for x in (q, k, v)), causal=True, block_size=16)
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)


# --- gradients: the backward pass that recomputes its tiles --------------------------------------


def gradients(attention, q, k, v, bias, weights, **options):
    """Gradients of ``sum(attention(...) * weights)`` with respect to ``q, k, v`` and ``bias``."""
    inputs = [x for x in (q, k, v, bias) if x is not None and x.requires_grad]
    out = attention(q, k, v, bias=bias, **options)
    return torch.autograd.grad((out * weights).sum(), inputs)


@given(cases(dtypes=(np.float64,)))
@settings(max_examples=25)
def test_gradients_match_reference_for_every_kind_of_input(case):
    # Every input that can have a gradient needs one, bias included: broadcast shapes, masks with
    # blank rows, causal, block sizes that do not divide Lq or Lk, k and v broadcast against q.
    q, k, v, options = case.inputs("torch")
    q, k, v = (x.clone().requires_grad_() for x in (q, k, v))
    bias = options.pop("bias")
    if bias is not None:
        bias = bias.clone().requires_grad_()
    weights = torch.randn((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    chunked = gradients(
        chunked_attention, q, k, v, bias, weights, **options, block_size=case.block_size
    )
    reference = gradients(scaled_dot_product_attention, q, k, v, bias, weights, **options)
    for ours, expected in zip(chunked, reference, strict=True):
        assert ours.shape == expected.shape
        torch.testing.assert_close(ours, expected, atol=1e-10, rtol=1e-10)


def test_backward_recomputes_instead_of_recording_the_loop():
    q, k, v = random_qkv((2, 9, 4), (2, 9, 4), 4, requires_grad=True)
    out = chunked_attention(q, k, v, block_size=2)
    assert type(out.grad_fn).__name__ == "_ChunkedAttentionBackward"


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_with_broadcast_bias_and_blank_rows(causal):
    # A (heads, 1, Lk) bias gets a gradient of its own shape (dS summed over the query rows);
    # query 1 may attend to nothing (mask) and query 4 neither (bias -inf): output 0, gradient 0.
    q, k, v = random_qkv((2, 3, 6, 3), (3, 8, 3), 2, requires_grad=True)
    bias = torch.randn(3, 1, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 1, 6, 8, dtype=torch.bool)
    mask[..., 1, :] = False
    row_bias = torch.zeros(6, 8, dtype=torch.float64)
    row_bias[4] = -torch.inf

    def attention(q, k, v, bias):
        full_bias = bias + row_bias
        return chunked_attention(q, k, v, mask, bias=full_bias, causal=causal, block_size=4)

    assert torch.autograd.gradcheck(attention, (q, k, v, bias))
    out = attention(q, k, v, bias)
    grads = torch.autograd.grad(out.sum(), (q, k, v, bias))
    assert all(torch.isfinite(g).all() for g in grads)
    assert (out[..., [1, 4], :] == 0).all()
    assert (grads[0][..., [1, 4], :] == 0).all()


def test_gradients_of_only_some_inputs():
    # The backward skips the products whose gradients nobody asked for.
    q, k, v = random_qkv((2, 7, 4), (2, 9, 4), 3)
    bias = torch.randn(7, 9, dtype=torch.float64)
    weights = torch.randn(2, 7, 3, dtype=torch.float64)
    for which in range(4):
        inputs = [q.clone(), k.clone(), v.clone(), bias.clone()]
        inputs[which].requires_grad_()
        (ours,) = gradients(chunked_attention, *inputs, weights, causal=True, block_size=3)
        (expected,) = gradients(scaled_dot_product_attention, *inputs, weights, causal=True)
        torch.testing.assert_close(ours, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "dtype, tolerance",
    [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)],
)
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_torch_fused_attention(dtype, tolerance, causal):
    # 4 heads of 70 x 90 in blocks of 32 (neither length a multiple), a key padding mask.
    q, k, v = random_qkv((2, 4, 70, 16), (2, 4, 90, 16), 16, dtype=torch.float32)
    q, k, v = (x.to(dtype).requires_grad_() for x in (q, k, v))
    keep = torch.arange(90) < torch.tensor([90, 61]).reshape(2, 1, 1, 1)  # (2, 1, 1, 90)
    weights = torch.randn(2, 4, 70, 16).to(dtype)
    out = chunked_attention(q, k, v, keep, causal=causal, block_size=32)
    assert out.dtype == dtype
    ours = torch.autograd.grad((out * weights).sum(), (q, k, v))
    allowed = keep & torch.ones(70, 90, dtype=torch.bool).tril() if causal else keep
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    theirs = torch.autograd.grad((expected * weights).sum(), (q, k, v))
    for mine, fused in zip(ours, theirs, strict=True):
        assert mine.dtype == dtype
        # Relative to the gradient's size: half-precision inputs round differently inside.
        size = fused.float().abs().max()
        torch.testing.assert_close(mine.float(), fused.float(), atol=tolerance * size, rtol=0)


def test_empty_dimensions_have_zero_gradients():
    shapes = [((2, 3, 4), (2, 0, 4)), ((2, 0, 4), (2, 5, 4)), ((0, 3, 4), (0, 5, 4))]
    for shape_q, shape_k in shapes:
        q, k, v = random_qkv(shape_q, shape_k, 3, requires_grad=True)
        out = chunked_attention(q, k, v, causal=True, block_size=2)
        grads = torch.autograd.grad(out.sum(), (q, k, v))
        for grad, x in zip(grads, (q, k, v), strict=True):
            assert grad.shape == x.shape and (grad == 0).all()


def test_double_backward_raises_a_clear_error():
    q, k, v = random_qkv((5, 3), (5, 3), 2, requires_grad=True)
    out = chunked_attention(q, k, v, block_size=2)
    (grad_q,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_q.sum().backward()


def test_causal_backward_computes_only_tiles_on_or_left_of_the_diagonal(monkeypatch):
    # As in the forward: 6 of the 9 tiles of 12 x 12 in blocks of 4 (each recomputed once).
    q, k, v = random_qkv((2, 12, 4), (2, 12, 4), 4, requires_grad=True)
    out = chunked_attention(q, k, v, causal=True, block_size=4)
    tiles = []
    original = torch.baddbmm

    def counting_baddbmm(*args, **kwargs):
        if kwargs.get("beta") == 0.0:  # the q kᵀ product that recomputes a tile of scores
            tiles.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "baddbmm", counting_baddbmm)
    out.sum().backward()
    assert len(tiles) == 6


def saved_bytes(lq: int, lk: int) -> int:
    """Bytes autograd keeps for chunked attention's backward, each storage counted once."""
    q, k, v = random_qkv((2, 4, lq, 16), (2, 4, lk, 16), 16, dtype=torch.float32)
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    keep = torch.ones(lk, dtype=torch.bool)  # a key padding mask: O(Lk), however it is expanded
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = chunked_attention(q, k, v, keep, causal=True, block_size=32)
    out.sum().backward()
    assert q.grad is not None
    return sum(storages.values())


def test_backward_memory_is_linear_in_the_length():
    # What is saved for the backward is q, k, v, the output and one log-sum-exp per query row:
    # O(Lq·d + Lk·d). It doubles when both lengths double; the (Lq, Lk) scores would quadruple.
    # (With autograd recording the loop, every tile of scores was saved: 8 MiB at 1024 x 1024.)
    small, large = saved_bytes(512, 512), saved_bytes(1024, 1024)
    per_row = 4 * 2 * 4 * 16  # one row of q, k, v or out: float32, 2 x 4 heads, d = 16
    assert small <= 4 * 512 * per_row + 2 * 4 * 512 * 4 + 1024  # q, k, v, out, L, the mask
    assert large <= 2 * small + 1024
    assert saved_bytes(1024, 64) < saved_bytes(1024, 1024) / 1.5  # Lk matters, not Lq · Lk


def test_backward_never_allocates_the_score_matrix():
    q, k, v = random_qkv((HEADS, LENGTH, DIM), (HEADS, LENGTH, DIM), DIM, dtype=torch.float32)
    q, k, v = (x.requires_grad_() for x in (q, k, v))

    def forward_and_backward():
        out = chunked_attention(q, k, v, causal=True, block_size=BLOCK)
        torch.autograd.grad(out.sum(), (q, k, v))

    assert largest_torch_allocation(forward_and_backward) < LIMIT


# --- memory ---------------------------------------------------------------------------------------

# 2 heads of 2048 x 2048 scores: 32 MiB in float32 if materialised. A tile of 128 x 128 scores is
# 128 KiB and the output 256 KiB, so 1 MiB is far above what chunked attention needs and far
# below what the reference needs.
HEADS, LENGTH, DIM, BLOCK = 2, 2048, 16, 128
SCORE_BYTES = HEADS * LENGTH * LENGTH * 4
LIMIT = 1 << 20


def largest_torch_allocation(function) -> int:
    """The largest number of bytes any torch operator allocated (net) while ``function`` ran."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as recording:
        function()
    return max(event.cpu_memory_usage for event in recording.events())


def test_torch_never_allocates_the_score_matrix():
    q, k, v = random_qkv((HEADS, LENGTH, DIM), (HEADS, LENGTH, DIM), DIM, dtype=torch.float32)
    mask = torch.ones(LENGTH, LENGTH, dtype=torch.bool)  # input masks are views, never copied
    chunked = largest_torch_allocation(
        lambda: chunked_attention(q, k, v, mask, causal=True, block_size=BLOCK)
    )
    reference = largest_torch_allocation(lambda: scaled_dot_product_attention(q, k, v))
    assert reference >= SCORE_BYTES  # the measurement does see an (Lq, Lk) allocation
    assert chunked < LIMIT


def test_numpy_never_allocates_the_score_matrix():
    shape = (HEADS, LENGTH, DIM)
    q, k, v = (x.numpy() for x in random_qkv(shape, shape, DIM, dtype=torch.float32))

    def peak_bytes(function) -> int:
        tracemalloc.start()
        try:
            function()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    chunked = peak_bytes(lambda: chunked_attention(q, k, v, block_size=BLOCK))
    reference = peak_bytes(lambda: scaled_dot_product_attention(q, k, v))
    assert reference >= SCORE_BYTES
    assert chunked < LIMIT


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block_size, error, message",
    [
        (0, ValueError, "block_size must be >= 1, got 0"),
        (-3, ValueError, "block_size must be >= 1, got -3"),
        (2.5, TypeError, "block_size must be an integer"),
        (True, TypeError, "block_size must be an integer"),
    ],
)
def test_bad_block_size_raises(block_size, error, message):
    q, k, v = random_qkv((3, 4), (3, 4), 4)
    with pytest.raises(error, match=message):
        chunked_attention(q, k, v, block_size=block_size)


def test_bad_inputs_raise_like_the_reference():
    q, k, v = random_qkv((2, 3, 4), (2, 5, 4), 4)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 4\) does not broadcast"):
        chunked_attention(q, k, v, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        chunked_attention(q, k, v, torch.ones(3, 5))
    with pytest.raises(ValueError, match="q and k must have the same last dim"):
        chunked_attention(q, k[..., :3], v)
    with pytest.raises(TypeError, match="one kind"):
        chunked_attention(q.numpy(), k, v)
