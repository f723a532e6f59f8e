"""selfattn_course.debug: every check passes on a correct layer and fails on one planted bug."""

from __future__ import annotations

import math

import pytest
import torch

from selfattn_course import debug


def careful(q, k, v, mask=None):
    """A correct layer: q scaled before the product, softmax in float32 at least, zero rows."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    work = scores.float() if scores.dtype == torch.float16 else scores
    if mask is not None:
        work = work.masked_fill(~mask, float("-inf"))
    row_max = work.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(work - row_max)
    total = exp.sum(dim=-1, keepdim=True)
    weights = (exp / torch.where(total > 0, total, torch.ones_like(total))).to(q.dtype)
    return weights @ v, weights


def planted(bug):
    """The careful layer with one bug."""

    def attention(q, k, v, mask=None):
        d = q.shape[-1]
        scale = 1.0 if bug == "no scale" else d**-0.5
        scores = q @ k.transpose(-2, -1) * scale if bug == "late scale" else (q * scale) @ k.mT
        if mask is not None:
            if bug == "inverted mask":
                mask = ~mask
            if bug == "transposed mask":
                mask = mask.transpose(-2, -1)
            scores = scores.masked_fill(~mask, float("-inf"))
        dim = -2 if bug == "softmax over queries" else -1
        weights = torch.softmax(scores, dim=dim)  # NaN on a row of -inf
        return weights @ v, weights

    return attention


class WrongSoftmaxBackward(torch.autograd.Function):
    """Softmax whose backward forgets the −w (w·g) term."""

    @staticmethod
    def forward(ctx, scores):
        weights = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(weights)
        return weights

    @staticmethod
    def backward(ctx, grad):
        (weights,) = ctx.saved_tensors
        return weights * grad


def wrong_backward(q, k, v, mask=None):
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = WrongSoftmaxBackward.apply(scores)
    return weights @ v, weights


CASES = [
    (debug.check_causal_mask, "inverted mask", "NaN"),
    (debug.check_causal_mask, "transposed mask", "future"),
    (debug.check_padding_mask, "transposed mask", "wrong axis"),
    (debug.check_softmax_axis, "softmax over queries", "dim=-1"),
    (debug.check_score_scale, "no scale", "√d"),
    (debug.check_all_masked_rows, "no scale", "NaN"),
    (debug.check_float16_scores, "late scale", "65504"),
]


@pytest.mark.parametrize(("check", "bug", "words"), CASES)
def test_each_check_fails_on_its_planted_bug_and_says_why(check, bug, words):
    result = check(planted(bug))
    assert not result.passed
    assert words in result.message


@pytest.mark.parametrize("check", sorted({c for c, _, _ in CASES}, key=lambda c: c.__name__))
def test_each_check_passes_on_the_careful_layer(check):
    assert check(careful).passed


def test_gradient_check_catches_a_wrong_backward_and_passes_autograd():
    assert not debug.check_gradients(wrong_backward).passed
    assert debug.check_gradients(careful).passed


def test_run_checklist_on_the_careful_layer_passes_everything():
    assert all(debug.run_checklist(careful))


def test_entropy_of_uniform_rows_is_log_n_and_of_one_hot_rows_is_zero():
    uniform = torch.full((1, 1, 3, 4), 0.25)
    one_hot = torch.eye(4)[:3].reshape(1, 1, 3, 4)
    entropy = debug.attention_entropy(torch.cat([uniform, one_hot], dim=1))
    torch.testing.assert_close(entropy, torch.tensor([math.log(4), 0.0]))


def test_head_collapse_names_the_one_hot_head():
    weights = torch.stack([torch.full((5, 5), 0.2), torch.eye(5)])[None]  # (1, 2, 5, 5)
    result = debug.check_head_collapse(weights)
    assert not result.passed
    assert "[1]" in result.message
    assert debug.check_head_collapse(weights[:, :1]).passed


def test_warmup_check_accepts_linear_warmup_and_rejects_a_constant_rate():
    def warm(step):
        return debug.linear_warmup(step, peak_lr=1e-3, warmup_steps=100)

    assert debug.check_warmup(warm, warmup_steps=100).passed
    assert not debug.check_warmup(lambda step: 1e-3, warmup_steps=100).passed


def test_warmup_check_accepts_the_schedule_of_vaswani_et_al():
    def vaswani(step, d_model=512, warmup=4000):
        t = step + 1
        return d_model**-0.5 * min(t**-0.5, t * warmup**-1.5)

    assert debug.check_warmup(vaswani, warmup_steps=4000).passed


def test_linear_warmup_reaches_the_peak_at_the_last_warmup_step():
    assert debug.linear_warmup(0, peak_lr=1.0, warmup_steps=4) == 0.25
    assert debug.linear_warmup(3, peak_lr=1.0, warmup_steps=4) == 1.0
    assert debug.linear_warmup(50, peak_lr=1.0, warmup_steps=4) == 1.0
