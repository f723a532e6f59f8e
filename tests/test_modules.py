"""Tests for selfattn_course.attention.modules: SelfAttention, MultiHeadAttention, TransformerBlock.

Masks in this package are True = may attend; torch's nn.MultiheadAttention and
nn.TransformerEncoderLayer use True = blocked, so every comparison with torch inverts them.
torch's layers may give NaN for a query whose keys are all blocked, so the comparisons keep at
least one real key per query.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from selfattn_course.attention import MultiHeadAttention, SelfAttention, TransformerBlock
from selfattn_course.attention.modules import init_linear_default


def assert_close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


def randn(*shape, seed=0, dtype=torch.float32, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype).to(device)


def torch_mha(embed_dim=8, num_heads=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    return nn.MultiheadAttention(embed_dim, num_heads, batch_first=True, **kwargs).eval()


def padding_blocked(lengths, max_len):
    """torch's key_padding_mask: True at the padded positions (blocked)."""
    return torch.arange(max_len)[None, :] >= torch.tensor(lengths)[:, None]


# --- SelfAttention -------------------------------------------------------------------------


def test_self_attention_is_softmax_of_scaled_scores_over_keys_times_values():
    layer = SelfAttention(8)
    x = randn(2, 5, 8)
    q, k, v = layer.q_proj(x), layer.k_proj(x), layer.v_proj(x)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    out, got_weights = layer(x, need_weights=True)
    assert_close(got_weights, weights)
    assert_close(out, weights @ v)
    assert_close(layer(x)[0], out)


def test_self_attention_and_multi_head_attention_return_out_and_weights_alike():
    # Both return (out, weights) like nn.MultiheadAttention; weights is None unless asked for.
    x = randn(2, 5, 8)
    for layer in (SelfAttention(8), MultiHeadAttention(8, 2)):
        out, weights = layer(x)
        assert out.shape == (2, 5, 8) and weights is None
        out_too, weights = layer(x, need_weights=True)
        assert_close(out_too, out)
        assert weights.shape == (2, 5, 5)


def test_self_attention_weight_rows_sum_to_one_over_the_keys_on_a_batch():
    # The seed normalised with nn.Softmax(dim=1): on (B, L, L) weights that is over the queries.
    _, weights = SelfAttention(8)(randn(3, 5, 8), need_weights=True)
    assert_close(weights.sum(dim=-1), torch.ones(3, 5))


def test_self_attention_treats_each_batch_item_on_its_own():
    layer = SelfAttention(8)
    x = randn(3, 5, 8)
    batched, _ = layer(x)
    for b in range(3):
        assert_close(batched[b], layer(x[b])[0])


def test_self_attention_accepts_any_leading_dims():
    layer = SelfAttention(4)
    x = randn(2, 3, 5, 4)
    assert_close(layer(x)[0], layer(x.reshape(6, 5, 4))[0].reshape(2, 3, 5, 4))


class SeedSelfAttention(nn.Module):
    """The seed Q&A's Q5 layer, verbatim apart from layout (its bug is the point)."""

    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        self.query_linear = nn.Linear(d_model, d_model)
        self.key_linear = nn.Linear(d_model, d_model)
        self.value_linear = nn.Linear(d_model, d_model)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        query, key, value = self.query_linear(x), self.key_linear(x), self.value_linear(x)
        attn_weights = self.softmax(torch.matmul(query, key.transpose(0, 1)) / (self.d_model**0.5))
        return torch.matmul(attn_weights, value)


def test_self_attention_agrees_with_the_seed_where_the_seed_works_and_runs_where_it_fails():
    ours = SelfAttention(8)
    seed = SeedSelfAttention(8)
    seed.query_linear.load_state_dict(ours.q_proj.state_dict())
    seed.key_linear.load_state_dict(ours.k_proj.state_dict())
    seed.value_linear.load_state_dict(ours.v_proj.state_dict())
    x = randn(2, 5, 8)
    # One unbatched (L, d) sequence: transpose(0, 1) is the key transpose and dim=1 is the key axis.
    assert_close(ours(x[0])[0], seed(x[0]))
    # A batch (B, L, d): transpose(0, 1) swaps batch and sequence, and the matmul fails.
    with pytest.raises(RuntimeError):
        seed(x)
    assert ours(x)[0].shape == (2, 5, 8)


def test_self_attention_causal_output_ignores_later_positions():
    layer = SelfAttention(4)
    x = randn(1, 6, 4)
    changed = x.clone()
    changed[:, 3:] = randn(1, 3, 4, seed=1)
    out, _ = layer(x, causal=True)
    out_changed, _ = layer(changed, causal=True)
    assert_close(out[:, :3], out_changed[:, :3])
    assert not torch.allclose(out[:, 3:], out_changed[:, 3:])


def test_self_attention_causal_equals_a_lower_triangular_mask():
    layer = SelfAttention(4)
    x = randn(2, 5, 4)
    lower = torch.ones(5, 5, dtype=torch.bool).tril()
    assert_close(layer(x, causal=True)[0], layer(x, mask=lower)[0])


def test_self_attention_all_masked_row_gives_zero_not_nan():
    layer = SelfAttention(4)
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[1, 2] = False  # query 2 of example 1 may attend to nothing
    out, weights = layer(randn(2, 3, 4), mask=mask, need_weights=True)
    assert torch.isfinite(out).all()
    assert torch.equal(out[1, 2], torch.zeros(4))
    assert torch.equal(weights[1, 2], torch.zeros(3))


def test_self_attention_keeps_device_and_dtype(device):
    layer = SelfAttention(4).to(device=device, dtype=torch.float64)
    out, weights = layer(randn(2, 3, 4, dtype=torch.float64, device=device), need_weights=True)
    assert out.device.type == torch.device(device).type and out.dtype == torch.float64
    assert weights.device == out.device and weights.dtype == torch.float64


def test_self_attention_gradcheck_float64():
    layer = SelfAttention(4).double()
    x = randn(2, 3, 4, dtype=torch.float64).requires_grad_()
    mask = torch.tensor([[True, True, False], [True, True, True], [False, True, True]])
    assert torch.autograd.gradcheck(lambda x: layer(x, mask=mask)[0], (x,))


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.zeros(4), r"x must have shape \(\.\.\., length, d_model\).*got shape \(4,\)"),
        (torch.zeros(2, 5, 6), r"x must have last dim d_model = 4, got shape \(2, 5, 6\)"),
    ],
)
def test_self_attention_rejects_wrong_shapes(x, match):
    with pytest.raises(ValueError, match=match):
        SelfAttention(4)(x)


def test_self_attention_rejects_a_mask_that_does_not_broadcast():
    match = r"mask of shape \(2, 4\) does not broadcast to scores of shape \(2, 3, 3\)"
    with pytest.raises(ValueError, match=match):
        SelfAttention(4)(torch.zeros(2, 3, 4), mask=torch.ones(2, 4, dtype=torch.bool))


def test_self_attention_rejects_wrong_dtype_and_non_tensors():
    with pytest.raises(
        TypeError, match=r"x has dtype torch.float64 but the module's parameters are"
    ):
        SelfAttention(4)(torch.zeros(2, 3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor, got list"):
        SelfAttention(4)([[0.0] * 4])
    with pytest.raises(TypeError, match=r"mask must be boolean"):
        SelfAttention(4)(torch.zeros(2, 3, 4), mask=torch.ones(3, 3))


# --- MultiHeadAttention: shapes and the head split ----------------------------------------------


def test_mha_rejects_embed_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"):
        MultiHeadAttention(10, 4)


def test_mha_rejects_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"num_heads must be positive, got 0"):
        MultiHeadAttention(8, 0)
    with pytest.raises(TypeError, match=r"embed_dim must be an int, got float"):
        MultiHeadAttention(8.0, 2)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        MultiHeadAttention(8, 2, dropout=1.0)


def test_mha_head_dim_is_embed_dim_over_num_heads():
    mha = MultiHeadAttention(12, 3)
    assert mha.head_dim == 4


def test_mha_output_and_weight_shapes():
    mha = MultiHeadAttention(8, 2, kdim=3, vdim=5)
    query, key, value = randn(2, 4, 8), randn(2, 6, 3), randn(2, 6, 5)
    out, weights = mha(query, key, value)
    assert out.shape == (2, 4, 8) and weights is None
    _, averaged = mha(query, key, value, need_weights=True)
    assert averaged.shape == (2, 4, 6)
    _, per_head = mha(query, key, value, need_weights=True, average_attn_weights=False)
    assert per_head.shape == (2, 2, 4, 6)
    assert_close(averaged, per_head.mean(dim=1))


def test_mha_each_head_attends_with_its_own_slice_of_the_projections():
    mha = MultiHeadAttention(6, 3)
    x = randn(2, 4, 6)
    d_k = 2
    heads = []
    for h in range(3):
        rows = slice(h * d_k, (h + 1) * d_k)
        q = x @ mha.q_proj.weight[rows].T + mha.q_proj.bias[rows]
        k = x @ mha.k_proj.weight[rows].T + mha.k_proj.bias[rows]
        v = x @ mha.v_proj.weight[rows].T + mha.v_proj.bias[rows]
        heads.append(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d_k), dim=-1) @ v)
    expected = mha.out_proj(torch.cat(heads, dim=-1))
    out, _ = mha(x)
    assert_close(out, expected)


def test_mha_with_one_head_is_self_attention_then_the_output_projection():
    mha = MultiHeadAttention(4, 1)
    single = SelfAttention(4)
    single.q_proj.load_state_dict(mha.q_proj.state_dict())
    single.k_proj.load_state_dict(mha.k_proj.state_dict())
    single.v_proj.load_state_dict(mha.v_proj.state_dict())
    x = randn(2, 5, 4)
    assert_close(mha(x, causal=True)[0], mha.out_proj(single(x, causal=True)[0]))


def test_mha_key_and_value_default_to_query():
    mha = MultiHeadAttention(8, 2)
    x = randn(2, 4, 8)
    memory = randn(2, 6, 8, seed=1)
    assert_close(mha(x)[0], mha(x, x, x)[0])
    assert_close(mha(x, memory)[0], mha(x, memory, memory)[0])


# --- MultiHeadAttention: masks ---------------------------------------------------------------


def test_mha_rank3_mask_is_per_example_and_shared_by_heads():
    mha = MultiHeadAttention(8, 2)
    x = randn(2, 4, 8)
    mask = randn(2, 4, 4, seed=3) > -0.5
    mask[..., 0] = True
    assert_close(mha(x, mask=mask)[0], mha(x, mask=mask[:, None])[0])


def test_mha_per_head_mask_applies_to_its_head_only():
    mha = MultiHeadAttention(8, 2)
    x = randn(1, 4, 8)
    per_head = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    per_head[0, 1] = torch.ones(4, 4, dtype=torch.bool).tril()  # head 1 causal, head 0 free
    _, weights = mha(x, mask=per_head, need_weights=True, average_attn_weights=False)
    _, free = mha(x, need_weights=True, average_attn_weights=False)
    _, causal = mha(x, causal=True, need_weights=True, average_attn_weights=False)
    assert_close(weights[:, 0], free[:, 0])
    assert_close(weights[:, 1], causal[:, 1])


def test_mha_padded_keys_do_not_change_real_outputs():
    mha = MultiHeadAttention(8, 2)
    x = randn(2, 5, 8)
    valid = ~padding_blocked([5, 3], 5)  # True for real tokens
    changed = x.clone()
    changed[1, 3:] = randn(2, 8, seed=7)  # new content in the padding of example 1
    mask = valid[:, None, None, :]  # (B, 1, 1, Lk)
    assert_close(mha(x, mask=mask)[0][1, :3], mha(changed, mask=mask)[0][1, :3])


def test_mha_causal_flag_equals_lower_triangular_mask_and_combines_with_mask():
    mha = MultiHeadAttention(8, 2)
    x = randn(2, 5, 8)
    lower = torch.ones(5, 5, dtype=torch.bool).tril()
    valid = ~padding_blocked([5, 4], 5)[:, None, None, :]
    assert_close(mha(x, causal=True)[0], mha(x, mask=lower)[0])
    assert_close(mha(x, mask=valid, causal=True)[0], mha(x, mask=valid & lower)[0])


def test_mha_all_masked_row_gives_zero_attention_not_nan():
    mha = MultiHeadAttention(8, 2)
    with torch.no_grad():
        mha.out_proj.bias.copy_(randn(8, seed=5))
    x = randn(2, 3, 8).requires_grad_()
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of example 0 sees no key
    out, weights = mha(x, mask=mask, need_weights=True, average_attn_weights=False)
    assert torch.equal(weights[0, :, 1], torch.zeros(2, 3))
    # The heads output 0 there, so the layer outputs the output projection's bias alone.
    assert_close(out[0, 1], mha.out_proj.bias.detach())
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "mask, match",
    [
        (
            torch.ones(3, 4, dtype=torch.bool),
            r"mask of shape \(3, 4\) does not broadcast to scores \(batch, heads, Lq, Lk\) "
            r"of shape \(2, 2, 4, 6\)",
        ),
        (
            torch.ones(3, 4, 6, dtype=torch.bool),
            r"mask of shape \(3, 4, 6\) does not broadcast to \(batch, Lq, Lk\) "
            r"of shape \(2, 4, 6\)",
        ),
        (
            torch.ones(2, 3, 4, 6, dtype=torch.bool),
            r"mask of shape \(2, 3, 4, 6\) does not broadcast to scores .* of shape \(2, 2, 4, 6\)",
        ),
    ],
)
def test_mha_rejects_a_mask_that_does_not_broadcast(mask, match):
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=match):
        mha(torch.zeros(2, 4, 8), torch.zeros(2, 6, 8), mask=mask)


def test_mha_rejects_a_float_mask_and_points_to_the_functions_bias():
    # The module has no bias= of its own, so its error must not tell the learner to pass one.
    with pytest.raises(TypeError, match=r"mask must be boolean \(True = may attend\), got dtype"):
        MultiHeadAttention(8, 2)(torch.zeros(2, 4, 8), mask=torch.zeros(4, 4))
    with pytest.raises(TypeError, match=r"has no additive mask.*scaled_dot_product_attention"):
        MultiHeadAttention(8, 2)(torch.zeros(2, 4, 8), mask=torch.zeros(2, 4, 4))


@pytest.mark.parametrize(
    "inputs, error, match",
    [
        (
            (torch.zeros(4, 8),),
            ValueError,
            r"query must have shape \(batch, length, embed_dim\) = \(B, L, 8\), got shape \(4, 8\)",
        ),
        (
            (torch.zeros(2, 4, 6),),
            ValueError,
            r"query must have last dim embed_dim = 8, got shape \(2, 4, 6\)",
        ),
        (
            (torch.zeros(2, 4, 8), torch.zeros(2, 5, 3)),
            ValueError,
            r"key must have last dim kdim = 8, got shape \(2, 5, 3\)",
        ),
        (
            (torch.zeros(2, 4, 8), torch.zeros(3, 5, 8)),
            ValueError,
            r"same batch size: got query \(2, 4, 8\), key \(3, 5, 8\), value \(3, 5, 8\)",
        ),
        (
            (torch.zeros(2, 4, 8), torch.zeros(2, 5, 8), torch.zeros(2, 6, 8)),
            ValueError,
            r"key and value must have the same length Lk: got key \(2, 5, 8\), value \(2, 6, 8\)",
        ),
        (
            (torch.zeros(2, 4, 8, dtype=torch.float64),),
            TypeError,
            r"query has dtype torch.float64 but the module's parameters are torch.float32",
        ),
    ],
)
def test_mha_rejects_bad_inputs_naming_argument_and_shape(inputs, error, match):
    with pytest.raises(error, match=match):
        MultiHeadAttention(8, 2)(*inputs)


# --- MultiHeadAttention: dropout, initialisation, device, gradients ----------------------------


def test_mha_dropout_acts_only_in_training_mode():
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    plain = MultiHeadAttention(8, 2)
    plain.load_state_dict(mha.state_dict())
    x = randn(2, 5, 8)
    mha.eval()
    assert_close(mha(x)[0], plain(x)[0])
    mha.train()
    assert not torch.allclose(mha(x)[0], plain(x)[0])


def test_mha_dropout_is_reproducible_under_manual_seed_and_rescales_survivors():
    mha = MultiHeadAttention(8, 2, dropout=0.5).train()
    x = randn(2, 5, 8)
    torch.manual_seed(11)
    out_a, weights_a = mha(x, need_weights=True, average_attn_weights=False)
    torch.manual_seed(11)
    out_b, weights_b = mha(x, need_weights=True, average_attn_weights=False)
    assert torch.equal(out_a, out_b) and torch.equal(weights_a, weights_b)
    _, clean = mha.eval()(x, need_weights=True, average_attn_weights=False)
    kept = weights_a != 0
    assert_close(weights_a[kept], clean[kept] / 0.5)  # survivors scaled by 1 / (1 - p)


def test_mha_reset_parameters_with_a_generator_is_reproducible():
    first, second = MultiHeadAttention(8, 2, kdim=3), MultiHeadAttention(8, 2, kdim=3)
    first.reset_parameters(torch.Generator().manual_seed(4))
    torch.manual_seed(999)  # the global generator must not matter
    second.reset_parameters(torch.Generator().manual_seed(4))
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    third = MultiHeadAttention(8, 2, kdim=3)
    third.reset_parameters(torch.Generator().manual_seed(5))
    assert not torch.equal(first.q_proj.weight, third.q_proj.weight)


def test_mha_initialisation_follows_torch_conventions():
    mha = MultiHeadAttention(16, 4, kdim=4)
    for linear in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
        assert torch.equal(linear.bias, torch.zeros(16))
    xavier_bound = math.sqrt(6 / (4 + 16))  # k_proj: fan_in 4, fan_out 16
    assert mha.k_proj.weight.abs().max() <= xavier_bound
    assert mha.out_proj.weight.abs().max() <= 1 / math.sqrt(16)


def test_modules_are_reproducible_under_manual_seed():
    torch.manual_seed(0)
    a = TransformerBlock(8, 2, 16)
    torch.manual_seed(0)
    b = TransformerBlock(8, 2, 16)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_init_linear_default_reproduces_nn_linear_exactly():
    torch.manual_seed(8)
    reference = nn.Linear(5, 3)
    ours = nn.Linear(5, 3)
    torch.manual_seed(8)
    init_linear_default(ours)
    assert torch.equal(ours.weight, reference.weight) and torch.equal(ours.bias, reference.bias)


def test_mha_keeps_device_and_dtype(device):
    mha = MultiHeadAttention(8, 2, kdim=3).to(device=device, dtype=torch.float64)
    query = randn(2, 4, 8, dtype=torch.float64, device=device)
    key = randn(2, 5, 3, dtype=torch.float64, device=device)
    value = randn(2, 5, 8, dtype=torch.float64, device=device)
    out, weights = mha(query, key, value, need_weights=True)
    assert out.dtype == weights.dtype == torch.float64
    assert out.device == weights.device == query.device


def test_mha_gradcheck_float64():
    mha = MultiHeadAttention(4, 2, kdim=3, vdim=2).double()
    query = randn(2, 3, 4, dtype=torch.float64).requires_grad_()
    key = randn(2, 4, 3, dtype=torch.float64, seed=1).requires_grad_()
    value = randn(2, 4, 2, dtype=torch.float64, seed=2).requires_grad_()
    valid = ~padding_blocked([4, 2], 4)[:, None, None, :]
    assert torch.autograd.gradcheck(
        lambda q, k, v: mha(q, k, v, mask=valid)[0], (query, key, value)
    )


# --- MultiHeadAttention.from_torch ------------------------------------------------------------


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
def test_from_torch_matches_nn_multihead_attention_without_mask(need_weights, average, device):
    theirs = torch_mha().to(device)
    ours = MultiHeadAttention.from_torch(theirs)
    x = randn(2, 5, 8, device=device)
    expected, expected_weights = theirs(
        x, x, x, need_weights=need_weights, average_attn_weights=average
    )
    out, weights = ours(x, need_weights=need_weights, average_attn_weights=average)
    assert_close(out, expected)
    if need_weights:
        assert_close(weights, expected_weights)
    else:
        assert weights is None and expected_weights is None


@pytest.mark.parametrize("average", [True, False])
def test_from_torch_matches_with_key_padding_mask(average):
    theirs = torch_mha()
    ours = MultiHeadAttention.from_torch(theirs)
    x = randn(3, 5, 8)
    key_padding_mask = padding_blocked([5, 2, 4], 5)  # torch: True = padding, blocked
    valid = ~key_padding_mask[:, None, None, :]  # ours: True = may attend, (B, 1, 1, Lk)
    expected, expected_weights = theirs(
        x, x, x, key_padding_mask=key_padding_mask, average_attn_weights=average
    )
    out, weights = ours(x, mask=valid, need_weights=True, average_attn_weights=average)
    assert_close(out, expected)
    assert_close(weights, expected_weights)


def test_from_torch_matches_with_attn_mask_and_key_padding_mask():
    theirs = torch_mha()
    ours = MultiHeadAttention.from_torch(theirs)
    x = randn(2, 5, 8)
    attn_mask = torch.ones(5, 5, dtype=torch.bool).triu(diagonal=1)  # torch: True = future, blocked
    key_padding_mask = padding_blocked([5, 3], 5)
    expected, expected_weights = theirs(
        x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask
    )
    out, weights = ours(x, mask=~attn_mask & ~key_padding_mask[:, None, None, :], need_weights=True)
    assert_close(out, expected)
    assert_close(weights, expected_weights)
    # The (Lq, Lk) attn_mask alone, as a 2-D mask, and as the causal flag.
    expected, _ = theirs(x, x, x, attn_mask=attn_mask)
    assert_close(ours(x, mask=~attn_mask)[0], expected)
    assert_close(ours(x, causal=True)[0], expected)


def test_from_torch_matches_with_per_head_attn_mask():
    theirs = torch_mha()
    ours = MultiHeadAttention.from_torch(theirs)
    x = randn(2, 4, 8)
    blocked = randn(2 * 2, 4, 4, seed=9) > 0.5  # torch's (B*H, Lq, Lk), True = blocked
    blocked[..., 0] = False  # every query keeps key 0, so torch gives no NaN rows
    expected, expected_weights = theirs(x, x, x, attn_mask=blocked, average_attn_weights=False)
    out, weights = ours(
        x, mask=~blocked.view(2, 2, 4, 4), need_weights=True, average_attn_weights=False
    )
    assert_close(out, expected)
    assert_close(weights, expected_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_from_torch_matches_cross_attention_with_kdim_and_vdim(need_weights):
    theirs = torch_mha(8, 4, kdim=3, vdim=5)
    ours = MultiHeadAttention.from_torch(theirs)
    query, key, value = randn(2, 4, 8), randn(2, 6, 3, seed=1), randn(2, 6, 5, seed=2)
    key_padding_mask = padding_blocked([6, 1], 6)
    valid = ~key_padding_mask[:, None, None, :]
    expected, expected_weights = theirs(
        query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights
    )
    out, weights = ours(query, key, value, mask=valid, need_weights=need_weights)
    assert_close(out, expected)
    if need_weights:
        assert_close(weights, expected_weights)


def test_from_torch_matches_without_bias():
    theirs = torch_mha(bias=False)
    ours = MultiHeadAttention.from_torch(theirs)
    assert ours.q_proj.bias is None and ours.out_proj.bias is None
    x = randn(2, 5, 8)
    expected, expected_weights = theirs(x, x, x)
    out, weights = ours(x, need_weights=True)
    assert_close(out, expected)
    assert_close(weights, expected_weights)


def test_from_torch_copies_a_sequence_first_module_as_batch_first():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(8, 2).eval()  # batch_first=False: (L, B, E)
    ours = MultiHeadAttention.from_torch(theirs)
    x = randn(2, 5, 8)
    seq_first = x.transpose(0, 1)
    expected, _ = theirs(seq_first, seq_first, seq_first)
    assert_close(ours(x)[0], expected.transpose(0, 1))


def test_from_torch_copies_dropout_mode_and_dtype():
    theirs = torch_mha(dropout=0.25).double().train()
    ours = MultiHeadAttention.from_torch(theirs)
    assert ours.dropout == 0.25 and ours.training
    assert ours.q_proj.weight.dtype == torch.float64


def test_from_torch_result_is_independent_of_the_source():
    theirs = torch_mha()
    ours = MultiHeadAttention.from_torch(theirs)
    before = ours.q_proj.weight.clone()
    with torch.no_grad():
        theirs.in_proj_weight.add_(1.0)
    assert torch.equal(ours.q_proj.weight, before)


@given(
    batch=st.integers(1, 3),
    lq=st.integers(1, 5),
    lk=st.integers(1, 5),
    heads=st.sampled_from([1, 2, 4]),
    head_dim=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_from_torch_matches_for_random_sizes_and_padding(batch, lq, lk, heads, head_dim, seed):
    embed_dim = heads * head_dim
    theirs = torch_mha(embed_dim, heads, seed=seed)
    ours = MultiHeadAttention.from_torch(theirs)
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(batch, lq, embed_dim, generator=generator)
    memory = torch.randn(batch, lk, embed_dim, generator=generator)
    lengths = torch.randint(1, lk + 1, (batch,), generator=generator).tolist()
    key_padding_mask = padding_blocked(lengths, lk)
    expected, expected_weights = theirs(query, memory, memory, key_padding_mask=key_padding_mask)
    out, weights = ours(query, memory, mask=~key_padding_mask[:, None, None, :], need_weights=True)
    assert_close(out, expected)
    assert_close(weights, expected_weights)


def test_from_torch_rejects_what_has_no_twin():
    with pytest.raises(TypeError, match=r"m must be an nn.MultiheadAttention, got Linear"):
        MultiHeadAttention.from_torch(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"add_bias_kv or add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match=r"add_bias_kv or add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True))


# --- TransformerBlock -----------------------------------------------------------------------


def torch_encoder_layer(norm_first, seed=0):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.1, activation="relu", batch_first=True, norm_first=norm_first
    )
    return layer.eval()


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_from_torch_matches_encoder_layer_without_mask(norm_first, device):
    layer = torch_encoder_layer(norm_first).to(device)
    block = TransformerBlock.from_torch(layer)
    assert block.norm_first is norm_first and not block.training
    x = randn(2, 5, 8, device=device)
    assert_close(block(x), layer(x))


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_from_torch_matches_encoder_layer_with_padding_and_causal_masks(norm_first):
    # With grad enabled and parameters that require grad, torch takes its ordinary Python path,
    # which computes every row, padded queries included: compare all rows.
    layer = torch_encoder_layer(norm_first)
    block = TransformerBlock.from_torch(layer)
    x = randn(3, 5, 8)
    key_padding_mask = padding_blocked([5, 3, 1], 5)
    src_mask = torch.ones(5, 5, dtype=torch.bool).triu(diagonal=1)
    valid = ~key_padding_mask[:, None, None, :]
    assert_close(block(x, mask=valid), layer(x, src_key_padding_mask=key_padding_mask))
    assert_close(block(x, mask=~src_mask), layer(x, src_mask=src_mask))
    assert_close(block(x, causal=True), layer(x, src_mask=src_mask, is_causal=True))
    both = layer(x, src_mask=src_mask, src_key_padding_mask=key_padding_mask)
    assert_close(block(x, mask=valid, causal=True), both)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_from_torch_matches_encoder_layer_fast_path(norm_first, monkeypatch):
    # Under no_grad in eval mode torch takes its fused "fast path"
    # (torch._transformer_encoder_layer_fwd); the spy makes sure this test really compares with it.
    calls = []
    fused = torch._transformer_encoder_layer_fwd
    monkeypatch.setattr(
        torch, "_transformer_encoder_layer_fwd", lambda *a: calls.append(1) or fused(*a)
    )
    layer = torch_encoder_layer(norm_first)
    block = TransformerBlock.from_torch(layer)
    x = randn(3, 5, 8)
    key_padding_mask = padding_blocked([5, 3, 1], 5)
    with torch.no_grad():
        expected = layer(x, src_key_padding_mask=key_padding_mask)
        out = block(x, mask=~key_padding_mask[:, None, None, :])
    assert calls, "torch did not take its fast path"
    assert_close(out, expected)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_block_from_torch_matches_nested_tensor_encoder_on_real_rows():
    # nn.TransformerEncoder's fast path packs the batch as a nested tensor and returns zeros at
    # padded positions, where our block (like the plain layer) computes the padded queries too;
    # so only the rows of real tokens are compared.
    layer = torch_encoder_layer(norm_first=False)  # the nested-tensor path needs post-LN
    encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=True).eval()
    block = TransformerBlock.from_torch(encoder.layers[0])
    x = randn(3, 5, 8)
    key_padding_mask = padding_blocked([5, 3, 1], 5)
    with torch.no_grad():
        expected = encoder(x, src_key_padding_mask=key_padding_mask)
        out = block(x, mask=~key_padding_mask[:, None, None, :])
    real = ~key_padding_mask  # (B, L), True for real tokens
    assert_close(out[real], expected[real])


def test_block_from_torch_copies_layer_norm_eps():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, layer_norm_eps=0.5, batch_first=True).eval()
    block = TransformerBlock.from_torch(layer)
    assert block.norm1.eps == block.norm2.eps == 0.5
    x = randn(2, 5, 8)
    assert_close(block(x), layer(x))


def test_block_from_torch_rejects_what_has_no_twin():
    with pytest.raises(TypeError, match=r"layer must be an nn.TransformerEncoderLayer, got Linear"):
        TransformerBlock.from_torch(nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"activation='relu' only"):
        TransformerBlock.from_torch(nn.TransformerEncoderLayer(8, 2, 16, activation="gelu"))
    with pytest.raises(ValueError, match=r"bias=False"):
        TransformerBlock.from_torch(nn.TransformerEncoderLayer(8, 2, 16, bias=False))


def test_pre_ln_block_is_the_identity_when_both_branches_output_zero():
    block = TransformerBlock(8, 2, 16, norm_first=True)
    with torch.no_grad():
        for linear in (block.self_attn.out_proj, block.feed_forward.linear2):
            linear.weight.zero_()
            linear.bias.zero_()
    x = randn(2, 5, 8)
    assert_close(block(x), x)  # x + 0 + 0: the residual stream passes through untouched


def test_post_ln_block_ends_with_a_layer_norm():
    block = TransformerBlock(8, 2, 16, norm_first=False)
    out = block(randn(2, 5, 8) * 10 + 3)
    # LayerNorm with scale 1 and shift 0: each position has mean 0 and (biased) variance 1.
    assert_close(out.mean(dim=-1), torch.zeros(2, 5))
    assert_close(out.var(dim=-1, unbiased=False), torch.ones(2, 5), atol=1e-3)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_causal_output_ignores_later_positions(norm_first):
    block = TransformerBlock(8, 2, 16, norm_first=norm_first)
    x = randn(1, 6, 8)
    changed = x.clone()
    changed[:, 4:] = randn(1, 2, 8, seed=1)
    assert_close(block(x, causal=True)[:, :4], block(changed, causal=True)[:, :4])


def test_block_padding_does_not_change_real_rows():
    block = TransformerBlock(8, 2, 16)
    x = randn(2, 5, 8)
    changed = x.clone()
    changed[0, 2:] = randn(3, 8, seed=2)
    valid = ~padding_blocked([2, 5], 5)[:, None, None, :]
    assert_close(block(x, mask=valid)[0, :2], block(changed, mask=valid)[0, :2])


def test_block_dropout_acts_only_in_training_mode():
    block = TransformerBlock(8, 2, 16, dropout=0.5)
    x = randn(2, 5, 8)
    block.eval()
    assert_close(block(x), block(x))
    eval_out = block(x)
    block.train()
    torch.manual_seed(1)
    first = block(x)
    torch.manual_seed(1)
    assert torch.equal(first, block(x))
    assert not torch.allclose(first, eval_out)


def test_block_reset_parameters_with_a_generator_is_reproducible():
    a, b = TransformerBlock(8, 2, 16), TransformerBlock(8, 2, 16)
    with torch.no_grad():
        b.norm1.weight.fill_(2.0)
    a.reset_parameters(torch.Generator().manual_seed(0))
    b.reset_parameters(torch.Generator().manual_seed(0))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_block_keeps_device_and_dtype(device):
    block = TransformerBlock(8, 2, 16).to(device=device, dtype=torch.float64)
    out = block(randn(2, 5, 8, dtype=torch.float64, device=device), causal=True)
    assert out.dtype == torch.float64 and out.device.type == torch.device(device).type


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_gradcheck_float64(norm_first):
    block = TransformerBlock(4, 2, 6, norm_first=norm_first).double()
    x = randn(2, 3, 4, dtype=torch.float64).requires_grad_()
    valid = ~padding_blocked([3, 2], 3)[:, None, None, :]
    assert torch.autograd.gradcheck(lambda x: block(x, mask=valid), (x,))


@pytest.mark.parametrize(
    "x, match",
    [
        (
            torch.zeros(5, 8),
            r"x must have shape \(batch, length, d_model\) = \(B, L, 8\), got shape \(5, 8\)",
        ),
        (torch.zeros(2, 5, 4), r"x must have last dim d_model = 8, got shape \(2, 5, 4\)"),
    ],
)
def test_block_rejects_wrong_shapes(x, match):
    with pytest.raises(ValueError, match=match):
        TransformerBlock(8, 2, 16)(x)


def test_block_rejects_a_mask_that_does_not_broadcast():
    with pytest.raises(ValueError, match=r"mask of shape \(5, 4\) does not broadcast"):
        TransformerBlock(8, 2, 16)(torch.zeros(2, 5, 8), mask=torch.ones(5, 4, dtype=torch.bool))
