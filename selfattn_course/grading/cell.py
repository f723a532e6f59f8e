"""What an exercise notebook's test cell calls: :func:`check`.

::

    check("ch02.masked_softmax", masked_softmax)               # visible tests
    check("ch02.masked_softmax", masked_softmax, hidden=True)  # hidden tests

It looks the task up in the registry (:mod:`selfattn_course.grading.spec.registry`), runs the
visible or the hidden cases, and either prints one line ("... 4 visible cases passed") or raises
:class:`CheckFailed` (the message comes from :mod:`.verdicts.compare`).

Nothing is written to stderr on success: nbgrader scores 0 a test cell that writes to stderr,
so warnings raised while the learner's code runs are silenced.

When the notebook is being graded (the grader wrote a :class:`~.verdicts.payload.GradingDraw`
next to it), the hidden call decides nothing: it runs the learner's function on the cases drawn
from the draw's seed and hands what came back to the grader as a payload (:func:`hand_over`,
:mod:`.verdicts.payload`); the grader compares it with the reference in its own process
(:mod:`.verdicts.trusted`), so nothing the learner's code changes in the kernel can earn a point.
"""

from __future__ import annotations

from typing import Any

from selfattn_course.devices import available_devices
from selfattn_course.grading.errors import CheckFailed
from selfattn_course.grading.spec.cases import run_seed
from selfattn_course.grading.spec.registry import get_task
from selfattn_course.grading.spec.task import AnswerTask, FunctionTask
from selfattn_course.grading.verdicts.compare import check_answer, check_function, run_learner
from selfattn_course.grading.verdicts.payload import (
    MIME_TYPE,
    GradingDraw,
    answer_payload,
    current_draw,
    function_payload,
    not_callable_payload,
    raised,
    returned,
)

__all__ = ["check", "hand_over", "CheckFailed"]


def check(task_id: str, submission: Any, *, hidden: bool = False) -> None:
    """Check a learner's function or answer for the task ``task_id``; :class:`CheckFailed` if wrong.

    Args:
        task_id: ``"chNN.<name>"``, a key of the registry.
        submission: the learner's function (function tasks) or value (answer tasks).
        hidden: run the hidden cases (random inputs, edge cases, every available device, the
            comparison of answers) instead of the visible ones. While the notebook is graded this
            only hands the results to the grader (:func:`hand_over`); elsewhere (an instructor
            running the source notebook) it checks here and says so.

    Returns None on purpose: nbgrader reads a number that a test cell displays as partial credit.
    """
    task = get_task(task_id)
    if hidden:
        draw = current_draw()
        if draw is not None:
            hand_over(task, submission, draw)
            return
    level = "hidden" if hidden else "visible"
    try:
        if isinstance(task, FunctionTask):
            cases = task.hidden_cases(available_devices()) if hidden else task.visible_cases()
            passed = check_function(task, submission, cases, level=level)
        else:
            passed = check_answer(task, submission, hidden=hidden)
    except CheckFailed as failure:
        # Raise from here so the learner's traceback is short: their cell, then this line; the
        # exception their code raised, if any, stays chained as the cause.
        raise failure.with_traceback(None) from failure.__cause__
    noun = "case" if isinstance(task, FunctionTask) else "check"
    if hidden:
        where = " in this kernel (when graded, the grader checks the results itself)"
    elif isinstance(task, AnswerTask):
        # The visible checks of an answer read its form only: say so, or a wrong value that has
        # the right form looks accepted.
        where = " (its form; the value itself is checked when the notebook is graded)"
    else:
        where = ""
    print(f"{task.id}: {passed} {level} {noun}{'s' if passed != 1 else ''} passed{where}")


def hand_over(task: FunctionTask | AnswerTask, submission: Any, draw: GradingDraw) -> None:
    """While grading: run ``submission`` on every case of ``task`` (visible, then hidden on the
    draw's devices), built from the draw's seed, and display the payload for the grader.

    Nothing is compared here and nothing is printed on success or failure: the grader reads the
    payload after the run (:mod:`.verdicts.trusted`). An exception in the learner's code is
    recorded for its case, so one failing case does not hide the others.
    """
    with run_seed(draw.seed):
        if isinstance(task, AnswerTask):
            payload = answer_payload(task.id, draw, submission)
        elif not callable(submission):
            payload = not_callable_payload(task.id, draw, submission)
        else:
            cases = [*task.visible_cases(), *task.hidden_cases(draw.torch_devices())]
            outcomes = []
            for case in cases:
                try:
                    outcomes.append(returned(run_learner(task, submission, case.copy())))
                except Exception as error:
                    outcomes.append(raised(error))
            payload = function_payload(task.id, draw, cases, outcomes)
    from IPython.display import publish_display_data  # only kernels hand results over

    summary = f"{task.id}: results handed to the grader"
    publish_display_data({MIME_TYPE: payload, "text/plain": summary})
