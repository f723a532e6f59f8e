"""The whole nbgrader loop in a real browser, offline: formgrader and the Assignments panel.

A Jupyter server (``jupyter lab`` with nbgrader's server extensions, enabled by its install) runs
on 127.0.0.1 with a token, on a scratch copy of the course holding ch01, started from the course
folder as an instructor would (so formgrader loads the course's ``nbgrader_config.py``, its
course-local exchange and sandboxed, trusted autograding), with the folder above it as the
server's root. Headless Chromium (the system's, as in tests/test_book.py) has every request off
this machine blocked, and drives:

- formgrader: Generate and Release ch01;
- the Assignments panel, as two learners: Fetch, then Submit (one learner hands in the solution,
  the other leaves the first task's stub);
- formgrader: Collect, Autograde each submission from the Manage Submissions page, the scores
  shown, Generate and Release Feedback;
- the Assignments panel: Fetch Feedback; the feedback pages, opened from the learners' folders:
  score, typeset math, no console error, no hidden test source;
- formgrader's manual grading page: its formulas typeset by the course's MathJax, with no
  console error.

The learners are this OS user. The Assignments panel reads ``nbgrader_config.py`` in the server's
root, which only says where the learner's folder is (``Exchange.assignment_dir``), then the one in
that folder, which gives the learner's ``CourseDirectory.student_id``, the course id and the
exchange: the test switches learners by rewriting the first.

The server's log must not say "Formgrader config is not serializable" (nbgrader_config.py says
why it did). Where bubblewrap is missing, autograding cannot run and the test skips; where
Chromium or Playwright is missing it skips too (fails instead with SELFATTN_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import filled_release, released_course
from test_book import MATH_STATE, SETTLE, is_local
from test_exchange import FEEDBACK_VIEW, chromium, mathjax_file  # noqa: F401 - fixtures

from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde.nbgrader_command import tool_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "ch01"
COURSE_ID = "selfattn"
LEARNERS = ("good", "wrong")  # the solution; the solution but the first task left as released
ACTION_MS = int(
    os.environ.get("DBG_MS", 120_000)
)  # how long Playwright waits for one formgrader or panel action (autograde)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running Jupyter server: its address, token and folders."""

    url: str
    token: str
    root: Path
    course: Path
    log: Path

    def learner_dir(self, learner: str) -> Path:
        return self.root / learner

    def act_as(self, learner: str) -> None:
        """The Assignments panel now acts for ``learner`` (it reads this on every request)."""
        (self.root / "nbgrader_config.py").write_text(
            f"c = get_config()  # noqa: F821\n"
            f"c.Exchange.assignment_dir = {str(self.learner_dir(learner))!r}\n"
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory, mathjax_file) -> Iterator[Server]:  # noqa: F811
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is missing (`make sandbox-deps`): autograding cannot run")
    tmp = tmp_path_factory.mktemp("formgrader")
    root = tmp / "root"
    course = released_course(REPO, root / "course", [CHAPTER])
    for learner in LEARNERS:
        folder = root / learner
        folder.mkdir()
        (folder / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.CourseDirectory.student_id = {learner!r}\n"
            f"c.Exchange.root = {str(course / 'exchange')!r}\n"
            # as a learner of their own would: fetch_feedback returns the feedback of every
            # submission in the cache, whoever made it
            f"c.Exchange.cache = {str(folder / '.nbgrader_cache')!r}\n"
        )
    port, token = free_port(), secrets.token_hex(16)
    jupyter = tmp / "jupyter"  # no user's config, data, settings or workspaces
    env = tool_env(
        {
            "SELFATTN_EXCHANGE": "",
            "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
            "JUPYTER_DATA_DIR": str(jupyter / "data"),
            "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(jupyter / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "workspaces"),
        }
    )
    log = tmp / "server.log"
    command = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",  # no PyPI listing
        *(["--allow-root"] if os.geteuid() == 0 else []),  # root in containers and CI
    ]
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            command, cwd=course, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Jupyter server did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.2)
        yield Server(url, token, root, course, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Tab:
    """A browser tab with every non-local request blocked, and what it logged."""

    page: object
    blocked: list[str]
    errors: list[str]


def open_tab(context) -> Tab:
    blocked, errors = [], []

    def route(request_route):
        if is_local(request_route.request.url):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(ACTION_MS)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught {error}"))
    return Tab(page, blocked, errors)


def formgrader_action(page, cell: str) -> str:
    """Click the button of ch01's row in ``cell`` (a column of a formgrader table), wait for
    its success dialog, close it; the dialog's text (an error dialog fails, showing its log)."""
    page.locator(f"tr:has(td.name[data-order='{CHAPTER}']) td.{cell} a").first.click()
    return close_dialog(page)


def close_dialog(page) -> str:
    dialog = page.locator("#success-modal, #error-modal")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    assert page.locator("#error-modal").count() == 0, text
    dialog.locator("button.close, .modal-footer button").first.click()
    dialog.wait_for(state="detached")
    return text


def panel_button(page, section: str, label: str, done: Path, pattern: str) -> None:
    """Click the ch01 button labelled ``label`` in a list of the Assignments panel, and wait for
    what it makes: a file matching ``pattern`` under ``done``."""
    page.locator(f"#{section} button", has_text=re.compile(rf"^{label}$")).first.click()
    deadline = time.monotonic() + ACTION_MS / 1000
    while not any(done.glob(pattern)):
        assert time.monotonic() < deadline, f"{label}: nothing matches {done / pattern}"
        page.wait_for_timeout(100)  # lets Playwright serve the page's requests meanwhile


def open_assignments_panel(page) -> None:
    page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
    page.locator(".lm-Menu-item", has_text="Assignment List").click()
    page.locator("#released_assignments_list").wait_for()


def refresh_panel(page) -> None:
    page.locator("#refresh_assignments_list").click()
    page.locator("#released_assignments_list_loading").wait_for(state="hidden")
    page.locator("#fetched_assignments_list_loading").wait_for(state="hidden")
    page.locator("#submitted_assignments_list_loading").wait_for(state="hidden")


@dataclass
class Loop:
    """What the loop left: the scores formgrader showed, the fetched feedback pages, the
    manual grading page's state, and the expected scores."""

    shown: dict[str, float]
    expected: dict[str, float]
    feedback: dict[str, Path]
    manual: dict
    manual_tab: Tab
    server_log: str
    seconds: float


@pytest.fixture(scope="module")
def loop(server, chromium) -> Loop:  # noqa: F811
    started = time.perf_counter()
    solution = notebooks.read(server.course / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    tasks = notebooks.tasks_of(solution)
    total = sum(task.points for task in tasks)
    expected = {"good": total, "wrong": total - tasks[0].points}
    context = chromium.new_context()
    try:
        tab = open_tab(context)
        page = tab.page
        formgrader = f"{server.url}/formgrader"
        page.goto(f"{formgrader}/manage_assignments?token={server.token}")
        formgrader_action(page, "assign")  # Generate
        formgrader_action(page, "release")
        page.locator(
            f"tr:has(td.name[data-order='{CHAPTER}']) td.status", has_text="released"
        ).wait_for()

        lab = context.new_page()
        lab.set_default_timeout(ACTION_MS)
        lab.goto(f"{server.url}/lab?token={server.token}")
        open_assignments_panel(lab)
        for index, learner in enumerate(LEARNERS):
            server.act_as(learner)
            if index:
                refresh_panel(lab)
            fetched = server.learner_dir(learner) / CHAPTER / f"{CHAPTER}.ipynb"
            panel_button(lab, "released_assignments_list", "Fetch", fetched.parent, fetched.name)
            release = notebooks.read(fetched)
            keep = {}
            if learner == "wrong":
                unsolved = f"{tasks[0].name}-solution"
                keep = {
                    unsolved: next(
                        cell.source
                        for cell in release.cells
                        if notebooks.nbgrader_meta(cell).get("grade_id") == unsolved
                    )
                }
            notebooks.write(filled_release(solution, release, replace=keep), fetched)
            inbound = server.course / "exchange" / COURSE_ID / "inbound"
            panel_button(lab, "fetched_assignments_list", "Submit", inbound, f"{learner}+*")

        page.goto(f"{formgrader}/manage_assignments")
        formgrader_action(page, "collect")
        page.goto(f"{formgrader}/manage_submissions/{CHAPTER}")
        shown = {}
        for learner in LEARNERS:
            row = page.locator(f"tr:has(td.student-id:has-text('{learner}'))")
            row.locator("td.autograde a").click()
            close_dialog(page)
        page.goto(f"{formgrader}/manage_submissions/{CHAPTER}")
        for learner in LEARNERS:
            score = page.locator(f"tr:has(td.student-id:has-text('{learner}')) td.score")
            score.filter(has_text="/").wait_for()
            shown[learner] = float(score.inner_text().split("/")[0])

        page.goto(f"{formgrader}/manage_assignments")
        formgrader_action(page, "generate-feedback")
        formgrader_action(page, "release-feedback")

        for learner in LEARNERS:
            server.act_as(learner)
            refresh_panel(lab)
            returned = server.learner_dir(learner) / CHAPTER / "feedback"
            panel_button(
                lab, "submitted_assignments_list", "Fetch Feedback", returned, f"*/{CHAPTER}.html"
            )
        feedback = {}
        for learner in LEARNERS:
            pages = list(
                (server.learner_dir(learner) / CHAPTER / "feedback").glob(f"*/{CHAPTER}.html")
            )
            assert len(pages) == 1, pages
            feedback[learner] = pages[0]

        # formgrader's manual grading page of one submission
        page.goto(f"{formgrader}/gradebook/{CHAPTER}/{CHAPTER}")
        link = page.locator("a[href*='/formgrader/submissions/']").first
        page.goto(server.url + link.get_attribute("href"), wait_until="load")
        page.evaluate(SETTLE)
        manual = page.evaluate(MATH_STATE_ANYWHERE)
    finally:
        context.close()
    seconds = time.perf_counter() - started
    print(f"\nformgrader and Assignments panel loop of {CHAPTER}: {seconds:.0f} s")
    return Loop(shown, expected, feedback, manual, tab, server.log.read_text(), seconds)


# Maths on the manual grading page: nbconvert's markdown cells mark no `.math` elements, so count
# MathJax's output, and the TeX left outside it, code and scripts.
MATH_STATE_ANYWHERE = """() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll("pre, code, script, style, textarea, mjx-container")
        .forEach((e) => e.remove());
    return {
        text: body.textContent,
        typeset: document.querySelectorAll("mjx-container").length,
        drawn: document.querySelectorAll("mjx-container svg").length,
        errors: document.querySelectorAll("mjx-merror").length,
    };
}"""


def test_formgrader_shows_the_expected_scores(loop):
    assert loop.shown == loop.expected


def test_the_manual_grading_page_typesets_its_math_offline(loop):
    assert loop.manual_tab.blocked == [], loop.manual_tab.blocked
    assert loop.manual_tab.errors == [], loop.manual_tab.errors
    assert loop.manual["typeset"] >= 5 and loop.manual["drawn"] == loop.manual["typeset"]
    assert loop.manual["errors"] == 0
    for tex in ("$$", "\\operatorname"):
        assert tex not in loop.manual["text"], f"raw TeX {tex!r} on the manual grading page"


def test_formgrader_logs_no_unserializable_config(loop):
    assert "Formgrader config is not serializable" not in loop.server_log


@pytest.mark.parametrize("learner", LEARNERS)
def test_the_fetched_feedback_renders_offline_with_no_hidden_test(loop, chromium, learner):  # noqa: F811
    context = chromium.new_context()
    try:
        tab = open_tab(context)
        tab.page.goto(loop.feedback[learner].as_uri(), wait_until="load")
        tab.page.evaluate(SETTLE)
        math = tab.page.evaluate(MATH_STATE)
        view = tab.page.evaluate(FEEDBACK_VIEW)
    finally:
        context.close()
    assert tab.blocked == [] and tab.errors == [], (tab.blocked, tab.errors)
    assert f"(Score: {loop.expected[learner]:.1f} / 10.0)" in view["heading"], view["heading"]
    assert view["typeset"] >= 5 and view["drawn"] == view["typeset"], view
    assert math["errors"] == 0
    for tex in ("$$", "\\operatorname"):
        assert tex not in math["text"], f"raw TeX {tex!r} on the feedback page"
    for hidden in ("BEGIN HIDDEN TESTS", "hidden=True"):
        assert hidden not in view["shown"], f"hidden test source on the page: {hidden!r}"
