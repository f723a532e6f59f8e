"""Chapter 24's graded tasks (selfattn_course/grading/tasks/ch24.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 24 can: each reference
against an independent computation (by hand, a loop, torch), one property per test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfattn_course import costs
from selfattn_course.attention import TransformerBlock
from selfattn_course.grading.tasks import ch24


@pytest.mark.parametrize(("d", "d_ff", "heads"), [(2, 3, 1), (16, 64, 4), (48, 100, 6)])
def test_block_parameters_equals_the_modules_own_count(d, d_ff, heads):
    block = TransformerBlock(d, heads, d_ff)
    assert ch24.block_parameters(d, d_ff) == sum(p.numel() for p in block.parameters())


def test_block_parameters_by_hand_d2_dff3():
    # attention 4·4 + 4·2 = 24; FFN 2·3 + 3 + 3·2 + 2 = 17; LayerNorms 2·2·2 = 8
    assert ch24.block_parameters(2, 3) == 49


def test_flops_per_token_times_n_matches_the_costs_module_plus_the_ffn():
    n, d, d_ff = 37, 24, 96
    ffn = 2 * 2 * n * d * d_ff
    assert n * ch24.flops_per_token(n, d, d_ff) == costs.attention_layer_flops(n, d) + ffn


def test_pre_ln_block_equals_torch_encoder_layer_without_biases_or_affine():
    torch.manual_seed(0)
    d, d_ff, heads = 8, 20, 2
    layer = nn.TransformerEncoderLayer(
        d, heads, d_ff, dropout=0.0, batch_first=True, norm_first=True, bias=False
    ).double()
    layer.eval()
    x = torch.randn(3, 5, d, dtype=torch.float64)
    w_q, w_k, w_v = layer.self_attn.in_proj_weight.chunk(3)
    ours = ch24.pre_ln_block(
        x,
        w_q.T,
        w_k.T,
        w_v.T,
        layer.self_attn.out_proj.weight.T,
        layer.linear1.weight.T,
        layer.linear2.weight.T,
        heads,
    )
    torch.testing.assert_close(ours, layer(x).detach())
