"""The task registry: what each graded task of each exercise notebook is checked against.

A test cell in a notebook says only *which* task it checks and *what* the learner produced::

    check("ch02.masked_softmax", masked_softmax)

Everything that decides the grade lives here, in the package, keyed by the task id
``"chNN.<name>"``: the reference, the cases, the tolerances, the properties in words and the
known mistakes. Each chapter's tasks sit in their own module, ``selfattn_course/grading/tasks/chNN.py``,
which defines ``TASKS`` (a list of :class:`FunctionTask` and :class:`AnswerTask`). The module is
found by the prefix of the task id, so adding a chapter means adding one module and nothing else.

Two kinds of task:

- :class:`FunctionTask`: the learner writes a function; it is called on generated
  :class:`~selfattn_course.grading.spec.cases.Case` s and compared with the reference.
- :class:`AnswerTask`: the learner sets a variable (a number, a matrix, a choice, a set); it is
  checked for form (visible tests) and compared with the expected answer (hidden tests).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from selfattn_course.grading.spec.answers import AnswerType
from selfattn_course.grading.spec.cases import Case

TASK_ID = re.compile(r"^(?P<chapter>ch\d\d)\.(?P<name>[a-z][a-z0-9_]*)$")


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

    For a function task ``wrong`` is a function with the reference's signature that makes the
    mistake (``lambda q, k: q @ k.mT`` for a missing scale); for an answer task it is the wrong
    answer itself (``(8, 1)``).
    """

    description: str
    wrong: Any


def default_tolerances() -> dict[torch.dtype, tuple[float, float]]:
    """``dtype -> (rtol, atol)`` used to compare a learner's tensor with the reference."""
    return {
        torch.float16: (1e-2, 1e-3),
        torch.bfloat16: (2e-2, 1e-2),
        torch.float32: (1e-4, 1e-5),
        torch.float64: (1e-9, 1e-12),
    }


@dataclass(frozen=True)
class FunctionTask:
    """A task where the learner writes a function.

    Attributes:
        id: ``"chNN.<name>"``; ``name`` is also the function's name in the notebook.
        reference: the correct function, with the signature the statement asks for.
        visible_cases: ``() -> list[Case]``: a few small CPU cases; the visible tests run them.
        hidden_cases: ``(devices) -> list[Case]``: random inputs, edge cases (length 1,
            all-masked rows, float64, ...) on each of ``devices``; the hidden tests run them.
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

    id: str
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

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]


@dataclass(frozen=True)
class AnswerTask:
    """A task where the learner sets a variable to an answer.

    Attributes:
        id: ``"chNN.<name>"``; ``name`` is also the variable's name in the notebook.
        answer_type: how an answer is read and compared (:mod:`selfattn_course.grading.spec.answers`).
        expected: the right answer, in the form ``answer_type.read`` returns.
        properties: checked by the visible tests on the learner's answer (they give feedback
            without giving the answer away), e.g. "each row of the weights sums to 1".
        mistakes: known wrong answers with what they mean (shown by the hidden tests).
    """

    id: str
    answer_type: AnswerType
    expected: Any
    properties: tuple[Property, ...] = ()
    mistakes: tuple[Mistake, ...] = ()

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]


Task = FunctionTask | AnswerTask


def chapter_of(task_id: str) -> str:
    """``"ch02.masked_softmax" -> "ch02"``; ``ValueError`` for an id not of the form ``chNN.name``."""
    match = TASK_ID.match(task_id)
    if match is None:
        raise ValueError(f"task id must look like 'ch02.masked_softmax', got {task_id!r}")
    return match["chapter"]


def chapter_tasks(chapter: str) -> dict[str, Task]:
    """The tasks of one chapter, ``task id -> task``, in the order the module lists them."""
    try:
        module = importlib.import_module(f"selfattn_course.grading.tasks.{chapter}")
    except ModuleNotFoundError as error:
        if error.name != f"selfattn_course.grading.tasks.{chapter}":
            raise
        raise KeyError(
            f"no grading tasks for chapter {chapter!r}: selfattn_course.grading.tasks.{chapter} does not exist"
        ) from None
    tasks: dict[str, Task] = {}
    for task in module.TASKS:
        if chapter_of(task.id) != chapter:
            raise ValueError(f"task {task.id!r} is listed in the tasks of chapter {chapter}")
        if task.id in tasks:
            raise ValueError(f"task id {task.id!r} is listed twice in chapter {chapter}")
        tasks[task.id] = task
    return tasks


def get_task(task_id: str) -> Task:
    """The task with this id, e.g. ``get_task("ch02.masked_softmax")``; ``KeyError`` if unknown."""
    tasks = chapter_tasks(chapter_of(task_id))
    if task_id not in tasks:
        known = ", ".join(tasks)
        raise KeyError(f"unknown task {task_id!r}; chapter {chapter_of(task_id)} has: {known}")
    return tasks[task_id]


def registered_chapters() -> list[str]:
    """Every chapter that has a tasks module: ``["ch01", "ch02", ...]``."""
    from selfattn_course.grading import tasks as tasks_package

    return sorted(
        info.name
        for info in pkgutil.iter_modules(tasks_package.__path__)
        if re.fullmatch(r"ch\d\d", info.name)
    )
