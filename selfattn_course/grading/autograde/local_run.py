"""Run a notebook top to bottom and say which tasks pass: a learner's self-check, an instructor's validation.

``selfattn-course check ch02.ipynb`` runs :func:`check_notebook`: it executes the notebook in a
fresh kernel (with nbclient; the file on disk is left as it is) with the **visible tests only**
(any hidden-test region is left out), then reads every autograded test cell as the grader does:
a cell passes when it shows no error and, unless it calls the course's ``check`` (whose cells the
grader scores without their stderr, so warnings cost nothing), wrote nothing to stderr.
(``nbgrader validate`` exits 0 even when tests fail; this one does not.)

``selfattn-course validate solutions/ch02/ch02.ipynb`` runs :func:`validate_notebook`, for
instructors: the visible **and** hidden tests, graded exactly as ``nbgrader autograde`` grades
them (a grading run with a fresh seed, the hidden tests decided in this process by
:mod:`.trusted`, the source checks included), in a scratch copy of the notebook's folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nbclient import NotebookClient
from nbformat.notebooknode import NotebookNode

from selfattn_course.grading import notebooks
from selfattn_course.grading.classroom.course import tool_env
from selfattn_course.grading.verdicts.payload import GradingRun
from selfattn_course.grading.verdicts.trusted import (
    Verdict,
    apply_verdicts,
    calls_check,
    hide_hidden_tests,
)


@dataclass(frozen=True)
class TaskResult:
    """One test cell after the run: its task name, points, whether it passed, and why not."""

    name: str
    points: float
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class SelfCheck:
    """Every task of one notebook after the run."""

    path: Path
    tasks: list[TaskResult]
    note: str = ""  # a last line for the summary (the grading run of a validation)

    @property
    def passed(self) -> bool:
        return bool(self.tasks) and all(task.passed for task in self.tasks)

    def summary(self) -> str:
        """One line per task, then the points whose visible tests pass."""
        lines = []
        for task in self.tasks:
            unit = "point" if task.points == 1 else "points"
            lines.append(
                f"{'PASS' if task.passed else 'FAIL'}  {task.name} ({task.points:g} {unit})"
            )
            if task.message:
                lines += ["      " + line for line in task.message.splitlines()]
        earned = sum(task.points for task in self.tasks if task.passed)
        possible = sum(task.points for task in self.tasks)
        passed = sum(task.passed for task in self.tasks)
        lines.append(
            f"{self.path.name}: {passed} of {len(self.tasks)} tasks pass ({earned:g}/{possible:g} points)"
        )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


@contextmanager
def _tool_path() -> Iterator[None]:
    """Put this interpreter's ``bin/`` first on PATH while kernels start (their spec says ``python``)."""
    saved = os.environ.get("PATH")
    os.environ["PATH"] = tool_env()["PATH"]
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def check_notebook(path: str | Path, *, timeout: int = 120) -> SelfCheck:
    """Execute the notebook at ``path`` (in its own folder) with its visible tests only and
    report each graded task."""
    path = Path(path)
    notebook = notebooks.read(path)
    for cell in notebook.cells:
        cell.source = hide_hidden_tests(cell.source)
    _execute(notebook, path.parent, timeout)
    return SelfCheck(path, [_result(cell) for cell in notebooks.graded_cells(notebook)])


def validate_notebook(
    path: str | Path, *, timeout: int = 120, seed: int | None = None
) -> SelfCheck:
    """Grade the notebook at ``path`` as ``nbgrader autograde`` would, visible and hidden tests,
    in a scratch copy of its folder; ``seed`` fixes the grading run's seed (default: fresh)."""
    path = Path(path)
    notebook = notebooks.read(path)
    run = GradingRun.fresh(seed)
    with tempfile.TemporaryDirectory(prefix="selfattn-validate-") as scratch:
        folder = Path(scratch) / "notebook"
        ignore = shutil.ignore_patterns(".*", "__pycache__", "node_modules", "_build")
        shutil.copytree(path.parent, folder, ignore=ignore)
        run.write(folder)
        _execute(notebook, folder, timeout)
    verdicts = apply_verdicts(notebook, run, path.parent)
    results = [
        _verdict_result(cell, verdicts[index]) if index in verdicts else _result(cell)
        for index, cell in enumerate(notebook.cells)
        if notebooks.nbgrader_meta(cell).get("grade")
    ]
    note = f"hidden tests checked by the grader: seed {run.seed}, devices {', '.join(run.devices)}"
    return SelfCheck(path, results, note)


def _execute(notebook: NotebookNode, folder: Path, timeout: int) -> None:
    client = NotebookClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {timeout} s",
            "traceback": [],
        },
        kernel_name=notebook.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(folder.resolve())}},
    )
    with _tool_path():
        client.execute()


def _result(cell: NotebookNode) -> TaskResult:
    """A test cell as the grader scores it: an error fails it, and so does stderr unless the cell
    calls ``check`` (the grader drops those cells' stderr)."""
    meta = notebooks.nbgrader_meta(cell)
    failed = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    if not calls_check(cell.source):
        failed = failed or notebooks.has_failed(cell)
    return TaskResult(
        name=meta.get("grade_id", "?"),
        points=float(meta.get("points", 0)),
        passed=not failed,
        message=_failure_message(cell) if failed else "",
    )


def _verdict_result(cell: NotebookNode, verdict: Verdict) -> TaskResult:
    meta = notebooks.nbgrader_meta(cell)
    return TaskResult(
        name=meta.get("grade_id", "?"),
        points=float(meta.get("points", 0)),
        passed=verdict.passed,
        message="" if verdict.passed else verdict.message,
    )


def _failure_message(cell) -> str:
    """The error (``Name: message``) or the stderr text of a failed cell."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    stderr = "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr"
    )
    return f"wrote to stderr (nbgrader scores that 0): {stderr.strip()}"
