"""What an exercise notebook's test cell calls: :func:`check`.

::

    check("ch02.masked_softmax", masked_softmax)               # visible tests
    check("ch02.masked_softmax", masked_softmax, hidden=True)  # hidden tests

Outside grading (a learner running their notebook), the visible call looks the task up in the
registry (:mod:`selfattn_course.grading.spec.registry`), runs the visible cases and either prints
one line ("... 4 visible cases passed") or raises :class:`CheckFailed` (the message comes from
:mod:`.verdicts.compare`). The hidden call says that it runs only when the notebook is graded: it
compares nothing there, so it cannot be used to try answers until one passes.

Nothing is written to stderr on success: nbgrader scores 0 a test cell that writes to stderr,
so warnings raised while the learner's code runs are silenced.

While the notebook is graded (the grader wrote a :class:`~.verdicts.payload.GradingDraw` next to
it), nothing in the kernel decides anything and the task registry is not even there (the sandbox
hides the task modules): the hidden call reads the cases the grader prepared
(:mod:`.verdicts.handover`), runs the learner's function on them and hands what came back to the
grader as a payload (:func:`hand_over`); the grader compares it with the reference in its own
process (:mod:`.verdicts.trusted`). The visible call only says so: its cases are among those handed
over. :func:`arm` (run by the grader before the learner's first cell) installs the tripwires of
:mod:`selfattn_course.grading.tripwires` for what the notebook's tasks forbid.
"""

from __future__ import annotations

from typing import Any

from selfattn_course.grading.errors import CheckFailed
from selfattn_course.grading.spec.cases import run_seed
from selfattn_course.grading.spec.task import AnswerTask, FunctionTask
from selfattn_course.grading.verdicts.compare import check_answer, check_function, run_learner
from selfattn_course.grading.verdicts.handover import PreparedTask, read_hand_over
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

__all__ = ["check", "hand_over", "arm", "CheckFailed"]

#: What a hidden check says outside grading.
HIDDEN_OUTSIDE_GRADING = (
    "{task}: the hidden tests run only when the notebook is graded (nothing was checked here); "
    "run the visible tests above to check your work"
)


def check(task_id: str, submission: Any, *, hidden: bool = False) -> None:
    """Check a learner's function or answer for the task ``task_id``; :class:`CheckFailed` if wrong.

    Args:
        task_id: ``"chNN.<name>"``, a key of the registry.
        submission: the learner's function (function tasks) or value (answer tasks).
        hidden: the hidden tests (random inputs, edge cases, the comparison of answers). They run
            only while the notebook is graded, and then only hand the results to the grader
            (:func:`hand_over`); elsewhere this says so and checks nothing.

    Returns None on purpose: nbgrader reads a number that a test cell displays as partial credit.
    """
    draw = current_draw()
    if draw is not None:
        if hidden:
            hand_over(_prepared(task_id, draw), submission, draw)
        else:
            print(f"{task_id}: the grader checks these cases with the hidden ones")
        return
    if hidden:
        print(HIDDEN_OUTSIDE_GRADING.format(task=task_id))
        return
    from selfattn_course.grading.spec.registry import get_task  # not in a graded kernel

    task = get_task(task_id)
    try:
        if isinstance(task, FunctionTask):
            passed = check_function(task, submission, task.visible_cases(), level="visible")
        else:
            passed = check_answer(task, submission, hidden=False)
    except CheckFailed as failure:
        # Raise from here so the learner's traceback is short: their cell, then this line; the
        # exception their code raised, if any, stays chained as the cause.
        raise failure.with_traceback(None) from failure.__cause__
    noun = "case" if isinstance(task, FunctionTask) else "check"
    # The visible checks of an answer read its form only: say so, or a wrong value that has the
    # right form looks accepted.
    where = (
        " (its form; the value itself is checked when the notebook is graded)"
        if isinstance(task, AnswerTask)
        else ""
    )
    print(f"{task.id}: {passed} visible {noun}{'s' if passed != 1 else ''} passed{where}")


def _prepared(task_id: str, draw: GradingDraw) -> PreparedTask:
    tasks = read_hand_over(draw)
    if task_id not in tasks:
        raise RuntimeError(f"the grader prepared no cases for {task_id!r}")
    return tasks[task_id]


def hand_over(task: PreparedTask, submission: Any, draw: GradingDraw) -> None:
    """While grading: run ``submission`` on every case the grader prepared for ``task`` (visible,
    then hidden on the draw's devices) and display the payload for the grader.

    Nothing is compared here and nothing is printed on success or failure: the grader reads the
    payload after the run (:mod:`.verdicts.trusted`). An exception in the learner's code is
    recorded for its case, so one failing case does not hide the others. When the kernel is armed
    (:func:`arm`), the hand-over is the task's scope for the tripwires: the helpers the task
    provides work only inside it.
    """
    if _armed:
        from selfattn_course.grading import tripwires

        tripwires.begin(task.id)
    try:
        with run_seed(draw.seed):
            if task.kind == "answer":
                payload = answer_payload(task.id, draw, submission)
            elif not callable(submission):
                payload = not_callable_payload(task.id, draw, submission)
            else:
                outcomes = []
                for case in task.cases:
                    try:
                        outcomes.append(returned(run_learner(task, submission, case.copy())))
                    except Exception as error:
                        outcomes.append(raised(error))
                payload = function_payload(task.id, draw, task.cases, outcomes)
    finally:
        if _armed:
            tripwires.end(task.id)
    from IPython.display import publish_display_data  # only kernels hand results over

    summary = f"{task.id}: results handed to the grader"
    publish_display_data({MIME_TYPE: payload, "text/plain": summary})


_armed = False


def arm() -> None:
    """Make the functions the notebook's tasks forbid unusable in this kernel, for good.

    The grader runs this in each fresh graded kernel before the learner's first cell
    (:class:`~selfattn_course.grading.autograde.execute.GradingExecute`). It reads the prepared
    tasks and installs :mod:`selfattn_course.grading.tripwires`: every forbidden
    function raises when called, from any thread, except inside a helper a task provides, during
    that task's hand-over; hand-overs happen in the notebook's order, once each.
    """
    global _armed
    from selfattn_course.grading import tripwires

    draw = current_draw()
    if draw is None:
        raise RuntimeError("arm() runs only in a graded kernel (no grading draw here)")
    tasks = read_hand_over(draw)
    forbidden: dict[str, list[str]] = {}
    for task in tasks.values():
        for name in task.forbidden:
            forbidden.setdefault(name, []).append(task.id)
    provided = {
        task.id: [f"{helper.__module__}.{helper.__qualname__}" for helper in _helpers(task)]
        for task in tasks.values()
    }
    tripwires.install(
        forbidden={name: tuple(ids) for name, ids in forbidden.items()},
        order=list(tasks),
        provided=provided,
        hand_over=hand_over,
    )
    _armed = True


def _helpers(task: PreparedTask) -> list[Any]:
    helpers = list(task.provided.values())
    helpers += list(getattr(task.runner, "provided", {}).values())
    return list(dict.fromkeys(helpers))
