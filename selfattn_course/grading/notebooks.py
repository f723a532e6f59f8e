"""Exercise notebooks: the cells of a graded task, written and read with nbgrader's metadata.

Every exercise notebook has the same shape::

    intro (markdown, locked)          what the chapter practises, how to check your work
    setup (code, locked)              imports, including `from selfattn_course.grading import check`
    for each task:
      <name>-statement (markdown, locked)   a short statement
      <name>-solution  (code)               the learner's cell: ### BEGIN/END SOLUTION in the source
      <name>           (code, graded)       check("chNN.<name>", <name>) + the hidden call

:func:`task_cells` writes the three cells of a task (so every test cell is the same two calls);
:func:`tasks_of` reads them back. Cell metadata follows nbgrader's schema version 3:
``{"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}``.

The solution notebooks are not written by hand: :mod:`selfattn_course.authoring.notebooks`
builds each from its MyST text (``solutions/chNN/chNN.md``) and the chapter's task specs, with
the cell writers below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

SCHEMA_VERSION = 3

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _nbgrader(
    grade_id: str,
    *,
    grade: bool = False,
    solution: bool = False,
    locked: bool = False,
    points: float | None = None,
) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def readonly_markdown(grade_id: str, text: str) -> NotebookNode:
    """A markdown cell the learner cannot edit (intro, statements)."""
    return nbformat.v4.new_markdown_cell(
        text, metadata={"nbgrader": _nbgrader(grade_id, locked=True)}, id=grade_id
    )


def readonly_code(grade_id: str, source: str) -> NotebookNode:
    """A code cell the learner cannot edit (the setup imports)."""
    return nbformat.v4.new_code_cell(
        source, metadata={"nbgrader": _nbgrader(grade_id, locked=True)}, id=grade_id
    )


def solution_cell(grade_id: str, source: str) -> NotebookNode:
    """The learner's cell; the part between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is
    replaced by a stub in the release."""
    return nbformat.v4.new_code_cell(
        source, metadata={"nbgrader": _nbgrader(grade_id, solution=True)}, id=grade_id
    )


def tests_cell(grade_id: str, source: str, points: float) -> NotebookNode:
    """An autograded test cell worth ``points``: full marks when it runs without an error."""
    return nbformat.v4.new_code_cell(
        source,
        metadata={"nbgrader": _nbgrader(grade_id, grade=True, locked=True, points=points)},
        id=grade_id,
    )


def tests_source(task_id: str, name: str) -> str:
    """The source of every test cell: the visible call, then the hidden one."""
    return (
        f'check("{task_id}", {name})\n'
        "### BEGIN HIDDEN TESTS\n"
        f'check("{task_id}", {name}, hidden=True)\n'
        "### END HIDDEN TESTS"
    )


def task_cells(
    chapter: str, name: str, statement: str, solution: str, points: float
) -> list[NotebookNode]:
    """The three cells of task ``chapter.name``: statement, solution, tests."""
    return [
        readonly_markdown(f"{name}-statement", statement),
        solution_cell(f"{name}-solution", solution),
        tests_cell(name, tests_source(f"{chapter}.{name}", name), points),
    ]


def new_exercise_notebook(
    cells: list[NotebookNode], kernelspec: dict | None = None
) -> NotebookNode:
    """A notebook of ``cells`` with ``kernelspec`` (default: the course's, Python 3)."""
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = dict(kernelspec or KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotebookTask:
    """The cells of one graded task, as found in a notebook."""

    name: str
    points: float
    statement: str
    solution: str
    tests: str


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata, ``{}`` for a cell nbgrader does not manage."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def graded_cells(notebook: NotebookNode) -> list[NotebookNode]:
    """The autograded test cells, in order."""
    return [cell for cell in notebook.cells if nbgrader_meta(cell).get("grade")]


def tasks_of(notebook: NotebookNode) -> list[NotebookTask]:
    """Every graded task with its statement and solution cells (found by their ``grade_id``)."""
    by_id = {
        nbgrader_meta(cell).get("grade_id"): cell for cell in notebook.cells if nbgrader_meta(cell)
    }
    found = []
    for cell in graded_cells(notebook):
        meta = nbgrader_meta(cell)
        name = meta["grade_id"]
        statement = by_id.get(f"{name}-statement")
        solution = by_id.get(f"{name}-solution")
        found.append(
            NotebookTask(
                name=name,
                points=float(meta.get("points", 0)),
                statement=statement.source if statement is not None else "",
                solution=solution.source if solution is not None else "",
                tests=cell.source,
            )
        )
    return found


def has_failed(cell: NotebookNode) -> bool:
    """True when an executed code cell shows an error or wrote to stderr (nbgrader's rule for 0
    points)."""
    return any(
        output.get("output_type") == "error"
        or (output.get("output_type") == "stream" and output.get("name") == "stderr")
        for output in cell.get("outputs", [])
    )


def read(path: str | Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def writes(notebook: NotebookNode) -> str:
    """The notebook's JSON, exactly as :func:`write` puts it in a file."""
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def write(notebook: NotebookNode, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
