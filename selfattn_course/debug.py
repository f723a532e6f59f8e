"""A debugging checklist for attention, as code (chapter 30).

Each check is a small function that runs one attention implementation on inputs it draws itself
(seeded) and returns a :class:`CheckResult`: whether it passed, and a message that says what was
measured and, when it failed, what the usual bug is.

The implementation under test is a function ``attention(q, k, v, mask) -> (out, weights)``:

- ``q``: ``(..., Lq, d)``, ``k``: ``(..., Lk, d)``, ``v``: ``(..., Lk, dv)``;
- ``mask``: ``None`` or boolean, broadcastable to ``(..., Lq, Lk)``, **True = may attend** (the
  course's convention; ``torch.nn.MultiheadAttention``'s ``attn_mask`` uses the opposite);
- ``out``: ``(..., Lq, dv)``; ``weights``: ``(..., Lq, Lk)``, the softmax over the keys.

:func:`attention_entropy`, :func:`check_head_collapse`, :func:`linear_warmup` and
:func:`check_warmup` look at weights and learning-rate schedules instead of a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from selfattn_course.masks import causal_mask

Attention = Callable[..., tuple[torch.Tensor, torch.Tensor]]

__all__ = [
    "CheckResult",
    "attention_entropy",
    "check_all_masked_rows",
    "check_causal_mask",
    "check_float16_scores",
    "check_gradients",
    "check_head_collapse",
    "check_padding_mask",
    "check_score_scale",
    "check_softmax_axis",
    "check_warmup",
    "linear_warmup",
    "run_checklist",
]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its name, whether it passed, the measured value, a message."""

    name: str
    passed: bool
    value: float
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.name}: {self.message}"


def _non_finite(name: str, count: float) -> CheckResult:
    return CheckResult(
        name,
        False,
        count,
        f"{count:.0f} outputs are NaN or inf, so the property cannot hold: a row of the softmax "
        "is all -inf (see the all-masked-row check) or the softmax runs over the wrong axis",
    )


def _randn(shape, generator, dtype=torch.float64):
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float64).to(dtype)


def _qkv(batch, length, d, seed, dtype=torch.float64, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(_randn((batch, length, d), generator, dtype) * scale for _ in range(3))


# --- masks ----------------------------------------------------------------------------------------


def check_causal_mask(
    attention: Attention, *, length: int = 6, d: int = 8, seed: int = 0, atol: float = 1e-9
) -> CheckResult:
    """With a causal mask, changing the key and value of the last position must leave the
    outputs of every earlier position unchanged (they may not see the future)."""
    q, k, v = _qkv(2, length, d, seed)
    mask = causal_mask(length)
    before, _ = attention(q, k, v, mask)
    k2, v2 = k.clone(), v.clone()
    k2[:, -1] += 5.0
    v2[:, -1] += 5.0
    after, _ = attention(q, k2, v2, mask)
    if not bool(torch.isfinite(before).all() and torch.isfinite(after).all()):
        return _non_finite("causal mask", float((~torch.isfinite(after)).sum()))
    change = float((after[:, :-1] - before[:, :-1]).abs().max())
    if change <= atol:
        return CheckResult("causal mask", True, change, "earlier outputs ignore a future key")
    return CheckResult(
        "causal mask",
        False,
        change,
        f"an earlier output changed by {change:.3g} when the last key changed: the mask lets "
        "queries see the future (inverted mask: True = may attend; or tril/triu swapped)",
    )


def check_padding_mask(
    attention: Attention, *, lengths=(5, 3), length: int = 6, d: int = 8, seed: int = 1
) -> CheckResult:
    """With a key-padding mask ``(B, 1, L)``, changing the padded positions' keys and values
    must leave every real position's output unchanged."""
    q, k, v = _qkv(len(lengths), length, d, seed)
    valid = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    mask = valid[:, None, :]  # (B, 1, L): the same keys for every query
    before, _ = attention(q, k, v, mask)
    padded = ~valid[:, :, None]  # (B, L, 1)
    after, _ = attention(q, k + 7.0 * padded, v + 7.0 * padded, mask)
    if not bool(torch.isfinite(before).all() and torch.isfinite(after).all()):
        return _non_finite("padding mask", float((~torch.isfinite(after)).sum()))
    change = float(((after - before) * valid[:, :, None]).abs().max())
    if change <= 1e-9:
        return CheckResult("padding mask", True, change, "real outputs ignore padded keys")
    return CheckResult(
        "padding mask",
        False,
        change,
        f"a real position's output changed by {change:.3g} when padding changed: the mask "
        "blocks the wrong axis (queries instead of keys) or is inverted",
    )


def check_all_masked_rows(
    attention: Attention, *, length: int = 5, d: int = 8, seed: int = 2
) -> CheckResult:
    """A query whose every key is masked must give finite numbers (the course: zeros)."""
    q, k, v = _qkv(1, length, d, seed)
    mask = torch.ones(length, length, dtype=torch.bool)
    mask[0] = False  # query 0 may attend to nothing (e.g. a padded query)
    out, weights = attention(q, k, v, mask)
    finite = bool(torch.isfinite(out).all() and torch.isfinite(weights).all())
    bad = float((~torch.isfinite(out)).sum())
    if finite:
        return CheckResult("all-masked row", True, 0.0, "a fully masked query gives finite output")
    return CheckResult(
        "all-masked row",
        False,
        bad,
        f"{bad:.0f} output numbers are NaN or inf: softmax over a row of -inf is 0/0; "
        "give such rows zero weight (or a large negative number instead of -inf)",
    )


# --- softmax and scale ----------------------------------------------------------------------------


def check_softmax_axis(
    attention: Attention, *, lq: int = 4, lk: int = 7, d: int = 8, seed: int = 3
) -> CheckResult:
    """Each query's weights (the last axis, over the keys) must sum to 1."""
    generator = torch.Generator().manual_seed(seed)
    q = _randn((2, lq, d), generator)
    k, v = _randn((2, lk, d), generator), _randn((2, lk, d), generator)
    _, weights = attention(q, k, v, None)
    error = float((weights.sum(dim=-1) - 1).abs().max())
    if error <= 1e-6:
        return CheckResult("softmax axis", True, error, "every query's weights sum to 1")
    return CheckResult(
        "softmax axis",
        False,
        error,
        f"rows of the weights miss 1 by up to {error:.3g}: the softmax runs over the queries "
        "(dim=-2) instead of the keys (dim=-1)",
    )


def check_score_scale(
    attention: Attention, *, d: int = 64, length: int = 32, seed: int = 4, tolerance: float = 2.0
) -> CheckResult:
    """At unit-variance ``q`` and ``k`` the scores should have variance about 1.

    The scores are recovered from the weights: within a row, ``log w_j = s_j − logsumexp(s)``,
    so the variance of ``log w`` over the keys is the variance of the scores. Unscaled
    scores ``q·k`` have variance ``d``; ``/√d`` brings it to 1 (Vaswani et al., 2017, §3.2.1).
    """
    q, k, v = _qkv(4, length, d, seed)
    _, weights = attention(q, k, v, None)
    variance = float(torch.log(weights).var(dim=-1).mean())
    if 1 / tolerance <= variance <= tolerance:
        return CheckResult("score scale", True, variance, f"score variance {variance:.2f} ≈ 1")
    return CheckResult(
        "score scale",
        False,
        variance,
        f"score variance {variance:.3g} at d = {d} (expected ≈ 1): the scores are not divided "
        f"by √d (unscaled: ≈ d = {d}) or are divided by d (≈ 1/d)",
    )


def check_float16_scores(
    attention: Attention, *, d: int = 64, length: int = 16, magnitude: float = 64.0, seed: int = 5
) -> CheckResult:
    """Run in float16 on large activations (entries of standard deviation ``magnitude``) and
    compare with the same function in float64: the output must be finite and close.

    float16's largest number is 65504; ``q·k`` over ``d`` products of entries of size
    ``magnitude`` passes it before the ``/√d`` when the scale is applied after the product.
    """
    q, k, v = _qkv(1, length, d, seed)
    q, k = q * magnitude, k * magnitude
    reference, _ = attention(q, k, v, None)
    out, _ = attention(q.half(), k.half(), v.half(), None)
    out = out.double()
    if not bool(torch.isfinite(out).all()):
        bad = float((~torch.isfinite(out)).sum())
        return CheckResult(
            "float16 scores",
            False,
            bad,
            f"{bad:.0f} float16 outputs are NaN or inf: q·kᵀ overflows 65504 before the scale; "
            "scale q first, or compute the scores and softmax in float32",
        )
    error = float((out - reference).abs().max())
    return CheckResult(
        "float16 scores",
        error <= 0.05,
        error,
        f"float16 output within {error:.2g} of float64",
    )


# --- gradients ------------------------------------------------------------------------------------


def check_gradients(
    attention: Attention, *, length: int = 4, d: int = 3, seed: int = 6, eps: float = 1e-6
) -> CheckResult:
    """Compare the backward pass with a central finite difference, in float64.

    For a random probe ``p`` and direction ``u`` the scalar ``f = Σ p · out(q, k, v)`` has
    directional derivative ``∇f · u``, from autograd, and ``(f(x + εu) − f(x − εu)) / 2ε``,
    from two forward passes; they agree to about ``ε²`` when the backward is right. Catches a
    wrong hand-written backward (``torch.autograd.gradcheck`` does the same entry by entry).
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = [_randn((1, length, d), generator) for _ in range(3)]
    directions = [_randn((1, length, d), generator) for _ in range(3)]
    probe = _randn((1, length, d), generator)
    mask = causal_mask(length)

    def f(q, k, v):
        return (attention(q, k, v, mask)[0] * probe).sum()

    leaves = [x.clone().requires_grad_() for x in inputs]
    value = f(*leaves)
    if not bool(torch.isfinite(value)):
        return _non_finite("gradient check", 1.0)
    grads = torch.autograd.grad(value, leaves)
    analytic = float(sum((g * u).sum() for g, u in zip(grads, directions, strict=True)))
    with torch.no_grad():
        plus = f(*(x + eps * u for x, u in zip(inputs, directions, strict=True)))
        minus = f(*(x - eps * u for x, u in zip(inputs, directions, strict=True)))
    numerical = float((plus - minus) / (2 * eps))
    error = abs(analytic - numerical) / max(1.0, abs(numerical))
    if error <= 1e-6:
        return CheckResult(
            "gradient check", True, error, f"backward matches finite differences ({error:.1g})"
        )
    return CheckResult(
        "gradient check",
        False,
        error,
        f"backward and finite differences differ by {error:.3g} (relative) in float64: "
        "the hand-written gradient is wrong",
    )


# --- heads and training ---------------------------------------------------------------------------


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the attention rows of each head.

    ``weights``: ``(B, H, Lq, Lk)``, rows summing to 1. Returns ``(H,)``:
    ``−Σ_j w_j log w_j`` per row (with ``0 log 0 = 0``), averaged over batch and queries.
    A uniform row over ``n`` keys has entropy ``log n``; a one-hot row has 0.
    """
    if weights.ndim != 4:
        raise ValueError(f"weights must be (B, H, Lq, Lk), got shape {tuple(weights.shape)}")
    terms = torch.where(weights > 0, weights * torch.log(weights), torch.zeros_like(weights))
    return -terms.sum(dim=-1).mean(dim=(0, 2))


def check_head_collapse(weights: torch.Tensor, *, min_fraction: float = 0.1) -> CheckResult:
    """Flag heads whose mean entropy is below ``min_fraction · log Lk`` (nearly one-hot rows)."""
    entropy = attention_entropy(weights)
    limit = min_fraction * math.log(weights.shape[-1])
    collapsed = [int(h) for h in torch.nonzero(entropy < limit).flatten()]
    if not collapsed:
        return CheckResult(
            "head entropy", True, float(entropy.min()), "no head below the entropy floor"
        )
    return CheckResult(
        "head entropy",
        False,
        float(entropy.min()),
        f"heads {collapsed} have mean entropy below {limit:.2f} nats: each query puts almost "
        "all its weight on one key (collapse); check the scale, the logits' growth, the LR",
    )


def linear_warmup(step: int, *, peak_lr: float, warmup_steps: int) -> float:
    """The learning rate at ``step`` (0-based): rising linearly to ``peak_lr`` over
    ``warmup_steps`` steps, then constant."""
    return peak_lr * min(1.0, (step + 1) / warmup_steps)


def check_warmup(
    schedule: Callable[[int], float], *, warmup_steps: int, start_fraction: float = 0.1
) -> CheckResult:
    """A warm-up starts at no more than ``start_fraction`` of its peak and never decreases over
    its ``warmup_steps`` steps (steps ``0 .. warmup_steps − 1``)."""
    rates = [schedule(step) for step in range(warmup_steps)]
    peak = max(rates)
    rising = all(b >= a for a, b in zip(rates, rates[1:], strict=False))
    first = rates[0] / peak if peak > 0 else 0.0
    if rising and first <= start_fraction:
        return CheckResult("warm-up", True, first, f"starts at {first:.2g} of its peak and rises")
    problem = (
        "decreases during the warm-up"
        if not rising
        else f"starts at {first:.2g} of its peak (no warm-up)"
    )
    return CheckResult(
        "warm-up",
        False,
        first,
        f"the learning rate {problem}: post-LN Transformers trained with Adam often diverge "
        "early without a warm-up",
    )


def run_checklist(attention: Attention) -> list[CheckResult]:
    """Every check that takes an attention function, in the order of chapter 30's list."""
    checks = (
        check_causal_mask,
        check_padding_mask,
        check_softmax_axis,
        check_score_scale,
        check_all_masked_rows,
        check_float16_scores,
        check_gradients,
    )
    return [check(attention) for check in checks]
