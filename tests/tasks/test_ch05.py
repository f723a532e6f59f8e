"""Chapter 5's tasks (selfattn_course/grading/tasks/ch05.py): the reference layers against the
formula and nn.MultiheadAttention, their seeded weights, and the provided helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selfattn_course.grading import CheckFailed, check
from selfattn_course.grading.spec.calls import LayerSpec
from selfattn_course.grading.tasks import ch05


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


@pytest.mark.parametrize("task", ["split_heads", "merge_heads"])
def test_the_packages_heads_cannot_stand_in_for_the_learners(task):
    # selfattn_course.attention has split_heads and merge_heads: calling them is not solving it.
    import selfattn_course.attention as package

    ready_made = getattr(package, task)

    def submission(*args):
        return ready_made(*args)

    with pytest.raises(CheckFailed, match=f"selfattn_course.attention.{task}"):
        check(f"ch05.{task}", submission)
