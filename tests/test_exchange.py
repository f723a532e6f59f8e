"""The round trip a class goes through nbgrader's exchange, on a scratch copy of the course.

release_assignment -> a learner fetches, fills in and submits -> collect -> ``selfattn-course
grade`` -> generate_feedback -> release_feedback -> the learner fetches the feedback. The
instructor runs nbgrader in the course folder with the course's ``nbgrader_config.py`` (whose
default exchange is ``exchange/`` in the course folder); the learner runs it in a folder of their
own, told only the exchange and the course id, as the README says. Both are this OS user.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import filled_release, released_course

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.nbgrader_command import run_nbgrader, tool_env

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "ch01"


def test_the_config_sets_a_course_id_and_a_course_local_exchange(tmp_path, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.delenv("SELFATTN_EXCHANGE", raising=False)
    (tmp_path / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.CourseDirectory.course_id
    assert config.Exchange.root == str(tmp_path / "exchange")
    # made on loading, writable by every learner, as nbgrader's release_assignment requires
    assert (tmp_path / "exchange").stat().st_mode & 0o777 == 0o777


def test_the_exchange_can_be_a_shared_folder(tmp_path, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    shared = tmp_path / "shared-exchange"
    monkeypatch.setenv("SELFATTN_EXCHANGE", str(shared))
    (tmp_path / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.Exchange.root == str(shared)
    assert not (tmp_path / "exchange").exists()
    assert not shared.exists()  # a shared exchange is its admin's to make


def nbgrader(folder: Path, *args: str, env: dict[str, str]) -> str:
    """Run nbgrader in ``folder``; its log, or a failure showing it."""
    done = run_nbgrader(folder, list(args), env=env)
    assert done.ok, f"{done.describe()} failed:\n{done.log}"
    assert "[CRITICAL]" not in done.log and "[ERROR]" not in done.log, done.log
    return done.log


@pytest.mark.slow
def test_release_fetch_submit_collect_grade_and_return_feedback(tmp_path):
    started = time.perf_counter()
    course_dir = released_course(REPO, tmp_path / "course", [CHAPTER])
    learner_dir = tmp_path / "learner"
    learner_dir.mkdir()
    # nbgrader submit keeps a cache under JUPYTER_DATA_DIR: a scratch one, not the user's
    env = {"JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"), "SELFATTN_EXCHANGE": ""}
    exchange = course_dir / "exchange"
    learner_options = [f"--Exchange.root={exchange}", "--course=selfattn"]

    nbgrader(course_dir, "release_assignment", CHAPTER, env=env)
    nbgrader(learner_dir, "fetch_assignment", CHAPTER, *learner_options, env=env)
    fetched = learner_dir / CHAPTER / f"{CHAPTER}.ipynb"
    assert fetched.is_file()

    # The learner solves every task but the first, whose stub stays as released.
    release = notebooks.read(fetched)
    solution = notebooks.read(course_dir / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    tasks = notebooks.tasks_of(solution)
    unsolved = tasks[0]
    stub = next(
        cell.source
        for cell in release.cells
        if notebooks.nbgrader_meta(cell).get("grade_id") == f"{unsolved.name}-solution"
    )
    submission = filled_release(solution, release, replace={f"{unsolved.name}-solution": stub})
    notebooks.write(submission, fetched)
    nbgrader(learner_dir, "submit", CHAPTER, *learner_options, env=env)

    nbgrader(course_dir, "collect", CHAPTER, env=env)
    submitted = list((course_dir / "submitted").glob(f"*/{CHAPTER}/{CHAPTER}.ipynb"))
    assert len(submitted) == 1
    student = submitted[0].parents[1].name

    graded = subprocess.run(
        [sys.executable, "-m", "selfattn_course.cli", "grade", "submitted/"],
        cwd=course_dir,
        env=tool_env(env),
        capture_output=True,
        text=True,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr
    nbgrader(course_dir, "generate_feedback", CHAPTER, env=env)
    nbgrader(course_dir, "release_feedback", CHAPTER, env=env)
    nbgrader(learner_dir, "fetch_feedback", CHAPTER, *learner_options, env=env)

    returned = list((learner_dir / CHAPTER / "feedback").glob(f"*/{CHAPTER}.html"))
    assert len(returned) == 1, list((learner_dir / CHAPTER).rglob("*"))
    page = returned[0].read_text()
    expected = 10 - unsolved.points
    assert re.search(rf"\(Score: {expected:.1f} / 10\.0\)", page), student
    print(f"\nexchange round trip of {CHAPTER}: {time.perf_counter() - started:.0f} s")
