"""The solution notebooks are built from their text (solutions/chNN/chNN.md) and the task specs
(selfattn_course/authoring/notebooks.py): the committed notebooks are what the build gives, and
the build puts statements, points and test cells where nbgrader expects them."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

import pytest

from selfattn_course.authoring import notebooks as authoring
from selfattn_course.grading import notebooks
from selfattn_course.grading.spec import chapter_tasks, get_task, registered_chapters

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = registered_chapters()


def source_text(chapter: str) -> str:
    return authoring.source_path(REPO, chapter).read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_committed_solution_notebook_is_the_one_built_from_its_text(chapter):
    built = notebooks.writes(authoring.solution_notebook(chapter, source_text(chapter)))
    committed = (REPO / "solutions" / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8")
    assert built == committed, (
        f"solutions/{chapter}/{chapter}.ipynb is not what {chapter}.md and the task specs give: "
        "run `selfattn-course release` (it builds the notebooks first)"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_task_gets_its_statement_solution_and_test_cell_with_the_specs_points(chapter):
    notebook = authoring.solution_notebook(chapter, source_text(chapter))
    found = notebooks.tasks_of(notebook)
    tasks = list(chapter_tasks(chapter).values())
    assert [task.name for task in found] == [task.name for task in tasks]
    for number, (cells, task) in enumerate(zip(found, tasks, strict=True), start=1):
        assert cells.points == task.points
        assert cells.statement == authoring.statement_markdown(number, task)
        assert cells.tests == notebooks.tests_source(task.id, task.name)


def test_a_statement_starts_with_the_task_number_points_and_title():
    scores = authoring.statement_markdown(1, get_task("ch02.attention_scores"))
    assert scores.startswith("**Task 1 (2 points): scores.** Write `attention_scores(q, k)`")
    assert authoring.statement_markdown(5, get_task("ch01.mixing")).startswith(
        "**Task 5 (1 point): what is mixed, and how?** Which statement"
    )


def test_wrapped_lines_are_joined_but_list_items_code_blocks_and_paragraphs_are_kept():
    text = """
        A paragraph
        over two lines.

        - an item
          continued
        - another item

        ```python
        def f(x):
            return x
        ```
        After.
        """
    assert authoring.join_wrapped_lines(text) == (
        "A paragraph over two lines.\n\n- an item continued\n- another item\n\n"
        "```python\ndef f(x):\n    return x\n```\nAfter."
    )


def test_the_marked_cells_must_be_the_chapters_tasks_in_order():
    text = source_text("ch02").replace(":task: masked_softmax", ":task: attention_scores")
    with pytest.raises(ValueError, match="the chapter's tasks, in order, are"):
        authoring.solution_notebook("ch02", text)


def test_a_further_cell_that_belongs_to_no_task_needs_an_id():
    text = source_text("ch02") + "\n+++\n\nA closing remark.\n"
    with pytest.raises(ValueError, match="needs an id"):
        authoring.solution_notebook("ch02", text)
    named = source_text("ch02") + '\n+++ {"id": "closing"}\n\nA closing remark.\n'
    last = authoring.solution_notebook("ch02", named).cells[-1]
    assert last.id == "closing" and notebooks.nbgrader_meta(last)["locked"]


def test_build_writes_the_notebooks_of_the_chapters_with_a_text_and_only_when_they_change(
    tmp_path,
):
    (tmp_path / "solutions" / "ch02").mkdir(parents=True)
    (tmp_path / "solutions" / "ch01").mkdir()  # no ch01.md: written by hand, left alone
    shutil.copy(authoring.source_path(REPO, "ch02"), tmp_path / "solutions" / "ch02")
    target = tmp_path / "solutions" / "ch02" / "ch02.ipynb"

    assert authoring.build(tmp_path) == [target]
    assert target.read_text() == (REPO / "solutions" / "ch02" / "ch02.ipynb").read_text()
    written = target.stat().st_mtime_ns
    assert authoring.build(tmp_path, ["ch01", "ch02"]) == [target]
    assert target.stat().st_mtime_ns == written
    assert not (tmp_path / "solutions" / "ch01" / "ch01.ipynb").exists()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_text_source_holding_the_solutions_is_never_released(chapter):
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    ignored = config.CourseDirectory.ignore
    assert any(fnmatch.fnmatch(f"{chapter}.md", pattern) for pattern in ignored), ignored
    assert not list((REPO / "exercises" / chapter).glob("*.md"))
