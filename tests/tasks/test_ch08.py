"""Chapter 8's graded tasks (selfattn_course/grading/tasks/ch08.py): the references are right.

The tests that cover every chapter check that the notebook's solutions get full marks and that
each mistake gets its hint. This file checks what only chapter 8 can: each reference
against an independent computation (by hand, torch's LSTM cell, full causal attention), one
property per test.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from selfattn_course.attention import KVCache, scaled_dot_product_attention
from selfattn_course.grading.tasks import ch08


def test_the_step_counts_are_the_longest_chains_of_dependent_cells():
    # Longest path in the grid of LSTM cells (l, t) with edges (l, t-1) -> (l, t) and
    # (l-1, t) -> (l, t), found by dynamic programming; a Transformer layer is one node.
    layers, n = ch08.STACK_LAYERS, ch08.STACK_LENGTH
    depth = {}
    for layer, t in itertools.product(range(layers), range(n)):
        before = [depth[cell] for cell in ((layer, t - 1), (layer - 1, t)) if cell in depth]
        depth[layer, t] = 1 + max(before, default=0)
    assert ch08.STEPS.expected == (layers, max(depth.values()))
    assert ch08.STEPS.expected == (6, 517)  # by hand: 512 + 6 - 1


def test_forget_gate_is_what_scales_the_cell_state_of_torchs_lstm_cell():
    # c' = f * c + i * g, so c'(c = 1) - c'(c = 0) = f: read f off torch's own cell.
    torch.manual_seed(0)
    cell = nn.LSTMCell(5, 4).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    h = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        _, c_from_ones = cell(x, (h, torch.ones(3, 4, dtype=torch.float64)))
        _, c_from_zeros = cell(x, (h, torch.zeros(3, 4, dtype=torch.float64)))
        ours = ch08.forget_gate(x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    torch.testing.assert_close(ours, c_from_ones - c_from_zeros)


def test_forget_gate_by_hand_for_width_one():
    # d = 1: rows (i, f, g, o) = (0, 1, 2, 3); only row 1 counts.
    weight_ih = torch.tensor([[9.0], [2.0], [9.0], [9.0]])
    weight_hh = torch.tensor([[9.0], [-1.0], [9.0], [9.0]])
    bias_ih = torch.tensor([9.0, 0.5, 9.0, 9.0])
    bias_hh = torch.tensor([9.0, 0.25, 9.0, 9.0])
    x, h = torch.tensor([[1.0]]), torch.tensor([[0.5]])
    # 2·1 + 0.5 - 1·0.5 + 0.25 = 2.25
    expected = torch.sigmoid(torch.tensor([[2.25]]))
    torch.testing.assert_close(
        ch08.forget_gate(x, h, weight_ih, weight_hh, bias_ih, bias_hh), expected
    )


def test_attention_step_equals_the_last_row_of_full_causal_attention():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 2, 4, 9, 8, dtype=torch.float64).unbind(0)  # (B, H, L, d)
    full = scaled_dot_product_attention(q, k, v, causal=True)
    for t in range(9):
        step = ch08.attention_step(
            q[..., t : t + 1, :],
            k[..., t : t + 1, :],
            v[..., t : t + 1, :],
            k[..., :t, :],
            v[..., :t, :],
        )
        torch.testing.assert_close(step, full[..., t : t + 1, :])


def test_attention_step_over_a_kv_cache_reproduces_full_causal_attention():
    torch.manual_seed(2)
    batch, heads, n, d, dv = 2, 3, 6, 4, 5
    q, k = torch.randn(2, batch, heads, n, d, dtype=torch.float64).unbind(0)
    v = torch.randn(batch, heads, n, dv, dtype=torch.float64)
    cache = KVCache(batch, heads, d, value_dim=dv, dtype=torch.float64, device="cpu")
    rows = []
    for t in range(n):
        past_keys, past_values = cache.keys, cache.values
        rows.append(
            ch08.attention_step(
                q[..., t : t + 1, :],
                k[..., t : t + 1, :],
                v[..., t : t + 1, :],
                past_keys,
                past_values,
            )
        )
        cache.append(k[..., t : t + 1, :], v[..., t : t + 1, :])
    assert len(cache) == n
    torch.testing.assert_close(
        torch.cat(rows, dim=-2), scaled_dot_product_attention(q, k, v, causal=True)
    )


def test_attention_step_with_an_empty_cache_returns_the_new_value():
    case = ch08._empty_cache_case()
    torch.testing.assert_close(ch08.attention_step(**case.args), case.args["v"])
