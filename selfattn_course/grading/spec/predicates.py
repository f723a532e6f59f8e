"""Predicates that numeric tasks' properties share: ``(result, inputs) -> bool``.

A task names what it checks in its own words, ``Property("n is a whole number of tokens",
whole_number)``; the test is written once, here.
"""

from __future__ import annotations

import torch


def whole_number(value, _inputs) -> bool:
    """The result is an integer value (``4096.0`` counts; ``4096.5`` does not)."""
    return float(value) == int(value)


def positive(value, _inputs) -> bool:
    """The result is greater than 0."""
    return float(value) > 0


def at_least_one(value, _inputs) -> bool:
    """The result is 1 or more."""
    return float(value) >= 1


def finite(result, _inputs) -> bool:
    """Every entry of a tensor result is finite: no NaN, no infinity."""
    return bool(torch.isfinite(torch.as_tensor(result)).all())


def between_zero_and_one(result, _inputs) -> bool:
    """Every entry of the result (a number or a tensor) lies in [0, 1]."""
    values = torch.as_tensor(result)
    return bool(((values >= 0) & (values <= 1)).all())
