"""The round trip a class goes through nbgrader's exchange, on a scratch copy of the course.

release_assignment -> a learner fetches, fills in and submits -> collect -> ``selfattn-course
grade`` -> generate_feedback -> release_feedback -> the learner fetches the feedback. The
instructor runs nbgrader in the course folder with the course's ``nbgrader_config.py`` (whose
default exchange is ``exchange/`` in the course folder); the learner runs it in a folder of their
own, told only the exchange and the course id, as the README says. Both are this OS user.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


@pytest.fixture(scope="module")
def mathjax_file() -> Path:
    """The course's MathJax for feedback, vendored (``make vendor``, as tests/test_book.py does)
    when missing."""
    from test_book import VENDOR_TARGET

    path = REPO / "_extra" / "mathjax" / "tex-svg-full.js"
    if not path.is_file():
        done = subprocess.run(["make", VENDOR_TARGET], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"`make {VENDOR_TARGET}` failed:\n{done.stdout}{done.stderr}"
    return path


@dataclass
class Returned:
    """The feedback a learner fetched: its page and what it should say."""

    page: Path
    score: float
    tasks: list[notebooks.NotebookTask]
    seconds: float


@pytest.fixture(scope="module")
def returned_feedback(tmp_path_factory, mathjax_file) -> Returned:
    """The whole loop for one learner, who solves every task of ch01 but the first."""
    started = time.perf_counter()
    tmp_path = tmp_path_factory.mktemp("exchange")
    # the scratch course has no _extra/: the config takes the package's repository's MathJax
    course_dir = released_course(REPO, tmp_path / "course", [CHAPTER])
    learner_dir = tmp_path / "learner"
    learner_dir.mkdir()
    # nbgrader submit keeps a cache under JUPYTER_DATA_DIR: a scratch one, not the user's
    env = {"JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"), "SELFATTN_EXCHANGE": ""}
    learner_options = [f"--Exchange.root={course_dir / 'exchange'}", "--course=selfattn"]

    nbgrader(course_dir, "release_assignment", CHAPTER, env=env)
    nbgrader(learner_dir, "fetch_assignment", CHAPTER, *learner_options, env=env)
    fetched = learner_dir / CHAPTER / f"{CHAPTER}.ipynb"
    assert fetched.is_file()

    release = notebooks.read(fetched)
    solution = notebooks.read(course_dir / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    tasks = notebooks.tasks_of(solution)
    unsolved = f"{tasks[0].name}-solution"
    stub = next(
        c.source for c in release.cells if notebooks.nbgrader_meta(c).get("grade_id") == unsolved
    )
    notebooks.write(filled_release(solution, release, replace={unsolved: stub}), fetched)
    nbgrader(learner_dir, "submit", CHAPTER, *learner_options, env=env)

    nbgrader(course_dir, "collect", CHAPTER, env=env)
    assert len(list((course_dir / "submitted").glob(f"*/{CHAPTER}/{CHAPTER}.ipynb"))) == 1
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

    pages = list((learner_dir / CHAPTER / "feedback").glob(f"*/{CHAPTER}.html"))
    assert len(pages) == 1, list((learner_dir / CHAPTER).rglob("*"))
    seconds = time.perf_counter() - started
    print(f"\nexchange round trip of {CHAPTER}: {seconds:.0f} s")
    return Returned(pages[0], 10 - tasks[0].points, tasks, seconds)


@pytest.mark.slow
def test_the_learner_fetches_feedback_with_their_score_and_each_task_named(returned_feedback):
    page = returned_feedback.page.read_text(encoding="utf-8")
    assert re.search(rf"\(Score: {returned_feedback.score:.1f} / 10\.0\)", page)
    for task in returned_feedback.tasks:
        summary = rf"Task <code>{task.name}</code></a> \(Score: [\d.]+ / {task.points}"
        assert re.search(summary, page), f"the summary does not name {task.name}"


@pytest.mark.slow
def test_the_feedback_page_carries_its_mathjax(returned_feedback):
    """release_feedback hands over the HTML file alone: MathJax must be inside it."""
    page = returned_feedback.page.read_text(encoding="utf-8")
    assert "MathJax" in page and "<script src" not in page
    assert "mathjax/2.7.7" not in page  # nbgrader's own template's


# --- the returned feedback in a browser, offline ------------------------------------------------

# What the learner sees: the page's text, MathJax's output, and the heading with the score.
FEEDBACK_VIEW = """() => ({
    shown: document.body.innerText,
    heading: document.querySelector(".panel-heading h4").textContent,
    typeset: document.querySelectorAll("mjx-container").length,
    drawn: document.querySelectorAll("mjx-container svg").length,
})"""


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    """Headless Chromium, the system's, as in tests/test_book.py (skips where it is missing,
    fails instead with SELFATTN_REQUIRE_BROWSER=1)."""
    from test_book import CHROMIUM_ARGS, browser_unavailable

    why_not = browser_unavailable()
    if why_not is not None:
        if os.environ.get("SELFATTN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SELFATTN_REQUIRE_BROWSER=1 but {why_not}")
        pytest.skip(why_not)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.slow
def test_the_returned_feedback_renders_offline_with_no_hidden_test(returned_feedback, chromium):
    from test_book import MATH_STATE, SETTLE, is_local

    blocked, errors = [], []

    def route(request_route):
        if is_local(request_route.request.url):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    context = chromium.new_context()
    try:
        context.route("**/*", route)
        tab = context.new_page()
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda error: errors.append(f"uncaught {error}"))
        tab.goto(returned_feedback.page.as_uri(), wait_until="load")
        tab.evaluate(SETTLE)
        math = tab.evaluate(MATH_STATE)  # text outside MathJax's output and code, error boxes
        view = tab.evaluate(FEEDBACK_VIEW)
    finally:
        context.close()

    assert blocked == [] and errors == [], (blocked, errors)
    assert f"(Score: {returned_feedback.score:.1f} / 10.0)" in view["heading"]
    # every formula typeset, as SVG (no web font to fetch), none left as TeX
    assert view["typeset"] >= 5 and view["drawn"] == view["typeset"], view
    assert math["errors"] == 0
    for tex in ("$", "\\operatorname", "\\dots"):
        assert tex not in math["text"], f"raw TeX {tex!r} on the page"
    for hidden in ("BEGIN HIDDEN TESTS", "hidden=True"):
        assert hidden not in view["shown"], f"hidden test source on the page: {hidden!r}"
