"""selfattn_course.approximate: Linformer and Performer against exact attention."""

from __future__ import annotations

import pytest
import torch

from selfattn_course.approximate import (
    gaussian_features,
    linformer_attention,
    linformer_projection,
    performer_attention,
    performer_kernel,
    positive_random_features,
)
from selfattn_course.attention import scaled_dot_product_attention


def _qkv(n=16, d=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn((2, n, d), generator=generator, dtype=torch.float64) for _ in "qkv")


def test_linformer_with_the_identity_projection_is_exact_attention():
    q, k, v = _qkv()
    identity = torch.eye(16, dtype=torch.float64)
    torch.testing.assert_close(
        linformer_attention(q, k, v, identity), scaled_dot_product_attention(q, k, v)
    )


def test_linformer_output_has_the_queries_length_and_value_width():
    q, k, v = _qkv(n=32)
    proj = linformer_projection(8, 32, seed=1, dtype=torch.float64)
    assert linformer_attention(q, k, v, proj).shape == (2, 32, 4)


def test_linformer_projection_is_seeded():
    assert torch.equal(linformer_projection(4, 9, seed=3), linformer_projection(4, 9, seed=3))


def test_linformer_rejects_a_projection_of_the_wrong_length():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="proj_k must have shape"):
        linformer_attention(q, k, v, torch.eye(15, dtype=torch.float64))


def test_positive_random_features_by_hand():
    # x = (1, 0), ω = [(1, 0), (0, 2)]: exp(x ωᵀ − |x|²/2) / √2 = exp((1 − 0.5, 0 − 0.5)) / √2
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    omega = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    by_hand = torch.exp(torch.tensor([[0.5, -0.5]], dtype=torch.float64)) / 2**0.5
    torch.testing.assert_close(positive_random_features(x, omega), by_hand)


def test_performer_features_are_positive():
    q, _, _ = _qkv()
    omega = gaussian_features(32, 4, seed=0, dtype=torch.float64)
    assert bool((positive_random_features(q * 3, omega) > 0).all())


@pytest.mark.parametrize("orthogonal", [False, True])
def test_performer_kernel_estimate_converges_to_exp_of_the_dot_product(orthogonal):
    q, k, _ = _qkv(n=8, d=4, seed=2)
    q, k = q * 0.5, k * 0.5
    exact = torch.exp(q @ k.transpose(-2, -1))
    errors = []
    for m in (16, 1024, 32768):
        omega = gaussian_features(m, 4, seed=5, orthogonal=orthogonal, dtype=torch.float64)
        errors.append(float(((performer_kernel(q, k, omega) - exact).abs() / exact).mean()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05


def test_orthogonal_features_have_gaussian_norms_and_orthogonal_blocks():
    omega = gaussian_features(8, 4, seed=0, orthogonal=True, dtype=torch.float64)
    block = omega[:4] / omega[:4].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(4, dtype=torch.float64))


def test_performer_attention_approaches_exact_attention_as_features_grow():
    q, k, v = _qkv(n=32, d=4, seed=4)
    q, k = q * 0.5, k * 0.5  # FAVOR+'s variance grows like exp(|q + k|²): keep the scores small
    exact = scaled_dot_product_attention(q, k, v)
    errors = []
    for m in (8, 32768):
        omega = gaussian_features(m, 4, seed=1, dtype=q.dtype)
        errors.append(float((performer_attention(q, k, v, omega) - exact).abs().mean()))
    assert errors[1] < errors[0] / 5
    assert errors[1] < 0.02


def test_performer_attention_rows_are_weighted_means_of_the_values():
    # The weights are positive and sum to 1, so constant values come back unchanged.
    q, k, _ = _qkv()
    v = torch.full((2, 16, 3), 7.0, dtype=torch.float64)
    omega = gaussian_features(16, 4, seed=0, dtype=torch.float64)
    torch.testing.assert_close(performer_attention(q, k, v, omega), v)
