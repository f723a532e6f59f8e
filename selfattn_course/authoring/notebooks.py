"""Build a chapter's nbgrader source notebook from its text source and its task specs.

An author writes ``solutions/chNN/chNN.md``, a MyST Markdown notebook like the book's pages
(front matter, then markdown, and code in ```` ```{code-cell} ipython3 ```` blocks), holding only
what is typed by hand::

    # Chapter 2 exercises: computing attention          <- the intro (markdown)
    ...
    ```{code-cell} ipython3                             <- the setup (imports)
    import math

    import torch
    ```

    ```{code-cell} ipython3                             <- solves task ch02.attention_scores
    :task: attention_scores

    def attention_scores(q, k):
        ### BEGIN SOLUTION
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        ### END SOLUTION
    ```

:func:`build` turns it into ``solutions/chNN/chNN.ipynb``, the notebook nbgrader releases and
grades. A code cell marked ``:task: <name>`` becomes three cells: the statement (from the task's
spec, :func:`statement_markdown`), the solution cell as written, and the test cell
``check("chNN.<name>", <name>)`` worth the spec's points. Every other cell is copied and locked;
the first markdown cell is ``intro``, the first code cell ``setup``, and any further one needs
an ``id`` (``+++ {"id": "note"}`` before a markdown cell, ``:id: note`` in a code cell). The
setup cell gets the import the test cells need, ``from selfattn_course.grading import check``,
as its last line. The marked cells must be the chapter's tasks, in the order of its ``TASKS``.

Points, statements, test cells, grade ids and nbgrader metadata thus come from the spec
(:mod:`selfattn_course.grading.spec.task`), where each is stated once.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from nbformat.notebooknode import NotebookNode

from selfattn_course.grading import notebooks
from selfattn_course.grading.spec.registry import chapter_tasks
from selfattn_course.grading.spec.task import Task

__all__ = ["build", "solution_notebook", "statement_markdown", "join_wrapped_lines", "source_path"]

#: A code cell's option that says which task it solves: ``:task: attention_scores``.
TASK_OPTION = "task"

#: What the test cells call, imported at the end of the setup cell.
CHECK_IMPORT = "from selfattn_course.grading import check"

_CHAPTER = re.compile(r"ch\d\d")
# Lines that start a line of their own in markdown: list items, headings, quotes, tables,
# display maths, fences. Any other line continues the line above it.
_OWN_LINE = re.compile(r"^\s*([-*+] |\d+[.)] |#|>|\||\$\$|```)")


def points_text(points: float) -> str:
    """``"1 point"``, ``"2 points"``, ``"1.5 points"``: how the notebook and the book say points."""
    return f"{points:g} point{'' if points == 1 else 's'}"


def statement_markdown(number: int, task: Task) -> str:
    """The statement cell of the ``number``-th task (from 1):
    ``"**Task 1 (2 points): scores.** Write `attention_scores(q, k)` ..."``.

    The title ends with a full stop unless it already ends with ``?`` or ``!``; the statement's
    wrapped lines are joined (:func:`join_wrapped_lines`).
    """
    points = points_text(task.points)
    title = task.title if task.title.endswith(("?", "!", ".")) else f"{task.title}."
    return f"**Task {number} ({points}): {title}** {join_wrapped_lines(task.statement)}"


def join_wrapped_lines(text: str) -> str:
    """Markdown with every paragraph and list item on one line, as the notebook shows it.

    ``text`` may be indented (it is dedented) and wrapped: a line that does not start a block of
    its own (a list item, a heading, a quote, a table row, ``$$``, a fence) is joined to the line
    above with a space. Blank lines and the inside of fenced code blocks are kept as they are.
    """
    lines: list[str] = []
    in_fence = False
    for line in textwrap.dedent(text).strip("\n").splitlines():
        fence = line.lstrip().startswith("```")
        if in_fence or fence or not line.strip():
            lines.append(line.rstrip() if not in_fence else line)
        elif lines and lines[-1].strip() and not _OWN_LINE.match(line) and not _ends_fence(lines):
            lines[-1] = f"{lines[-1]} {line.strip()}"
        else:
            lines.append(line.rstrip())
        if fence:
            in_fence = not in_fence
    return "\n".join(lines)


def _ends_fence(lines: list[str]) -> bool:
    return lines[-1].lstrip().startswith("```")


def source_path(course_dir: str | Path, chapter: str) -> Path:
    """``<course>/solutions/chNN/chNN.md``: the text source of chapter ``chNN``'s notebook."""
    return Path(course_dir) / "solutions" / chapter / f"{chapter}.md"


def read_myst(text: str) -> NotebookNode:
    """A MyST Markdown notebook's cells and front matter, read by myst-nb (imported here, so
    the package imports without it)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(text)


def solution_notebook(chapter: str, text: str, tasks: Sequence[Task] | None = None) -> NotebookNode:
    """The nbgrader source notebook of ``chapter`` from its MyST text and its tasks (default: the
    registry's, :func:`~selfattn_course.grading.spec.registry.chapter_tasks`).

    Raises:
        ValueError: the marked cells are not the tasks in their order, or a cell lacks an id.
    """
    if tasks is None:
        tasks = list(chapter_tasks(chapter).values())
    by_name = {task.name: task for task in tasks}
    source = read_myst(text)
    marked = [cell.metadata[TASK_OPTION] for cell in source.cells if TASK_OPTION in cell.metadata]
    if marked != [task.name for task in tasks]:
        raise ValueError(
            f"{chapter}: the code cells marked ':task:' are {marked}; the chapter's tasks, in "
            f"order, are {[task.name for task in tasks]}"
        )
    cells = []
    for cell in source.cells:
        if TASK_OPTION in cell.metadata:
            task = by_name[cell.metadata[TASK_OPTION]]
            number = marked.index(task.name) + 1
            cells += notebooks.task_cells(
                chapter, task.name, statement_markdown(number, task), cell.source, task.points
            )
        else:
            cells.append(_locked_cell(chapter, cell, cells))
    return notebooks.new_exercise_notebook(cells, kernelspec=source.metadata.get("kernelspec"))


def _locked_cell(chapter: str, cell: NotebookNode, before: Iterable[NotebookNode]) -> NotebookNode:
    """A cell of the text that belongs to no task, copied and locked."""
    kind = cell.cell_type
    grade_id = cell.metadata.get("id")
    if grade_id is None and not any(earlier.cell_type == kind for earlier in before):
        grade_id = "intro" if kind == "markdown" else "setup"
    if grade_id is None:
        raise ValueError(
            f"{chapter}: a {kind} cell that belongs to no task needs an id "
            f'(+++ {{"id": "..."}} or :id: ...): {cell.source[:60]!r}'
        )
    if kind == "markdown":
        return notebooks.readonly_markdown(grade_id, cell.source)
    source = cell.source
    if grade_id == "setup" and CHECK_IMPORT not in source:
        source = f"{source}\n\n{CHECK_IMPORT}" if source.strip() else CHECK_IMPORT
    return notebooks.readonly_code(grade_id, source)


def build(course_dir: str | Path, chapters: Sequence[str] | None = None) -> list[Path]:
    """Write ``solutions/chNN/chNN.ipynb`` from ``solutions/chNN/chNN.md`` and the chapter's
    task specs, for ``chapters`` (default: every chapter that has a ``.md`` source).

    A chapter without a ``.md`` source is left alone (its ``.ipynb`` is written by hand). A
    notebook whose content would not change is not rewritten. Returns the paths of the
    notebooks built, in chapter order.
    """
    course_dir = Path(course_dir)
    if chapters is None:
        chapters = sorted(
            path.parent.name
            for path in (course_dir / "solutions").glob("ch*/ch*.md")
            if _CHAPTER.fullmatch(path.parent.name) and path.stem == path.parent.name
        )
    built = []
    for chapter in chapters:
        source = source_path(course_dir, chapter)
        if not source.exists():
            continue
        target = source.with_suffix(".ipynb")
        notebook = solution_notebook(chapter, source.read_text(encoding="utf-8"))
        text = notebooks.writes(notebook)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        built.append(target)
    return built
