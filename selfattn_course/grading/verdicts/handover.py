"""What the graded kernel gets from the grader: each task's cases, built in the grader's process.

A graded kernel must not be able to read a reference, an expected answer or the task registry:
the sandbox hides :mod:`selfattn_course.grading.tasks` altogether
(:func:`selfattn_course.grading.autograde.sandbox.default_hidden_paths`). What the hidden tests
need in there is prepared beforehand, as data, by the grader:

1. Before the notebook runs, :func:`write_hand_over` builds, for each task whose hidden test is in
   the notebook (in the notebook's order), a :class:`PreparedTask`: its visible and hidden cases
   drawn from the :class:`~.payload.GradingDraw`'s seed, how to call the learner's answer (the
   runner, its weights computed now), the helpers the task provides and the names it forbids.
   They are pickled into :data:`HANDOVER_FILE` in the notebook's folder, next to the draw.
2. In the kernel, ``check(task_id, fn, hidden=True)`` reads its task there
   (:func:`read_hand_over`), runs ``fn`` on the cases and displays the results
   (:func:`selfattn_course.grading.cell.hand_over`); nothing is compared there.
3. The grader rebuilds the same cases from the seed, checks their digest against the payload's,
   computes the reference itself and compares (:mod:`.trusted`).

What a prepared task holds is only what the learner's function sees anyway when it is called
(its inputs) plus how to call it. The learner's code can read or overwrite the file: reading it
tells nothing that the call would not, and other inputs give another digest, which fails.

Everything pickled here must be importable in the kernel: functions and classes from
:mod:`selfattn_course.grading.spec`, the package or torch, never from a task module
(:func:`prepare_task` checks, so a task that breaks the rule fails in the tests, not at grading).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from selfattn_course.grading.spec.calls import ModuleRunner
from selfattn_course.grading.spec.cases import Case, run_seed
from selfattn_course.grading.verdicts.payload import GradingDraw, start_folder

__all__ = [
    "HANDOVER_FILE",
    "HIDDEN_PACKAGE",
    "PreparedTask",
    "prepare_task",
    "write_hand_over",
    "read_hand_over",
    "kernel_reachable",
]

#: The file in the notebook's folder that holds the prepared tasks.
HANDOVER_FILE = ".selfattn-course-handover.pt"

#: The grader's task modules: references, expected answers, case builders. Hidden in the sandbox.
HIDDEN_PACKAGE = "selfattn_course.grading.tasks"


@dataclass(frozen=True)
class PreparedTask:
    """One task as the graded kernel needs it to hand results over (no reference, no answer).

    Attributes:
        id: ``"chNN.<name>"``.
        name: the function (or class) the learner writes.
        kind: ``"function"`` (run ``cases``) or ``"answer"`` (send the value).
        cases: visible cases, then hidden ones on the draw's devices, built from the draw's seed.
        runner: how to call the learner's answer on a case (None: ``fn(*args, **kwargs)``).
        provided: helpers bound into the learner's namespace while their function runs.
        forbidden: the dotted names the task forbids that exist in the kernel.
    """

    id: str
    name: str
    kind: str
    cases: tuple[Case, ...] = ()
    runner: Callable[..., Any] | None = None
    provided: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()


def kernel_reachable(name: str) -> bool:
    """Whether the dotted ``name`` can exist in a graded kernel (not in the hidden task modules)."""
    return not (name == HIDDEN_PACKAGE or name.startswith(HIDDEN_PACKAGE + "."))


def prepare_task(task: Any, draw: GradingDraw) -> PreparedTask:
    """``task`` (a :class:`~selfattn_course.grading.spec.task.FunctionTask` or ``AnswerTask``)
    as the kernel needs it for ``draw``; ``ValueError`` if something in it would need a task
    module to be unpickled."""
    from selfattn_course.grading.spec.task import FunctionTask

    if not isinstance(task, FunctionTask):
        return PreparedTask(task.id, task.name, "answer")
    runner = task.runner
    with run_seed(draw.seed):  # the seed mixes into every case's inputs and layer weights
        cases = (*task.visible_cases(), *task.hidden_cases(draw.torch_devices()))
        if isinstance(runner, ModuleRunner):
            runner = runner.with_weights_of(cases)
    prepared = PreparedTask(
        task.id,
        task.name,
        "function",
        cases,
        runner,
        dict(task.provided),
        tuple(name for name in task.forbidden if kernel_reachable(name)),
    )
    _check_portable(prepared)
    return prepared


def _check_portable(prepared: PreparedTask) -> None:
    """Refuse a prepared task that names a function or class of a (hidden) task module."""
    things: list[Any] = [prepared.runner, *prepared.provided.values()]
    if isinstance(prepared.runner, ModuleRunner):
        things += [prepared.runner.weights, *prepared.runner.provided.values()]
    for case in prepared.cases:
        things += list(case.inputs().values())
    for thing in things:
        module = getattr(thing, "__module__", None) if callable(thing) else None
        if module and not kernel_reachable(module):
            raise ValueError(
                f"{prepared.id}: {getattr(thing, '__qualname__', thing)!r} lives in {module}, "
                "which the graded kernel cannot import (the sandbox hides the task modules); "
                "move it to selfattn_course.grading.spec (calls.py or provided.py)"
            )


def write_hand_over(folder: str | Path, draw: GradingDraw, tasks: Iterable[Any]) -> Path:
    """Prepare ``tasks`` (in the notebook's order) for ``draw`` and write :data:`HANDOVER_FILE`
    into ``folder``; returns its path."""
    prepared = {task.id: prepare_task(task, draw) for task in tasks}
    buffer = io.BytesIO()
    torch.save({"seed": draw.seed, "tasks": prepared}, buffer)
    path = Path(folder) / HANDOVER_FILE
    path.write_bytes(buffer.getvalue())
    return path


def read_hand_over(draw: GradingDraw) -> dict[str, PreparedTask]:
    """The prepared tasks of this grading run, in the notebook's order, from the folder the kernel
    started in; ``RuntimeError`` saying why when there are none for ``draw``."""
    path = start_folder() / HANDOVER_FILE
    if not path.is_file():
        raise RuntimeError(f"the grader prepared no cases ({HANDOVER_FILE} is missing)")
    # The grader wrote this file: unpickling it runs nothing the kernel's own code could not.
    data = torch.load(path, weights_only=False)
    if not isinstance(data, dict) or data.get("seed") != draw.seed:
        raise RuntimeError(f"{HANDOVER_FILE} is not this grading run's")
    return dict(data["tasks"])
