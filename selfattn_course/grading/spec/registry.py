"""The task registry: which tasks each chapter has, found from a task id.

A test cell in a notebook says only *which* task it checks and *what* the learner produced::

    check("ch02.masked_softmax", masked_softmax)

Everything that decides the grade lives in the package, keyed by the task id ``"chNN.<name>"``
(:mod:`selfattn_course.grading.spec.task` says how a task is declared). Each chapter's tasks sit
in their own module, ``selfattn_course/grading/tasks/chNN.py``, which defines ``TASKS`` (a list
of :class:`~selfattn_course.grading.spec.task.FunctionTask` and
:class:`~selfattn_course.grading.spec.task.AnswerTask`). The module is found by the prefix of the
task id, so adding a chapter means adding one module and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from selfattn_course.grading.spec.task import Task

TASK_ID = re.compile(r"^(?P<chapter>ch\d\d)\.(?P<name>[a-z][a-z0-9_]*)$")


def chapter_of(task_id: str) -> str:
    """``"ch02.masked_softmax" -> "ch02"``; ``ValueError`` for an id not of the form
    ``chNN.name``."""
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
            f"no grading tasks for chapter {chapter!r}: "
            f"selfattn_course.grading.tasks.{chapter} does not exist"
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
