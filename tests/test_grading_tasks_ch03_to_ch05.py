"""The graded tasks of chapters 3-5 (selfattn_course/grading/tasks/ch03.py, ch04.py, ch05.py):
their references against hand arithmetic, torch and independent implementations.

The generic properties of every task (the reference passes its cases, each known mistake fails
with its hint, hidden cases cover every device and float64) are in test_grading_checks.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfattn_course.grading import CheckFailed, check
from selfattn_course.grading.spec.calls import LayerSpec
from selfattn_course.grading.tasks import ch03, ch04, ch05

# --- chapter 3 ----------------------------------------------------------------------------------


def test_flop_counts_by_hand():
    # n = 2, d = 3: projections 4 · 2·2·3·3 = 144, scores and mixing 2 · 2·2·2·3 = 48
    assert ch03.attention_flops(2, 3) == 192
    assert ch03.rnn_flops(2, 3) == 72  # 2 steps · 2 products · 2·3·3


def test_the_crossover_is_the_largest_length_where_attention_costs_no_more_than_an_lstm():
    d, n = ch03.CROSSOVER_WIDTH, ch03._crossover_length(ch03.CROSSOVER_WIDTH)
    lstm = lambda length: 16 * length * d**2  # noqa: E731
    assert ch03.attention_flops(n, d) <= lstm(n)
    assert ch03.attention_flops(n + 1, d) > lstm(n + 1)


def test_sizes_by_hand():
    assert ch03.weights_mib(1, 12, 512, 4) == 12  # 12 · 2**18 numbers · 4 bytes
    assert ch03.kv_cache_gib(32, 4096, 4096, 2) == 2  # 2 · 32 · 2**12 · 2**12 · 2 bytes


def test_the_longest_context_fits_and_one_more_token_does_not():
    size = lambda n: ch03.kv_cache_gib(
        ch03.CACHE_LAYERS, n, ch03.CACHE_D_MODEL, ch03.CACHE_BYTES_PER_NUMBER
    )  # noqa: E731
    assert size(ch03.LONGEST_CONTEXT) <= ch03.CACHE_BUDGET_GIB < size(ch03.LONGEST_CONTEXT + 1)


# --- chapter 4 ----------------------------------------------------------------------------------


def test_patchify_agrees_with_unfold():
    images = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    torch.testing.assert_close(
        ch04.patchify(images, 4), F.unfold(images, 4, stride=4).transpose(1, 2)
    )


def test_patchify_by_hand():
    tokens = ch04.patchify(torch.arange(16.0).reshape(1, 1, 4, 4), 2)
    assert tokens[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


def test_the_next_item_mask_of_a_left_padded_history():
    mask = ch04.next_item_mask(torch.tensor([[0, 4, 9]]))[0, 0].int().tolist()
    assert mask == [
        [0, 0, 0],
        [0, 1, 0],
        [0, 1, 1],
    ]  # position 0 is padding: it sees nothing, nobody sees it


def test_a_mask_task_refuses_the_package_masks():
    from selfattn_course import masks

    def next_item_mask(history):
        return masks.combine(
            masks.key_padding_to_attention(history != 0), masks.causal_mask(history.shape[-1])
        )

    with pytest.raises(CheckFailed, match="your code called selfattn_course.masks"):
        check("ch04.next_item_mask", next_item_mask)


# --- chapter 5 ----------------------------------------------------------------------------------


def test_the_fixed_layer_is_the_formula_with_the_seeds_weights():
    layer = ch05.FixedSelfAttention(8).double()
    layer.load_state_dict(ch05._seed_layer_weights(LayerSpec("SelfAttention", (8,), 3)))
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        out, weights = layer(x)
        q, k, v = layer.query_linear(x), layer.key_linear(x), layer.value_linear(x)
        expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, expected @ v)


def test_the_multi_head_reference_matches_nn_multihead_attention_with_its_weights():
    spec = LayerSpec("MultiHeadSelfAttention", (16, 4), 7)
    torch_mha = ch05._torch_mha(spec)
    layer = ch05.ReferenceMultiHeadSelfAttention(16, 4).double()
    layer.load_state_dict(ch05._mha_weights(spec))
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    blocked = torch.ones(5, 5, dtype=torch.bool).triu(1)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    with torch.no_grad():
        ours, our_weights = layer(x, ch05.course_mask(blocked, padding))
        theirs, their_weights = torch_mha(
            x, x, x, attn_mask=blocked, key_padding_mask=padding, average_attn_weights=False
        )
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(our_weights, their_weights)


def test_the_seeded_weights_leave_torchs_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    ch05._mha_weights(LayerSpec("MultiHeadSelfAttention", (8, 2), 1))
    assert torch.equal(torch.rand(1), expected)


def split_heads(x, num_heads):
    """A wrong split (strided heads), standing where a learner's would."""
    batch, length, width = x.shape
    return x.reshape(batch, length, width // num_heads, num_heads).permute(0, 3, 1, 2)


def merge_heads(x):
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj, self.k_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.v_proj, self.out_proj = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        q, k, v = (
            split_heads(proj(x), self.num_heads) for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        return self.out_proj(merge_heads(weights @ v)), weights


def test_a_layer_is_graded_with_the_correct_split_heads_in_place_of_the_learners():
    check("ch05.multi_head_self_attention", MultiHeadSelfAttention, hidden=True)
    assert globals()["split_heads"] is split_heads
    with pytest.raises(CheckFailed, match="every h-th feature"):
        check("ch05.split_heads", split_heads)
