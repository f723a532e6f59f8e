"""A learner's self-check: run a notebook top to bottom and say which tasks pass.

``selfattn-course check ch02.ipynb`` runs this. It executes the notebook in a fresh kernel (with
nbclient; the file on disk is left as it is), then reads every autograded test cell the way
nbgrader does: a cell passes when it shows no error and wrote nothing to stderr. In a released
notebook the test cells hold the visible tests only, so this is a check of the visible tests;
the hidden ones run when the notebook is graded. (``nbgrader validate`` exits 0 even when tests
fail; this one does not.)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nbclient import NotebookClient

from . import notebooks
from .course import tool_env


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
    """Execute the notebook at ``path`` (in its own folder) and report each graded task."""
    path = Path(path)
    notebook = notebooks.read(path)
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
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    with _tool_path():
        client.execute()
    results = []
    for cell in notebooks.graded_cells(notebook):
        meta = notebooks.nbgrader_meta(cell)
        failed = notebooks.has_failed(cell)
        results.append(
            TaskResult(
                name=meta.get("grade_id", "?"),
                points=float(meta.get("points", 0)),
                passed=not failed,
                message=_failure_message(cell) if failed else "",
            )
        )
    return SelfCheck(path, results)


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
