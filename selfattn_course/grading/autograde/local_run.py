"""Run one notebook top to bottom here and say which tasks pass: for learners and instructors.

``selfattn-course check ch02.ipynb`` runs :func:`check_notebook`: it executes the notebook in a
fresh kernel (with nbclient; the file on disk is left as it is) with the **visible tests only**
(any hidden-test region is left out), then reads every autograded test cell as the grader does:
a cell passes when it shows no error and, unless it calls the course's ``check`` (whose cells the
grader scores without their stderr, so warnings cost nothing), wrote nothing to stderr.
(``nbgrader validate`` exits 0 even when tests fail; this one does not.)

``selfattn-course validate solutions/ch02/ch02.ipynb`` runs :func:`validate_notebook`, for
instructors: the visible **and** hidden tests, graded exactly as ``nbgrader autograde`` grades
them (a draw with a fresh seed, the hidden tests decided in this process by
:mod:`selfattn_course.grading.verdicts.trusted`, the source scan included), in a scratch copy of
the notebook's folder. Both return a :class:`NotebookReport`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nbclient import NotebookClient
from nbformat.notebooknode import NotebookNode

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.nbgrader_command import tool_env
from selfattn_course.grading.verdicts.payload import GradingDraw
from selfattn_course.grading.verdicts.trusted import (
    Verdict,
    apply_verdicts,
    calls_check,
    hide_hidden_tests,
    start_grading_run,
)


@dataclass(frozen=True)
class TaskOutcome:
    """One test cell after the run: its task name, points, whether it passed, and why not."""

    name: str
    points: float
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class NotebookReport:
    """Every task of one notebook after the run."""

    path: Path
    tasks: list[TaskOutcome]
    note: str = ""  # a last line for the summary (the draw of a validation)

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
        points = f"{earned:g}/{possible:g} points"
        lines.append(f"{self.path.name}: {passed} of {len(self.tasks)} tasks pass ({points})")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def check_notebook(path: str | Path, *, timeout: int = 120) -> NotebookReport:
    """Execute the notebook at ``path`` (in its own folder) with its visible tests only and
    report each graded task."""
    path = Path(path)
    notebook = notebooks.read(path)
    for cell in notebook.cells:
        cell.source = hide_hidden_tests(cell.source)
    _execute(notebook, path.parent, timeout)
    return NotebookReport(path, [_outcome(cell) for cell in notebooks.graded_cells(notebook)])


def validate_notebook(
    path: str | Path, *, timeout: int = 120, seed: int | None = None
) -> NotebookReport:
    """Grade the notebook at ``path`` as ``nbgrader autograde`` would, visible and hidden tests,
    in a scratch copy of its folder; ``seed`` fixes the draw's seed (default: fresh)."""
    path = Path(path)
    notebook = notebooks.read(path)
    draw = GradingDraw.fresh(seed)
    with tempfile.TemporaryDirectory(prefix="selfattn-validate-") as scratch:
        folder = Path(scratch) / "notebook"
        ignore = shutil.ignore_patterns(".*", "__pycache__", "node_modules", "_build")
        shutil.copytree(path.parent, folder, ignore=ignore)
        start_grading_run(notebook, draw, folder)
        _execute(notebook, folder, timeout)
    verdicts = apply_verdicts(notebook, draw, path.parent)
    results = [
        _verdict_outcome(cell, verdicts[index]) if index in verdicts else _outcome(cell)
        for index, cell in enumerate(notebook.cells)
        if notebooks.nbgrader_meta(cell).get("grade")
    ]
    note = (
        f"hidden tests checked by the grader: seed {draw.seed}, devices {', '.join(draw.devices)}"
    )
    return NotebookReport(path, results, note)


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
    client.execute(env=tool_env())  # the kernel's spec says ``python``: find this one first


def _outcome(cell: NotebookNode) -> TaskOutcome:
    """A test cell as the grader scores it: an error fails it, and so does stderr unless the cell
    calls ``check`` (the grader drops those cells' stderr)."""
    meta = notebooks.nbgrader_meta(cell)
    failed = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
    if not calls_check(cell.source):
        failed = failed or notebooks.has_failed(cell)
    return TaskOutcome(
        name=meta.get("grade_id", "?"),
        points=float(meta.get("points", 0)),
        passed=not failed,
        message=_failure_message(cell) if failed else "",
    )


def _verdict_outcome(cell: NotebookNode, verdict: Verdict) -> TaskOutcome:
    meta = notebooks.nbgrader_meta(cell)
    return TaskOutcome(
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
