"""How conceptual answers are read and compared: numbers, matrices, choices, sets of indices.

Each answer type has two jobs:

- ``read(value)`` turns what the learner wrote into a canonical form, or raises
  :class:`~selfattn_course.grading.errors.CheckFailed` saying what form was expected
  ("path_lengths must be 2 integers, got 'one'"). The visible tests run this, so a learner
  learns the expected *form* without learning the answer.
- ``same(answer, expected)`` says whether two canonical answers agree (within a tolerance for
  numbers). The hidden tests run this.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfattn_course.grading.errors import CheckFailed


class AnswerType:
    """Base class: ``read`` a learner's value, compare two read values with ``same``."""

    def read(self, name: str, value: Any) -> Any:
        raise TypeError(f"{type(self).__name__} must define read()")

    def same(self, answer: Any, expected: Any) -> bool:
        return answer == expected

    def form(self) -> str:
        """The expected form in words, for messages: "a number", "a 3x3 array"."""
        raise TypeError(f"{type(self).__name__} must define form()")


def _as_float(name: str, value: Any, form: str) -> float:
    if isinstance(value, bool) or value is None:
        raise CheckFailed(f"{name} must be {form}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} must be {form}, got {value!r}") from None
    if not math.isfinite(number):
        raise CheckFailed(f"{name} must be {form}, got {number}")
    return number


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


@dataclass(frozen=True)
class Number(AnswerType):
    """A real number, equal to the expected one within ``atol + rtol·|expected|``."""

    rtol: float = 1e-6
    atol: float = 1e-9

    def form(self) -> str:
        return "a number"

    def read(self, name: str, value: Any) -> float:
        return _as_float(name, value, self.form())

    def same(self, answer: float, expected: float) -> bool:
        return _close(answer, expected, self.rtol, self.atol)


@dataclass(frozen=True)
class Numbers(AnswerType):
    """A fixed number of real numbers, given as a tuple or list: ``(64, 1)``."""

    count: int
    rtol: float = 1e-6
    atol: float = 1e-9
    integers: bool = False

    def form(self) -> str:
        kind = "integers" if self.integers else "numbers"
        return f"a tuple of {self.count} {kind}"

    def read(self, name: str, value: Any) -> tuple[float, ...]:
        if (
            isinstance(value, (str, bytes))
            or not hasattr(value, "__len__")
            or len(value) != self.count
        ):
            raise CheckFailed(f"{name} must be {self.form()}, got {value!r}")
        items = tuple(_as_float(f"{name}[{i}]", item, "a number") for i, item in enumerate(value))
        if self.integers:
            for i, item in enumerate(items):
                if item != int(item):
                    raise CheckFailed(f"{name}[{i}] must be an integer, got {value[i]!r}")
            items = tuple(int(item) for item in items)
        return items

    def same(self, answer: tuple[float, ...], expected: tuple[float, ...]) -> bool:
        return all(
            _close(a, e, self.rtol, self.atol) for a, e in zip(answer, expected, strict=True)
        )


@dataclass(frozen=True)
class Matrix(AnswerType):
    """A real array of a fixed shape (NumPy array, torch tensor or nested lists), compared entry by
    entry within ``atol`` (so answers rounded to two decimals pass with ``atol=5e-3``)."""

    shape: tuple[int, ...]
    atol: float = 5e-3

    def form(self) -> str:
        return "an array of shape " + "x".join(map(str, self.shape))

    def read(self, name: str, value: Any) -> np.ndarray:
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name} must be {self.form()} of numbers, got {value!r}") from None
        if array.shape != tuple(self.shape):
            raise CheckFailed(f"{name} must be {self.form()}, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise CheckFailed(
                f"{name} must hold finite numbers, got {array.tolist()} (NaN or inf inside)"
            )
        return array

    def same(self, answer: np.ndarray, expected: np.ndarray) -> bool:
        return bool(np.all(np.abs(answer - expected) <= self.atol))


@dataclass(frozen=True)
class Choice(AnswerType):
    """One letter out of ``options`` (``{"a": "statement", ...}``); case and spaces are ignored."""

    options: Mapping[str, str]

    def form(self) -> str:
        return "one of " + ", ".join(repr(key) for key in self.options)

    def markdown_list(self) -> str:
        """The options as a markdown list, one per line: ``"- (a) statement"``."""
        return "\n".join(f"- ({key}) {text}" for key, text in self.options.items())

    def read(self, name: str, value: Any) -> str:
        key = value.strip().strip("()").lower() if isinstance(value, str) else value
        if key not in self.options:
            raise CheckFailed(f"{name} must be {self.form()}, got {value!r}")
        return key


@dataclass(frozen=True)
class IndexSet(AnswerType):
    """A set of integer indices in ``range(size)``, given as a set, list or tuple."""

    size: int

    def form(self) -> str:
        return f"a set of integers from 0 to {self.size - 1}"

    def read(self, name: str, value: Any) -> frozenset[int]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise CheckFailed(f"{name} must be {self.form()}, got {value!r}")
        items = list(value)
        for item in items:
            if (
                isinstance(item, bool)
                or not isinstance(item, numbers.Integral)
                or not 0 <= item < self.size
            ):
                raise CheckFailed(f"{name} must be {self.form()}, but it contains {item!r}")
        return frozenset(int(item) for item in items)
