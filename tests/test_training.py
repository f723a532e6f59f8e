"""selfattn_course.training.fit: the same updates as the hand-written Adam loop, and its errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfattn_course.training import fit


def regression(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1
    return x, y


def test_fit_makes_the_updates_of_a_hand_written_adam_loop():
    x, y = regression()
    torch.manual_seed(0)
    ours = nn.Linear(3, 1)
    torch.manual_seed(0)
    by_hand = nn.Linear(3, 1)
    losses = fit(ours, lambda: F.mse_loss(ours(x), y), steps=25, lr=0.05)
    optimizer = torch.optim.Adam(by_hand.parameters(), lr=0.05)
    expected = []
    for _ in range(25):
        loss = F.mse_loss(by_hand(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expected.append(loss.item())
    assert losses == expected
    torch.testing.assert_close(ours.weight, by_hand.weight, rtol=0, atol=0)


def test_fit_learns_a_linear_map_and_leaves_the_model_in_eval_mode():
    x, y = regression()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.0))
    losses = fit(model, lambda: F.mse_loss(model(x), y), steps=300, lr=0.05)
    assert losses[-1] < 1e-3 < losses[0]
    assert not model.training


def test_weight_decay_uses_adamw():
    x, y = regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    plain = [p.detach().clone() for p in model.parameters()]
    fit(model, lambda: F.mse_loss(model(x), y), steps=3, lr=0.1, weight_decay=0.5)
    assert not torch.equal(plain[0], model.weight)


@pytest.mark.parametrize("steps", [-1, 2.0, True])
def test_steps_must_be_a_non_negative_int(steps):
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        fit(model, lambda: model.weight.sum(), steps=steps)


def test_a_loss_that_is_not_a_scalar_is_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"scalar tensor, got \(2,\)"):
        fit(model, lambda: model.bias * 1.0, steps=1)
