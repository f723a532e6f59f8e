"""What every chapter's tasks must satisfy, for every chapter that has a tasks module.

A chapter added later is covered without a line here: its tasks are declared completely (title,
points, statement), add up to 10 points, their references pass their own cases, and every known
mistake is caught *with its hint* when a learner submits it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from selfattn_course.devices import available_devices
from selfattn_course.grading import CheckFailed, check
from selfattn_course.grading.spec import (
    AnswerTask,
    FunctionTask,
    chapter_tasks,
    registered_chapters,
)
from selfattn_course.grading.verdicts.compare import check_answer, check_function

CHAPTERS = registered_chapters()
ALL_TASKS = [task for chapter in CHAPTERS for task in chapter_tasks(chapter).values()]
FUNCTION_TASKS = [task for task in ALL_TASKS if isinstance(task, FunctionTask)]
ANSWER_TASKS = [task for task in ALL_TASKS if isinstance(task, AnswerTask)]
FUNCTION_MISTAKES = [(task, mistake) for task in FUNCTION_TASKS for mistake in task.mistakes]
ANSWER_MISTAKES = [(task, mistake) for task in ANSWER_TASKS for mistake in task.mistakes]
CPU = [torch.device("cpu")]


def ids(items):
    return [
        getattr(item, "id", None) or f"{item[0].id}:{item[1].description[:30]}" for item in items
    ]


def without_forbidden(task: FunctionTask) -> FunctionTask:
    """The task with nothing forbidden: references and mistakes may call the package."""
    return dataclasses.replace(task, forbidden=())


def plain(value):
    """A value as a learner would write it (a list, not a NumPy array)."""
    return value.tolist() if isinstance(value, np.ndarray) else value


# --- a chapter's tasks --------------------------------------------------------------------------


def test_chapters_one_to_five_are_registered():
    assert {"ch01", "ch02", "ch03", "ch04", "ch05"} <= set(CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_has_3_to_6_tasks_worth_10_points(chapter):
    tasks = list(chapter_tasks(chapter).values())
    assert 3 <= len(tasks) <= 6
    assert sum(task.points for task in tasks) == 10


@pytest.mark.parametrize("task", ALL_TASKS, ids=ids(ALL_TASKS))
def test_a_task_has_a_title_points_and_a_statement(task):
    assert task.title.strip() and not task.title.endswith(".")
    assert task.points > 0
    assert len(task.statement.split()) >= 10, "a statement says what to write, in words"


# --- references and expected answers ------------------------------------------------------------


@pytest.mark.parametrize("task", FUNCTION_TASKS, ids=ids(FUNCTION_TASKS))
def test_a_reference_passes_its_own_visible_and_hidden_cases(task):
    open_task = without_forbidden(task)
    check_function(open_task, task.reference, task.visible_cases())
    check_function(
        open_task, task.reference, task.hidden_cases(available_devices()), level="hidden"
    )


@pytest.mark.parametrize("task", ANSWER_TASKS, ids=ids(ANSWER_TASKS))
def test_the_expected_answer_passes_visible_and_hidden_checks(task):
    check(task.id, plain(task.expected))
    check_answer(task, plain(task.expected), hidden=True)


@pytest.mark.parametrize("task", FUNCTION_TASKS, ids=ids(FUNCTION_TASKS))
def test_hidden_cases_run_on_the_device_given_and_include_float64(task, device):
    hidden = task.hidden_cases([device])
    assert hidden
    tensors = [
        value
        for case in hidden
        for value in case.inputs().values()
        if isinstance(value, torch.Tensor)
    ]
    assert all(t.device.type == device.type for t in tensors)
    if any(t.is_floating_point() for t in tensors) and device.type != "mps":  # MPS has no float64
        assert torch.float64 in {t.dtype for t in tensors}


# --- every known mistake is caught, with its hint -----------------------------------------------


@pytest.mark.parametrize("task, mistake", FUNCTION_MISTAKES, ids=ids(FUNCTION_MISTAKES))
def test_a_known_mistake_fails_with_its_hint(task, mistake):
    """Submitted as the learner's function, the mistake fails the visible-then-hidden cases on
    the CPU, and the first failure it meets names the mistake."""
    cases = [*task.visible_cases(), *task.hidden_cases(CPU)]
    with pytest.raises(CheckFailed) as failure:
        check_function(without_forbidden(task), mistake.wrong, cases)
    message = str(failure.value)
    assert f"hint: your result matches what you get when {mistake.description}" in message, message


@pytest.mark.parametrize("task, mistake", ANSWER_MISTAKES, ids=ids(ANSWER_MISTAKES))
def test_a_known_wrong_answer_fails_with_its_hint(task, mistake):
    with pytest.raises(CheckFailed) as failure:
        check_answer(task, plain(mistake.wrong), hidden=True)
    message = str(failure.value)
    assert f"hint: {mistake.description}" in message, message
