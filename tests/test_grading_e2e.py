"""End to end: the exercise notebooks of every chapter in solutions/, released and autograded.

Fast tests check the notebooks' shape (tasks, points, metadata, one helper per test cell), that
the registry and the notebooks agree, and that the bank of wrong submissions is complete.
The slow tests build one course in a temporary folder (the repository's gradebook is never
touched), release every chapter and grade it with the course's own pipeline on two local workers,
in one batch per chapter (one ``nbgrader autograde`` process grades all of a chapter's
notebooks): the solution notebook (full marks), the untouched release (0 points, no crash) and
the wrong submissions of tests/grading_bank/chNN.py (points lost on exactly the tasks they
break): all of them under SELFATTN_GRADING_ALL=1, else those that need the real pipeline and one
made only of known mistakes (see GRADE_ALL). What each chapter cost is printed (``-s``): a
chapter more costs about that much.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import bank_submission, load_bank, released_course

from selfattn_course.grading import notebooks
from selfattn_course.grading.classroom import course, intake, pipeline, pools, report
from selfattn_course.grading.classroom.pipeline import ClassGrading
from selfattn_course.grading.spec.answers import Choice
from selfattn_course.grading.spec.registry import chapter_tasks

REPO = Path(__file__).resolve().parents[1]
# SELFATTN_E2E_CHAPTERS=ch06,ch07 grades only those chapters (while writing one); unset: every one.
CHAPTERS = [
    chapter
    for chapter in course.chapters(REPO)
    if chapter in os.environ.get("SELFATTN_E2E_CHAPTERS", chapter).split(",")
]


def solution_notebook(chapter: str, root: Path = REPO):
    return notebooks.read(root / "solutions" / chapter / f"{chapter}.ipynb")


def release_notebook(chapter: str, root: Path = REPO):
    return notebooks.read(root / "exercises" / chapter / f"{chapter}.ipynb")


BANK_ENTRIES = [(chapter, name) for chapter in CHAPTERS for name in load_bank(chapter)]
# SELFATTN_GRADING_ALL=1 (`make test-grading-all`): nbgrader grades every bank entry. Otherwise
# (`make test`) it grades, per chapter, every entry that needs the real pipeline (a cell replaced
# by hand: a forbidden call, a broken property, a cell a later task builds on; a deleted cell)
# and the first entry made only of known mistakes; the other entries' mistakes are each checked
# in-process, hint included, by tests/tasks/test_every_task.py. A chapter costs about 5 s of
# grading a notebook: this keeps `make test` within its budget at 30 chapters.
GRADE_ALL = os.environ.get("SELFATTN_GRADING_ALL") == "1"


def _graded_by_nbgrader(chapter: str) -> list[str]:
    bank = load_bank(chapter)
    plain = [name for name, entry in bank.items() if entry["only_mistakes"]]
    return [name for name in bank if GRADE_ALL or name not in plain[1:]]


GRADED_ENTRIES = [(chapter, name) for chapter in CHAPTERS for name in _graded_by_nbgrader(chapter)]


def cells_by_id(notebook) -> dict:
    return {
        notebooks.nbgrader_meta(cell).get("grade_id"): cell
        for cell in notebook.cells
        if notebooks.nbgrader_meta(cell)
    }


def test_the_config_lists_every_chapter_in_solutions():
    found = sorted(
        path.parent.name for path in (REPO / "solutions").glob("ch[0-9][0-9]/ch[0-9][0-9].ipynb")
    )
    assert course.chapters(REPO) == found
    assert len(found) >= 2


def test_the_config_sets_directories_timeout_and_missing_cells():
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(course.CONFIG_FILE, path=str(REPO)).load_config()
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "exercises"
    assert config.Execute.timeout >= 30
    assert config.OverwriteCells.add_missing_cells is True


# --- the notebooks' shape -----------------------------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_has_3_to_6_tasks_worth_10_points(chapter):
    tasks = notebooks.tasks_of(solution_notebook(chapter))
    assert 3 <= len(tasks) <= 6
    assert sum(task.points for task in tasks) == 10


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_task_is_a_statement_a_solution_and_a_test_cell_in_that_order(chapter):
    cells = solution_notebook(chapter).cells
    ids = [notebooks.nbgrader_meta(cell).get("grade_id") for cell in cells]
    for task in notebooks.tasks_of(solution_notebook(chapter)):
        at = ids.index(task.name)
        assert ids[at - 2 : at] == [f"{task.name}-statement", f"{task.name}-solution"]
        assert cells[at - 2].cell_type == "markdown"
        assert "### BEGIN SOLUTION" in task.solution and "### END SOLUTION" in task.solution


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_test_cell_calls_the_one_helper_visible_then_hidden(chapter):
    for task in notebooks.tasks_of(solution_notebook(chapter)):
        assert task.tests == notebooks.tests_source(f"{chapter}.{task.name}", task.name)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_setup_cell_imports_the_helper(chapter):
    setup = cells_by_id(solution_notebook(chapter))["setup"]
    assert "from selfattn_course.grading import check" in setup.source


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_notebook_tasks_are_the_registry_tasks(chapter):
    in_notebook = [
        f"{chapter}.{task.name}" for task in notebooks.tasks_of(solution_notebook(chapter))
    ]
    assert in_notebook == list(chapter_tasks(chapter))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_nbgrader_metadata_is_schema_3_with_unique_ids(chapter):
    metas = [notebooks.nbgrader_meta(cell) for cell in solution_notebook(chapter).cells]
    assert all(metas), "every cell is managed by nbgrader (locked or graded or a solution)"
    assert all(meta["schema_version"] == 3 for meta in metas)
    ids = [meta["grade_id"] for meta in metas]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_committed_release_has_no_solutions_or_hidden_tests(chapter):
    text = (REPO / "exercises" / chapter / f"{chapter}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text
    assert "HIDDEN TESTS" not in text
    assert "hidden=True" not in text


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_choice_option_is_in_the_statement(chapter):
    statements = {
        task.name: task.statement for task in notebooks.tasks_of(solution_notebook(chapter))
    }
    for task in chapter_tasks(chapter).values():
        answer_type = getattr(task, "answer_type", None)
        if isinstance(answer_type, Choice):
            for key, text in answer_type.options.items():
                assert f"({key}) {text}" in statements[task.name]


# --- the bank of wrong submissions --------------------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_at_least_two_wrong_submissions(chapter):
    assert len(load_bank(chapter)) >= 2


@pytest.mark.parametrize("chapter, name", BANK_ENTRIES)
def test_a_bank_entry_names_real_cells(chapter, name):
    entry = load_bank(chapter)[name]
    cells = cells_by_id(solution_notebook(chapter))
    graded = {task.name for task in notebooks.tasks_of(solution_notebook(chapter))}
    assert entry["replace"] or entry.get("delete")
    for cell_id in entry["replace"]:
        assert notebooks.nbgrader_meta(cells[cell_id])["solution"], cell_id
    assert set(entry.get("delete", ())) <= set(cells)
    assert entry["loses"] and set(entry["loses"]) <= graded


# --- autograding, end to end --------------------------------------------------------------------


@dataclass
class GradedCourse:
    course_dir: Path  # the temporary course that released and graded every chapter
    grading: ClassGrading
    # (student, chapter) -> task -> (score, max)
    scores: dict[tuple[str, str], dict[str, tuple[float, float]]]
    release_seconds: float
    grading_seconds: float


def write_submissions(course_dir: Path, incoming: Path) -> None:
    """Every test submission of every chapter: the solution, the untouched release, the bank."""
    for chapter in CHAPTERS:
        solution = solution_notebook(chapter, course_dir)
        release = release_notebook(chapter, course_dir)
        notebooks.write(solution, incoming / "solution" / chapter / f"{chapter}.ipynb")
        notebooks.write(release, incoming / "untouched" / chapter / f"{chapter}.ipynb")
        bank = load_bank(chapter)
        for name in _graded_by_nbgrader(chapter):
            entry = bank[name]
            notebooks.write(
                bank_submission(solution, release, entry),
                incoming / f"{chapter}-{name}" / chapter / f"{chapter}.ipynb",
            )


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> GradedCourse:
    """Every chapter released and every test submission graded: two local workers, each batch
    one chapter's notebooks (any number of them: one nbgrader start per chapter)."""
    root = tmp_path_factory.mktemp("e2e")
    started = time.perf_counter()
    course_dir = released_course(REPO, root / "course", CHAPTERS)
    released = time.perf_counter()
    write_submissions(course_dir, root / "incoming")
    found = intake.inspect(root / "incoming", CHAPTERS)
    pool = pools.LocalPool(2, max_batch=None)  # one batch, one nbgrader start, per chapter
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny tensors; two kernels share the cores
        grading = pipeline.grade_class(course_dir, found, pool, progress_stream=io.StringIO())
    seconds = time.perf_counter() - released
    scores: dict = {}
    for score in report.gradebook_scores(course_dir):
        key = (score.student, score.chapter)
        scores.setdefault(key, {})[score.task] = (score.score, score.max_score)
    return GradedCourse(course_dir, grading, scores, released - started, seconds)


def comparable(notebook) -> list:
    """What a release must reproduce: each cell's type, id, source and metadata, and the
    notebook's metadata (outputs and execution counts are volatile)."""
    cells = [
        (cell.cell_type, cell.get("id"), cell.source, dict(cell.metadata))
        for cell in notebook.cells
    ]
    return [dict(notebook.metadata), cells]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_committed_release_is_what_nbgrader_generates(graded, chapter):
    fresh = release_notebook(chapter, graded.course_dir)
    committed = release_notebook(chapter)
    assert comparable(committed) == comparable(fresh), (
        f"exercises/{chapter} is out of date: run `selfattn-course release {chapter}` and "
        "commit the result"
    )


@pytest.mark.slow
def test_every_submission_was_graded_without_a_crash_one_batch_per_chapter(graded):
    summary = graded.grading.summary
    assert graded.grading.problems == [], graded.grading.logs
    assert (summary.failed, summary.retried, summary.skipped) == (0, 0, 0)
    assert summary.graded == len(graded.grading.intake.accepted) == len(graded.scores)
    assert sorted(summary.chapter_seconds) == CHAPTERS
    per_chapter = summary.chapter_seconds
    mean = sum(per_chapter.values()) / len(per_chapter)
    print(
        f"\ne2e: released {len(CHAPTERS)} chapters in {graded.release_seconds:.1f} s "
        f"({graded.release_seconds / len(CHAPTERS):.1f} s a chapter); graded {summary.graded} "
        f"notebooks in {graded.grading_seconds:.1f} s wall on {summary.workers}"
    )
    print(
        "e2e: worker seconds per chapter (its batch: one nbgrader start, its notebooks): "
        + ", ".join(f"{chapter} {per_chapter[chapter]:.1f}" for chapter in CHAPTERS)
        + f"; mean {mean:.1f}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_solution_gets_full_marks(graded, chapter):
    tasks = graded.scores[("solution", chapter)]
    assert {name: score for name, (score, _) in tasks.items()} == {
        name: top for name, (_, top) in tasks.items()
    }
    assert sum(top for _, top in tasks.values()) == 10


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_untouched_release_gets_zero(graded, chapter):
    tasks = graded.scores[("untouched", chapter)]
    assert len(tasks) == len(notebooks.tasks_of(solution_notebook(chapter)))
    assert sum(score for score, _ in tasks.values()) == 0


@pytest.mark.slow
@pytest.mark.parametrize("chapter, name", GRADED_ENTRIES)
def test_a_wrong_submission_loses_points_on_the_tasks_it_breaks_and_only_there(
    graded, chapter, name
):
    tasks = graded.scores[(f"{chapter}-{name}", chapter)]
    lost = {task for task, (score, top) in tasks.items() if score < top}
    assert lost == set(load_bank(chapter)[name]["loses"])
    assert len(tasks) == len(notebooks.tasks_of(solution_notebook(chapter)))
