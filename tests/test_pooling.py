"""selfattn_course.pooling: masked mean, [CLS] and last-token pooling over padded batches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course.pooling import cls_pool, last_pool, masked_mean


def test_masked_mean_by_hand():
    hidden = torch.tensor([[[1.0, 10.0], [3.0, 20.0], [100.0, 100.0]]])
    valid = torch.tensor([[True, True, False]])
    # (1 + 3) / 2 = 2 and (10 + 20) / 2 = 15; the padding row 100 is ignored
    torch.testing.assert_close(masked_mean(hidden, valid), torch.tensor([[2.0, 15.0]]))


def test_all_padding_row_gives_zero_not_nan():
    hidden = torch.randn(2, 3, 4)
    valid = torch.tensor([[False, False, False], [True, False, False]])
    pooled = masked_mean(hidden, valid)
    assert torch.equal(pooled[0], torch.zeros(4))
    torch.testing.assert_close(pooled[1], hidden[1, 0])
    assert torch.equal(cls_pool(hidden, valid)[0], torch.zeros(4))
    assert torch.equal(last_pool(hidden, valid)[0], torch.zeros(4))


def test_padding_holding_nan_or_inf_does_not_leak():
    hidden = torch.tensor([[[1.0], [float("nan")], [float("inf")]]])
    valid = torch.tensor([[True, False, False]])
    torch.testing.assert_close(masked_mean(hidden, valid), torch.tensor([[1.0]]))


def test_masked_mean_has_no_nan_gradient_on_an_empty_row():
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    valid = torch.tensor([[False, False, False], [True, True, False]])
    masked_mean(hidden, valid).sum().backward()
    assert torch.isfinite(hidden.grad).all()
    assert torch.equal(hidden.grad[0], torch.zeros(3, 4))


def test_cls_pool_takes_the_first_real_position_right_or_left_padded():
    hidden = torch.arange(12.0).reshape(2, 3, 2)
    torch.testing.assert_close(cls_pool(hidden), hidden[:, 0])
    left = torch.tensor([[False, True, True], [True, True, True]])
    torch.testing.assert_close(cls_pool(hidden, left), torch.stack([hidden[0, 1], hidden[1, 0]]))


def test_last_pool_takes_the_last_real_position():
    hidden = torch.arange(12.0).reshape(2, 3, 2)
    right = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(last_pool(hidden, right), torch.stack([hidden[0, 1], hidden[1, 2]]))


def test_mismatched_mask_is_named():
    with pytest.raises(ValueError, match=r"valid of shape \(2, 4\) does not match"):
        masked_mean(torch.zeros(2, 3, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="torch.bool"):
        masked_mean(torch.zeros(2, 3, 5), torch.ones(2, 3))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(0, 6),
    st.integers(1, 3),
    st.integers(0, 2**31 - 1),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_poolings_match_a_loop_over_rows(batch, length, d, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, d, generator=g, dtype=dtype)
    valid = torch.rand(batch, length, generator=g) < 0.6
    mean, first, last = (
        masked_mean(hidden, valid),
        cls_pool(hidden, valid),
        last_pool(hidden, valid),
    )
    assert mean.dtype == dtype and mean.shape == (batch, d)
    for b in range(batch):
        real = [hidden[b, j] for j in range(length) if valid[b, j]]
        if not real:
            expected = (torch.zeros(d, dtype=dtype),) * 3
        else:
            expected = (sum(real) / len(real), real[0], real[-1])
        for got, want in zip((mean[b], first[b], last[b]), expected, strict=True):
            torch.testing.assert_close(got, want)
