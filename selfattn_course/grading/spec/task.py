"""How a graded task is declared: one block holds everything about it.

A chapter's tasks (``selfattn_course/grading/tasks/chNN.py``) are a list of these blocks. Each
block says what the learner reads (title, points, statement), what a right answer is (the
reference or the expected answer), what it is tried on (visible and hidden cases), what every
right answer has (properties, in words) and the realistic mistakes with their hints. The
exercise notebook is generated from it (:mod:`selfattn_course.authoring.notebooks`): the
statement cell, the points and the test cell that calls ``check("chNN.<name>", <name>)``.

Two kinds of task:

- :class:`FunctionTask`: the learner writes a function (or an ``nn.Module`` class); it is called
  on generated :class:`~selfattn_course.grading.spec.cases.Case` s and compared with the
  reference.
- :class:`AnswerTask`: the learner sets a variable (a number, a matrix, a choice, a set); it is
  checked for form (visible tests) and compared with the expected answer (hidden tests).

A :class:`Mistake` is spelled once, as the learner would type it when that is natural: its
``source`` is a whole solution cell, run here in a namespace like the notebook's (torch, math,
nn, F, np), and its wrong function or answer is what that cell defines under the task's name.
The bank of wrong submissions that the end-to-end tests grade refers to these sources instead
of copying them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from selfattn_course.grading.spec.answers import AnswerType
from selfattn_course.grading.spec.cases import Case

__all__ = [
    "Property",
    "Mistake",
    "FunctionTask",
    "AnswerTask",
    "Task",
    "default_tolerances",
    "run_cell",
]


@dataclass(frozen=True)
class Property:
    """A property the learner's result must have, stated in words.

    ``holds(result, inputs)`` returns True when it holds. ``inputs`` maps argument names to the
    values of the case (function tasks) and is empty for answer tasks.
    Example: ``Property("each row of the weights sums to 1", rows_sum_to_one)``.
    """

    description: str
    holds: Callable[[Any, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Mistake:
    """A known wrong version of the task and what it means, turned into a hint when matched.

    Give either ``wrong`` or ``source``:

    - ``wrong``: for a function task a function with the reference's signature that makes the
      mistake (``lambda q, k: q @ k.mT`` for a missing scale); for an answer task the wrong
      answer itself (``(8, 1)``);
    - ``source``: the learner's whole solution cell that makes the mistake (it may be indented
      like the code around it: it is dedented)::

          Mistake("the scores are not divided by sqrt(d_k)", source='''
              def attention_scores(q, k):
                  return q @ k.transpose(-2, -1)
              ''')

      The task runs it (:func:`run_cell`) and takes what it defines under the task's name as
      ``wrong``. The end-to-end bank submits the same cell to nbgrader, so a mistake is written
      once.

    ``description`` completes "your result matches what you get when ..." (function tasks) or
    is the hint itself (answer tasks).
    """

    description: str
    wrong: Any = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.wrong is None and self.source is None:
            raise TypeError(f"Mistake {self.description!r} needs `wrong` or `source`")
        if self.source is not None:  # written indented in a task module: store it as a cell
            object.__setattr__(self, "source", textwrap.dedent(self.source).strip("\n") + "\n")

    def bound(self, name: str, provided: Mapping[str, Any] | None = None) -> Mistake:
        """This mistake with ``wrong`` set: the value ``source`` defines as ``name``."""
        if self.wrong is not None:
            return self
        return replace(self, wrong=run_cell(self.source, name, provided))


def learner_namespace(provided: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a notebook's setup cell gives a solution cell: torch, math, nn, F, np, and the
    task's provided helpers (the names the grader binds while the task is checked)."""
    namespace: dict[str, Any] = {
        "__name__": "__learner__",
        "math": math,
        "np": np,
        "torch": torch,
        "nn": nn,
        "F": F,
    }
    namespace.update(provided or {})
    return namespace


def run_cell(source: str, name: str, provided: Mapping[str, Any] | None = None) -> Any:
    """Run a solution cell's ``source`` as the notebook would; return what it defines as ``name``.

    Raises:
        NameError: the cell does not define ``name``.
    """
    namespace = learner_namespace(provided)
    exec(compile(source, f"<solution cell of {name}>", "exec"), namespace)
    if name not in namespace:
        raise NameError(f"the cell does not define {name!r}:\n{source}")
    return namespace[name]


def default_tolerances() -> dict[torch.dtype, tuple[float, float]]:
    """``dtype -> (rtol, atol)`` used to compare a learner's tensor with the reference."""
    return {
        torch.float16: (1e-2, 1e-3),
        torch.bfloat16: (2e-2, 1e-2),
        torch.float32: (1e-4, 1e-5),
        torch.float64: (1e-9, 1e-12),
    }


@dataclass(frozen=True, kw_only=True)
class _TaskHeader:
    """What the learner reads about a task, common to both kinds.

    Attributes:
        id: ``"chNN.<name>"``; ``name`` is also the function's or variable's name in the notebook.
        title: a few words, lower case, no final full stop: ``"masked softmax"``.
        points: what the task's test cell is worth (a chapter's tasks add up to 10).
        statement: markdown, without the "**Task N (P points): title.**" that the notebook puts
            in front (:func:`selfattn_course.authoring.notebooks.statement_markdown`). A
            paragraph or list item may be wrapped over several lines: they are joined.
    """

    id: str
    title: str
    points: int | float
    statement: str

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]


@dataclass(frozen=True, kw_only=True)
class FunctionTask(_TaskHeader):
    """A task where the learner writes a function (or a class: see ``runner``).

    Attributes (after ``id``, ``title``, ``points``, ``statement``):
        reference: the correct function, with the signature the statement asks for.
        visible_cases: ``() -> list[Case]``: a few small CPU cases; the visible tests run them.
        hidden_cases: ``(devices) -> list[Case]``: random inputs, edge cases (length 1,
            all-masked rows, float64, ...) on each of ``devices``; the hidden tests run them.
            :func:`~selfattn_course.grading.spec.cases.over_devices` builds one from the cases
            of one ``(dtype, device)``.
        properties: what every result must satisfy, in words (checked before the values, so a
            failure names the broken idea, not just a number).
        mistakes: known wrong versions; a result that matches one gets its description as a hint.
        forbidden: dotted names of functions the learner's code must not call while it runs
            (see :mod:`selfattn_course.grading.verdicts.forbid`).
        provided: names in the learner's namespace bound to these functions while the task is
            checked, so that a mistake in an earlier task (say ``masked_softmax``) is counted there
            and not again here. The learner's own versions are restored afterwards.
        tolerances: ``dtype -> (rtol, atol)``.
        runner: ``(function, case) -> result``, how to run a function (the learner's, the
            reference, a mistake) on a case; ``None`` calls ``function(*case.args.values(),
            **case.kwargs)``. A task whose answer is a class (an ``nn.Module``) uses it to build
            the module, load shared weights and call it.
    """

    reference: Callable[..., Any]
    visible_cases: Callable[[], list[Case]]
    hidden_cases: Callable[[Sequence[torch.device]], list[Case]]
    properties: tuple[Property, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    forbidden: tuple[str, ...] = ()
    provided: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    tolerances: Mapping[torch.dtype, tuple[float, float]] = field(
        default_factory=default_tolerances
    )
    runner: Callable[[Callable[..., Any], Case], Any] | None = None

    def __post_init__(self) -> None:
        bound = tuple(mistake.bound(self.name, self.provided) for mistake in self.mistakes)
        object.__setattr__(self, "mistakes", bound)


@dataclass(frozen=True, kw_only=True)
class AnswerTask(_TaskHeader):
    """A task where the learner sets a variable to an answer.

    Attributes (after ``id``, ``title``, ``points``, ``statement``):
        answer_type: how an answer is read and compared
            (:mod:`selfattn_course.grading.spec.answers`).
        expected: the right answer, in the form ``answer_type.read`` returns.
        properties: checked by the visible tests on the learner's answer (they give feedback
            without giving the answer away), e.g. "each row of the weights sums to 1".
        mistakes: known wrong answers with what they mean (shown by the hidden tests).
    """

    answer_type: AnswerType
    expected: Any
    properties: tuple[Property, ...] = ()
    mistakes: tuple[Mistake, ...] = ()

    def __post_init__(self) -> None:
        bound = tuple(mistake.bound(self.name) for mistake in self.mistakes)
        object.__setattr__(self, "mistakes", bound)


Task = FunctionTask | AnswerTask
