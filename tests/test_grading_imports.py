"""A sandbox that cannot import the package stops grading before anything is graded.

Were it let through, every test cell would stop at ``NameError: name 'check' is not defined``:
every task 0, with the learner blamed. The course's config below hides the package's folder from
the sandbox (``c.SandboxedKernelManager.hidden_paths``), as an editable install from a folder
the sandbox does not show does; ``selfattn-course grade`` and ``nbgrader autograde`` must both
stop, name that folder and say how to show it, and leave the gradebook without a grade.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import released_course

import selfattn_course
from selfattn_course.cli import main
from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde import execute, sandbox
from selfattn_course.grading.autograde.nbgrader_command import run_nbgrader
from selfattn_course.grading.classroom import course, report

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = str(Path(selfattn_course.__file__).resolve().parent)
HIDE_THE_PACKAGE = f"\nc.SandboxedKernelManager.hidden_paths = [{PACKAGE_DIR!r}]\n"

AVAILABLE, WHY_NOT = sandbox.sandbox_available()
if not AVAILABLE and os.environ.get("SELFATTN_REQUIRE_SANDBOX") == "1":
    raise sandbox.SandboxUnavailable(f"SELFATTN_REQUIRE_SANDBOX=1 but {WHY_NOT}")
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY_NOT}")


@pytest.fixture(scope="module")
def blind_course(tmp_path_factory) -> Path:
    """A released ch01 whose sandbox cannot see the package, and alice's correct submission."""
    root = tmp_path_factory.mktemp("imports")
    course_dir = released_course(REPO, root / "course", ["ch01"], extra_config=HIDE_THE_PACKAGE)
    solution = notebooks.read(course_dir / "solutions" / "ch01" / "ch01.ipynb")
    notebooks.write(solution, root / "incoming" / "alice" / "ch01" / "ch01.ipynb")
    return course_dir


def assert_names_the_folder_and_the_fix(message: str) -> None:
    assert "cannot import selfattn_course and its tasks" in message, message
    assert "No module named 'selfattn_course'" in message
    assert f"finds selfattn_course in {PACKAGE_DIR}, which the sandbox does not show" in message
    assert f"c.SandboxedKernelManager.readonly_paths = [{PACKAGE_DIR!r}]" in message


def test_the_course_sandbox_imports_the_package_and_its_tasks():
    assert execute.grading_import_problem(course.load_config(REPO)) is None


def test_a_sandbox_blind_to_the_package_is_named_with_the_fix(blind_course):
    problem = execute.grading_import_problem(course.load_config(blind_course))
    assert problem is not None
    assert_names_the_folder_and_the_fix(problem)


@pytest.mark.slow
def test_grade_stops_before_grading_and_says_which_folder(blind_course, capsys):
    incoming = blind_course.parent / "incoming"
    assert main(["grade", str(incoming), "--course-dir", str(blind_course)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfattn-course grade: a sandboxed kernel cannot import"), err
    assert_names_the_folder_and_the_fix(err)
    assert "stopped before grading: nothing was graded" in err
    assert report.gradebook_scores(blind_course) == []
    assert not (blind_course / "grades.csv").exists()
    assert not (blind_course / "submitted").exists()
    assert not (blind_course / "autograded").exists()


@pytest.mark.slow
def test_nbgrader_autograde_stops_before_grading_and_says_which_folder(blind_course):
    submitted = blind_course / "submitted" / "bob" / "ch01"
    solution = notebooks.read(blind_course / "solutions" / "ch01" / "ch01.ipynb")
    notebooks.write(solution, submitted / "ch01.ipynb")
    try:
        command = run_nbgrader(blind_course, ["autograde", "ch01"])
        assert command.returncode == 2, command.log[-3000:]
        assert "nbgrader autograde stopped before grading: a sandboxed kernel" in command.log
        assert_names_the_folder_and_the_fix(command.log)
        assert report.gradebook_scores(blind_course) == []
        assert not (blind_course / "autograded" / "bob").exists()
    finally:
        shutil.rmtree(blind_course / "submitted")
