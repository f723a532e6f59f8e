"""Predicates that numeric tasks' properties share: ``(result, inputs) -> bool``.

A task names what it checks in its own words, ``Property("n is a whole number of tokens",
whole_number)``; the test is written once, here.
"""

from __future__ import annotations


def whole_number(value, _inputs) -> bool:
    """The result is an integer value (``4096.0`` counts; ``4096.5`` does not)."""
    return float(value) == int(value)


def positive(value, _inputs) -> bool:
    """The result is greater than 0."""
    return float(value) > 0


def at_least_one(value, _inputs) -> bool:
    """The result is 1 or more."""
    return float(value) >= 1
