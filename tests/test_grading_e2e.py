"""End to end: the exercise notebooks of every chapter in solutions/, released and autograded.

Fast tests check the notebooks' shape (tasks, points, metadata, one helper per test cell), that
the registry and the notebooks agree, and that the bank of wrong submissions is complete.
The slow tests build two courses in temporary folders (the repository's gradebook is never
touched) that split the chapters between them and run side by side. Each releases its chapters and
autogrades, in one nbgrader call, for each chapter: the solution notebook (full marks), the
untouched release (0 points, no crash) and every wrong submission of tests/grading_bank/chNN.py
(points lost on exactly the tasks it breaks).
"""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import load_bank

from selfattn_course.grading import notebooks
from selfattn_course.grading.classroom import course, report
from selfattn_course.grading.classroom.course import AutogradeRun
from selfattn_course.grading.spec.answers import Choice
from selfattn_course.grading.spec.registry import chapter_tasks

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = course.chapters(REPO)


def solution_notebook(chapter: str, root: Path = REPO):
    return notebooks.read(root / "solutions" / chapter / f"{chapter}.ipynb")


def release_notebook(chapter: str, root: Path = REPO):
    return notebooks.read(root / "exercises" / chapter / f"{chapter}.ipynb")


BANK_ENTRIES = [(chapter, name) for chapter in CHAPTERS for name in load_bank(chapter)]


def cells_by_id(notebook) -> dict:
    return {
        notebooks.nbgrader_meta(cell).get("grade_id"): cell
        for cell in notebook.cells
        if notebooks.nbgrader_meta(cell)
    }


def wrong_submission(solution, release, entry):
    """The release with every solution cell filled in from the solution, then the entry's mistakes."""
    submission = copy.deepcopy(release)
    solved = cells_by_id(solution)
    for cell in submission.cells:
        meta = notebooks.nbgrader_meta(cell)
        if meta.get("solution"):
            cell.source = entry["replace"].get(meta["grade_id"], solved[meta["grade_id"]].source)
    deleted = set(entry.get("delete", ()))
    submission.cells = [
        cell
        for cell in submission.cells
        if notebooks.nbgrader_meta(cell).get("grade_id") not in deleted
    ]
    return submission


def test_the_config_lists_every_chapter_in_solutions():
    found = sorted(
        path.parent.name for path in (REPO / "solutions").glob("ch[0-9][0-9]/ch[0-9][0-9].ipynb")
    )
    assert CHAPTERS == found
    assert len(CHAPTERS) >= 2


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
    course_dirs: dict[str, Path]  # chapter -> the temporary course that released and graded it
    runs: list[AutogradeRun]
    scores: dict[
        tuple[str, str], dict[str, tuple[float, float]]
    ]  # (student, chapter) -> task -> (score, max)
    seconds: float


def grade_in_a_temporary_course(root: Path, chapters: list[str]) -> tuple[Path, AutogradeRun]:
    """Copy the config and these chapters' solutions to ``root``, release them, write every test
    submission (solution, untouched release, the bank) and autograde them in one nbgrader call."""
    course_dir = course.released_copy(REPO, root / "course", chapters)

    incoming = root / "incoming"
    for chapter in chapters:
        solution, release = (
            solution_notebook(chapter, course_dir),
            release_notebook(chapter, course_dir),
        )
        notebooks.write(solution, incoming / "solution" / chapter / f"{chapter}.ipynb")
        notebooks.write(release, incoming / "untouched" / chapter / f"{chapter}.ipynb")
        for name, entry in load_bank(chapter).items():
            submission = wrong_submission(solution, release, entry)
            notebooks.write(
                submission, incoming / f"{chapter}-{name}" / chapter / f"{chapter}.ipynb"
            )
    return course_dir, course.autograde(course_dir, incoming)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> GradedCourse:
    """Every chapter released and every test submission autograded, in two temporary courses that
    run side by side (one nbgrader process each: nbgrader grades one notebook at a time)."""
    groups = [group for group in (CHAPTERS[0::2], CHAPTERS[1::2]) if group]
    roots = [tmp_path_factory.mktemp("course") for _ in groups]
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(len(groups)) as pool:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny tensors; two kernels share the cores
        done = list(pool.map(grade_in_a_temporary_course, roots, groups))
    seconds = time.perf_counter() - started
    course_dirs, scores = {}, {}
    for (course_dir, _), group in zip(done, groups):
        course_dirs.update({chapter: course_dir for chapter in group})
        for score in report.gradebook_scores(course_dir):
            scores.setdefault((score.student, score.chapter), {})[score.task] = (
                score.score,
                score.max_score,
            )
    return GradedCourse(course_dirs, [run for _, run in done], scores, seconds)


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
    fresh = release_notebook(chapter, graded.course_dirs[chapter])
    committed = release_notebook(chapter)
    assert comparable(committed) == comparable(fresh), (
        f"exercises/{chapter} is out of date: run `selfattn-course release {chapter}` and commit the result"
    )


@pytest.mark.slow
def test_every_submission_was_autograded_without_a_crash(graded):
    for run in graded.runs:
        assert run.failed == []
        assert all(nbgrader.ok for nbgrader in run.runs), [
            nbgrader.log[-3000:] for nbgrader in run.runs if not nbgrader.ok
        ]
    graded_pairs = {(s.student, s.chapter) for run in graded.runs for s in run.submissions}
    assert graded_pairs <= set(graded.scores)
    print(f"released and autograded {len(graded_pairs)} notebooks in {graded.seconds:.0f} s")


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
@pytest.mark.parametrize("chapter, name", BANK_ENTRIES)
def test_a_wrong_submission_loses_points_on_the_tasks_it_breaks_and_only_there(
    graded, chapter, name
):
    tasks = graded.scores[(f"{chapter}-{name}", chapter)]
    lost = {task for task, (score, top) in tasks.items() if score < top}
    assert lost == set(load_bank(chapter)[name]["loses"])
    assert len(tasks) == len(notebooks.tasks_of(solution_notebook(chapter)))
