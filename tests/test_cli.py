"""The `selfattn-course` command: argument errors, the course directory, the report, end to end.

Fast tests check the arguments, what each command calls (new-chapter and release, with stand-ins
for the authoring code) and the report. The slow tests run the command on a tiny course in a
temporary folder (one chapter of two small tasks without torch, so kernels start fast): release,
grade, feedback and check.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfattn_course.cli import main
from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.nbgrader_command import NbgraderCommand
from selfattn_course.grading.classroom import course, intake
from selfattn_course.grading.classroom.intake import Problem
from selfattn_course.grading.classroom.progress import ProgressBar
from selfattn_course.grading.classroom.report import (
    NO_ERROR_SHOWN,
    TaskScore,
    format_table,
    write_csv,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_notebook(
    answer_source: str = "answer = 42",
    double_source: str = "def double(x):\n    return 2 * x",
    double_tests: str = (
        "assert double(2) == 4\n"
        "### BEGIN HIDDEN TESTS\nassert double(-3) == -6\n### END HIDDEN TESTS"
    ),
):
    """One chapter of two tasks (1 + 2 points) whose tests need no torch."""
    cells = [
        notebooks.readonly_markdown("intro", "# A tiny chapter"),
        notebooks.readonly_code("setup", "import math"),
        notebooks.readonly_markdown("answer-statement", "Set `answer` to 42."),
        notebooks.solution_cell(
            "answer-solution", f"### BEGIN SOLUTION\n{answer_source}\n### END SOLUTION"
        ),
        notebooks.tests_cell("answer", 'assert answer == 42, "answer should be 42"', points=1),
        notebooks.readonly_markdown("double-statement", "Write `double(x)`."),
        notebooks.solution_cell(
            "double-solution", f"### BEGIN SOLUTION\n{double_source}\n### END SOLUTION"
        ),
        notebooks.tests_cell("double", double_tests, points=2),
    ]
    return notebooks.new_exercise_notebook(cells)


def make_tiny_course(root: Path) -> Path:
    course_dir = root / "course"
    (course_dir / "solutions").mkdir(parents=True)
    shutil.copy(REPO / course.CONFIG_FILE, course_dir)
    notebooks.write(tiny_notebook(), course_dir / "solutions" / "ch01" / "ch01.ipynb")
    return course_dir


@pytest.fixture
def tiny_course(tmp_path) -> Path:
    return make_tiny_course(tmp_path)


# --- arguments and the course directory ---------------------------------------------------------


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as leaving:
        main([])
    assert leaving.value.code == 2


def test_an_unknown_chapter_is_refused_with_the_chapters_there_are(tiny_course, capsys):
    assert main(["release", "ch99", "--course-dir", str(tiny_course)]) == 2
    assert "unknown chapter(s) ch99; the course has ch01" in capsys.readouterr().err


def test_check_refuses_a_missing_notebook(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err


def test_grade_refuses_a_folder_without_submissions(tiny_course, tmp_path, capsys):
    assert main(["grade", str(tmp_path), "--course-dir", str(tiny_course)]) == 2
    assert "no submissions <student>/<chNN>/<chNN>.ipynb under" in capsys.readouterr().err


def test_the_course_directory_is_found_from_a_folder_inside_it():
    assert course.find_course_dir(REPO / "solutions") == REPO


def test_outside_a_course_the_course_directory_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no course directory"):
        course.find_course_dir(tmp_path)


def test_the_chapters_are_the_solutions_folders_the_config_finds(tiny_course):
    notebooks.write(tiny_notebook(), tiny_course / "solutions" / "ch03" / "ch03.ipynb")
    (tiny_course / "solutions" / "ch04").mkdir()  # no notebook: not a chapter
    assert course.chapters(tiny_course) == ["ch01", "ch03"]


def test_submissions_are_found_by_their_layout(tmp_path):
    for relative in [
        "alice/ch01/ch01.ipynb",
        "alice/ch02/ch02.ipynb",
        "bob/ch01/ch01.ipynb",
        "bob/ch01/notes.ipynb",
        "bob/misc/ch01.ipynb",
    ]:
        notebooks.write(tiny_notebook(), tmp_path / relative)
    found = intake.inspect(tmp_path, ["ch01", "ch02"])
    assert [(s.student, s.chapter) for s in found.accepted] == [
        ("alice", "ch01"),
        ("alice", "ch02"),
        ("bob", "ch01"),
    ]
    assert found.problems == [
        Problem("bob", "ch01", "not graded: notes.ipynb (only ch01.ipynb is)", graded=True)
    ]


# --- what new-chapter and release call ------------------------------------------------------------


def test_new_chapter_creates_the_chapter_and_prints_what_it_wrote(tiny_course, monkeypatch, capsys):
    from selfattn_course.authoring import new_chapter

    calls = []

    def create(course_dir, number, slug):
        calls.append((course_dir, number, slug))
        return [course_dir / "book" / f"ch{number:02d}-{slug}.md", course_dir / "_toc.yml"]

    monkeypatch.setattr(new_chapter, "create", create)
    assert main(["new-chapter", "7", "kv-cache", "--course-dir", str(tiny_course)]) == 0
    assert calls == [(tiny_course.resolve(), 7, "kv-cache")]
    assert capsys.readouterr().out.splitlines() == ["wrote book/ch07-kv-cache.md", "wrote _toc.yml"]


def test_new_chapter_refuses_what_create_refuses(tiny_course, monkeypatch, capsys):
    from selfattn_course.authoring import new_chapter

    def create(course_dir, number, slug):
        raise ValueError(f"chapter {number} exists already")

    monkeypatch.setattr(new_chapter, "create", create)
    assert main(["new-chapter", "1", "again", "--course-dir", str(tiny_course)]) == 2
    assert "selfattn-course new-chapter: chapter 1 exists already" in capsys.readouterr().err


def test_release_builds_the_notebooks_first_then_runs_nbgrader(tiny_course, monkeypatch, capsys):
    from selfattn_course.authoring import notebooks as authoring_notebooks

    notebooks.write(tiny_notebook(), tiny_course / "solutions" / "ch02" / "ch02.ipynb")
    done = []

    def build(course_dir, chapters):
        done.append(("build", course_dir, list(chapters)))
        return [course_dir / "solutions" / chapter / f"{chapter}.ipynb" for chapter in chapters]

    def release(course_dir, chapters):
        done.append(("release", course_dir, list(chapters)))
        return [NbgraderCommand(["generate_assignment", "ch02", "--force"], 0, "")]

    monkeypatch.setattr(authoring_notebooks, "build", build)
    monkeypatch.setattr(course, "release", release)
    assert main(["release", "ch02", "--course-dir", str(tiny_course)]) == 0
    where = tiny_course.resolve()
    assert done == [("build", where, ["ch02"]), ("release", where, ["ch02"])]
    assert capsys.readouterr().out.splitlines() == [
        "built solutions/ch02/ch02.ipynb",
        "nbgrader generate_assignment ch02 --force: released",
    ]


def test_the_console_script_is_installed_and_the_module_runs():
    assert (Path(sys.executable).parent / "selfattn-course").exists()
    done = subprocess.run(
        [sys.executable, "-m", "selfattn_course.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert all(command in done.stdout for command in ("release", "grade", "feedback", "check"))


# --- the report ---------------------------------------------------------------------------------


SCORES = [
    TaskScore("alice", "ch01", "weights", 3, 3),
    TaskScore("alice", "ch01", "mixing", 0, 1),
    TaskScore("alice", "ch02", "attention", 3, 3),
    TaskScore("bob", "ch01", "weights", 1.5, 3),
]


def test_the_table_has_a_row_per_student_and_a_column_per_chapter():
    table = format_table(SCORES).splitlines()
    assert table[0].split() == ["student", "ch01", "ch02", "total"]
    assert table[1].split() == ["alice", "3/4", "3/3", "6/7"]
    assert table[2].split() == ["bob", "1.5/3", "-", "1.5/3"]


def test_the_csv_has_one_row_per_task_with_the_reason_where_there_is_one(tmp_path):
    problems = [
        Problem("bob", "ch01", "not graded: notes.ipynb (only ch01.ipynb is)", graded=True),
        Problem("carol", "ch31", "ch31 is not a chapter of this course"),
    ]
    own = {("alice", "ch01", "mixing"): "ch01.mixing: the weights do not sum to 1"}
    path = write_csv(SCORES, tmp_path / "out" / "grades.csv", problems, own)
    lines = path.read_text().splitlines()
    assert lines[0] == "student,chapter,task,score,max_score,reason"
    assert lines[1:] == [
        "alice,ch01,weights,3,3,",
        "alice,ch01,mixing,0,1,ch01.mixing: the weights do not sum to 1",
        "alice,ch02,attention,3,3,",
        f"bob,ch01,weights,1.5,3,not graded: notes.ipynb (only ch01.ipynb is); {NO_ERROR_SHOWN}",
        "carol,ch31,,0,0,ch31 is not a chapter of this course",
    ]


def test_the_progress_bar_writes_plain_lines_to_a_log():
    stream = io.StringIO()
    bar = ProgressBar(2, label="grading", stream=stream)
    bar.advance("alice ch01")
    bar.advance("bob ch01")
    bar.close()
    assert stream.getvalue() == "grading 1/2 alice ch01\ngrading 2/2 bob ch01\n"


def test_the_progress_bar_redraws_one_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = ProgressBar(4, stream=stream, width=8)
    bar.advance("alice")
    bar.close()
    assert stream.getvalue().startswith("\rgrading [##......] 1/4 alice")
    assert stream.getvalue().endswith("\n")


# --- end to end on a tiny course ----------------------------------------------------------------


@dataclass
class Graded:
    course_dir: Path
    exit_code: int
    out: str
    err: str
    csv_path: Path


@pytest.fixture(scope="module")
def graded_tiny_course(tmp_path_factory) -> Graded:
    """The tiny course released with the command, then three learners graded with it."""
    root = tmp_path_factory.mktemp("tiny")
    course_dir = make_tiny_course(root)
    assert main(["release", "--course-dir", str(course_dir)]) == 0

    incoming = root / "incoming"
    notebooks.write(tiny_notebook(), incoming / "alice" / "ch01" / "ch01.ipynb")
    notebooks.write(
        tiny_notebook(double_source="def double(x):\n    return x + 2"),
        incoming / "bob" / "ch01" / "ch01.ipynb",
    )
    (incoming / "carol" / "ch01").mkdir(parents=True)
    shutil.copy(
        course_dir / "exercises" / "ch01" / "ch01.ipynb", incoming / "carol" / "ch01" / "ch01.ipynb"
    )

    out, err = io.StringIO(), io.StringIO()
    csv_path = root / "grades.csv"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exit_code = main(
            ["grade", str(incoming), "--course-dir", str(course_dir), "--csv", str(csv_path)]
        )
    return Graded(course_dir, exit_code, out.getvalue(), err.getvalue(), csv_path)


@pytest.mark.slow
def test_release_writes_the_exercise_without_its_solutions(graded_tiny_course):
    release = (graded_tiny_course.course_dir / "exercises" / "ch01" / "ch01.ipynb").read_text()
    assert "double" in release and "answer = 42" not in release and "double(-3)" not in release


@pytest.mark.slow
def test_grade_prints_a_table_writes_a_csv_and_shows_progress(graded_tiny_course):
    assert graded_tiny_course.exit_code == 0, graded_tiny_course.err
    rows = {line.split()[0]: line.split()[1:] for line in graded_tiny_course.out.splitlines()[1:4]}
    assert rows == {"alice": ["3/3", "3/3"], "bob": ["1/3", "1/3"], "carol": ["0/3", "0/3"]}
    assert "autograding 3/3" in graded_tiny_course.err
    assert "bob,ch01,double,0,2" in graded_tiny_course.csv_path.read_text()
    assert (graded_tiny_course.course_dir / "submitted" / "bob" / "ch01" / "ch01.ipynb").exists()


@pytest.mark.slow
def test_feedback_writes_html_for_each_graded_submission(graded_tiny_course):
    assert main(["feedback", "--course-dir", str(graded_tiny_course.course_dir)]) == 0
    assert (graded_tiny_course.course_dir / "feedback" / "alice" / "ch01" / "ch01.html").exists()


@pytest.mark.slow
def test_grade_exits_1_and_says_so_when_nbgrader_cannot_grade_a_submission(
    graded_tiny_course, tmp_path, capsys
):
    broken = tmp_path / "incoming" / "dave" / "ch01" / "ch01.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text("this is not a notebook")
    assert (
        main(
            [
                "grade",
                str(tmp_path / "incoming"),
                "--course-dir",
                str(graded_tiny_course.course_dir),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "could not grade dave/ch01: ch01.ipynb is not a valid notebook" in err


@pytest.mark.slow
def test_check_exits_0_only_when_every_test_cell_passes(tmp_path, capsys):
    solved = tmp_path / "solved.ipynb"
    notebooks.write(tiny_notebook(), solved)
    assert main(["check", str(solved)]) == 0
    assert "solved.ipynb: 2 of 2 tasks pass (3/3 points)" in capsys.readouterr().out

    wrong = tmp_path / "wrong.ipynb"
    notebooks.write(
        tiny_notebook(
            answer_source="import sys\nanswer = 42\nprint('oops', file=sys.stderr)",
            double_source="double = None",
        ),
        wrong,
    )
    assert main(["check", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "PASS  answer (1 point)" in out  # stderr in a solution cell is not the test cell's
    assert (
        "FAIL  double (2 points)" in out and "TypeError: 'NoneType' object is not callable" in out
    )


@pytest.mark.slow
def test_check_fails_a_test_cell_that_writes_to_stderr_as_nbgrader_does(tmp_path, capsys):
    noisy = tmp_path / "noisy.ipynb"
    notebooks.write(
        tiny_notebook(
            double_tests="import sys\nprint('a warning', file=sys.stderr)\nassert double(2) == 4"
        ),
        noisy,
    )
    assert main(["check", str(noisy)]) == 1
    assert "wrote to stderr (nbgrader scores that 0): a warning" in capsys.readouterr().out
