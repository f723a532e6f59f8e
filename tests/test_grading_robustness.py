"""Grading survives broken and malicious submissions (grading/autograde/execute.py, the intake).

The bank (tests/bad_submissions/) holds one submission per way of breaking things: at run time
(an infinite loop that ignores SIGINT, os._exit, a segfault, a memory bomb, a fork bomb, a huge
output, reading the solutions or the gradebook, writing the gradebook, opening a socket) and in
the files (bad JSON, a wrong name, no notebook, an extra notebook, a link to the solutions).
One temporary course, with the repository's nbgrader_config.py and small caps, grades them all in
one ``selfattn-course grade`` call (one local worker, the course's config), next to a correct
submission per chapter; plain ``nbgrader autograde`` grades one planted straight into
``submitted/``; then the feedback is written. A run-time breakage must cost its own
task only (score 0, the reason in the feedback); a bad file an explicit 0 with the reason in the
table and the CSV; the files handed in must come out byte for byte as they went in.

The bank runs on a fixed sample of chapters (each breakage on one of them, in turn); with
SELFATTN_GRADING_ALL=1 (``make test-grading-all``) every breakage runs on every chapter.
A few tests run :class:`GradingExecute` directly on tiny notebooks without torch: the notebook's
time limit, the replay after a restart, the shadowing of the package.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import importlib.util
import io
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from helpers import filled_release, released_course
from traitlets.config import Config

from selfattn_course.cli import main
from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde import execute, sandbox
from selfattn_course.grading.autograde.execute import CELL_NOT_RUN, CELL_STOPPED, GradingExecute
from selfattn_course.grading.autograde.nbgrader_command import (
    UNSAFE_ENVIRONMENT_VARIABLE,
    NbgraderCommand,
    run_nbgrader,
)
from selfattn_course.grading.classroom import course, intake, report, units

REPO = Path(__file__).resolve().parents[1]
BANK_DIR = Path(__file__).resolve().parent / "bad_submissions"

AVAILABLE, WHY_NOT = sandbox.sandbox_available()
if not AVAILABLE and os.environ.get("SELFATTN_REQUIRE_SANDBOX") == "1":
    raise sandbox.SandboxUnavailable(f"SELFATTN_REQUIRE_SANDBOX=1 but {WHY_NOT}")
needs_sandbox = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY_NOT}")

GRADE_ALL = os.environ.get("SELFATTN_GRADING_ALL") == "1"
ALL_CHAPTERS = course.chapters(REPO)
SAMPLE = [chapter for chapter in ("ch01", "ch02") if chapter in ALL_CHAPTERS]
CHAPTERS = ALL_CHAPTERS if GRADE_ALL else SAMPLE

# Small caps, so that the bank runs fast: what each breakage costs is bounded by these.
CELL_TIMEOUT = 10
NOTEBOOK_WALL = 90
CELL_OUTPUT = 1024**2
CAPS = f"""
# --- small caps for tests/test_grading_robustness.py ---
c.Execute.timeout = {CELL_TIMEOUT}
c.GradingExecute.notebook_wall_seconds = {NOTEBOOK_WALL}
c.GradingExecute.max_cell_output_bytes = {CELL_OUTPUT}
c.SandboxedKernelManager.max_processes = 64
"""


def load(name: str) -> dict:
    spec = importlib.util.spec_from_file_location(
        f"bad_submissions_{name}", BANK_DIR / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNTIME = load("runtime").RUNTIME
FILES = load("files").FILES


def spread(names: list[str]) -> list[tuple[str, str]]:
    """``(name, chapter)``: every name on every chapter, or each name on one sample chapter."""
    if GRADE_ALL:
        return [(name, chapter) for name in names for chapter in CHAPTERS]
    return [(name, CHAPTERS[i % len(CHAPTERS)]) for i, name in enumerate(names)]


RUNTIME_CASES = spread(list(RUNTIME))
FILE_CASES = spread(list(FILES))


def student(name: str, chapter: str) -> str:
    return f"{name.replace('_', '-')}-{chapter}"


def tasks_of(chapter: str) -> list[str]:
    return [task.name for task in notebooks.tasks_of(solution(chapter))]


def solution(chapter: str):
    return notebooks.read(REPO / "solutions" / chapter / f"{chapter}.ipynb")


def broken_task(chapter: str) -> str:
    """The task each run-time breakage is put into: the second, so that a restart has solution
    cells to replay and tasks after it to grade."""
    return tasks_of(chapter)[1]


def runtime_submission(chapter: str, course_dir: Path, code: str):
    """The release with every solution filled in, ``code`` first in the broken task's."""
    release = notebooks.read(course_dir / "exercises" / chapter / f"{chapter}.ipynb")
    broken = f"{broken_task(chapter)}-solution"
    return filled_release(solution(chapter), release, prepend={broken: f"{code}\n"})


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as their target) -> sha256 of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "link to " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass
class Graded:
    course_dir: Path
    incoming: Path
    exit_code: int
    out: str
    err: str
    csv_rows: list[list[str]]
    scores: dict[tuple[str, str], dict[str, tuple[float, float]]]
    fingerprints_before: dict[str, dict[str, str]]
    fingerprints_after: dict[str, dict[str, str]]
    listener_accepted: bool
    seconds: float


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    if not AVAILABLE:
        pytest.skip(f"no sandbox here: {WHY_NOT}")
    root = tmp_path_factory.mktemp("robust")
    course_dir = released_course(REPO, root / "course", CHAPTERS, extra_config=CAPS)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    incoming = root / "incoming"
    for chapter in CHAPTERS:
        notebooks.write(
            solution(chapter), incoming / f"solution-{chapter}" / chapter / f"{chapter}.ipynb"
        )
    for name, chapter in RUNTIME_CASES:
        code = RUNTIME[name]["code"].format(
            solution=str(course_dir / "solutions" / chapter / f"{chapter}.ipynb"),
            gradebook=str(course_dir / "gradebook.db"),
            course=str(course_dir),
            port=listener.getsockname()[1],
            chapter=chapter,
            learners=[f"solution-{chapter}"]
            + [student(other, at) for other, at in RUNTIME_CASES if at == chapter],
        )
        nb = runtime_submission(chapter, course_dir, code)
        notebooks.write(nb, incoming / student(name, chapter) / chapter / f"{chapter}.ipynb")
    for name, chapter in FILE_CASES:
        text = nbformat.writes(solution(chapter))
        FILES[name]["write"](incoming / student(name, chapter) / chapter, chapter, text, course_dir)
    notebooks.write(solution(CHAPTERS[0]), incoming / "lost" / "ch99" / "ch99.ipynb")
    # Straight into the course's submitted/, for plain nbgrader: a link beside the notebook.
    planted = course_dir / "submitted" / "planted-link" / CHAPTERS[0]
    FILES["link_to_solutions"]["write"](
        planted, CHAPTERS[0], nbformat.writes(solution(CHAPTERS[0])), course_dir
    )

    watched = {"incoming": incoming, "planted": planted}
    before = {key: fingerprint(folder) for key, folder in watched.items()}
    out, err = io.StringIO(), io.StringIO()
    csv_path = root / "grades.csv"
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exit_code = main(
            ["grade", str(incoming), "--course-dir", str(course_dir), "--csv", str(csv_path)]
        )
        planted_run = run_nbgrader(
            course_dir, ["autograde", CHAPTERS[0], "--student", "planted-link"]
        )
        assert planted_run.ok, planted_run.log[-3000:]
        assert main(["feedback", "--course-dir", str(course_dir)]) == 0
    seconds = time.perf_counter() - started
    after = {key: fingerprint(folder) for key, folder in watched.items()}
    try:
        listener.accept()
        accepted = True
    except TimeoutError:
        accepted = False
    finally:
        listener.close()

    scores: dict = {}
    for score in report.gradebook_scores(course_dir):
        scores.setdefault((score.student, score.chapter), {})[score.task] = (
            score.score,
            score.max_score,
        )
    rows = [line.split(",", 5) for line in csv_path.read_text().splitlines()]
    return Graded(
        course_dir,
        incoming,
        exit_code,
        out.getvalue(),
        err.getvalue(),
        rows,
        scores,
        before,
        after,
        accepted,
        seconds,
    )


def full_marks(chapter: str) -> dict[str, float]:
    return {task.name: task.points for task in notebooks.tasks_of(solution(chapter))}


def autograded_cells(graded: Graded, who: str, chapter: str) -> dict[str, nbformat.NotebookNode]:
    path = graded.course_dir / "autograded" / who / chapter / f"{chapter}.ipynb"
    return {
        notebooks.nbgrader_meta(cell).get("grade_id"): cell for cell in notebooks.read(path).cells
    }


def shows(name: str, text: str) -> bool:
    """Whether ``text`` holds the reason the bank's entry ``name`` expects (or one of them)."""
    expected = RUNTIME[name]["shows"]
    return any(
        option in text for option in ((expected,) if isinstance(expected, str) else expected)
    )


def first_error(cell) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return ""


# --- run-time breakage: only its own task pays ----------------------------------------------------


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_correct_submission_in_the_same_batch_gets_full_marks(graded, chapter):
    got = {
        task: score for task, (score, _) in graded.scores[(f"solution-{chapter}", chapter)].items()
    }
    assert got == full_marks(chapter)


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("name, chapter", RUNTIME_CASES)
def test_a_breakage_at_run_time_scores_0_on_its_task_and_the_later_tasks_as_usual(
    graded, name, chapter
):
    got = {
        task: score for task, (score, _) in graded.scores[(student(name, chapter), chapter)].items()
    }
    expected = full_marks(chapter)
    tasks, broken = tasks_of(chapter), broken_task(chapter)
    costs = RUNTIME[name]["costs"]
    lost = {"rest": tasks[tasks.index(broken) :], "task": [broken], "nothing": []}[costs]
    expected.update(dict.fromkeys(lost, 0.0))
    assert got == expected


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("name, chapter", RUNTIME_CASES)
def test_the_autograded_notebook_says_why_the_task_failed(graded, name, chapter):
    cells = autograded_cells(graded, student(name, chapter), chapter)
    task = broken_task(chapter)
    if RUNTIME[name]["costs"] == "nothing":  # what the solution cell shows; its test passes
        assert shows(name, stdout_of(cells[f"{task}-solution"]))
        assert not first_error(cells[task])
        return
    assert shows(name, first_error(cells[f"{task}-solution"]))
    assert first_error(cells[task]), "the broken task's test cell shows an error"


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("name, chapter", RUNTIME_CASES)
def test_the_feedback_shows_the_reason(graded, name, chapter):
    page = graded.course_dir / "feedback" / student(name, chapter) / chapter / f"{chapter}.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))  # as a browser shows it
    assert shows(name, text)


@needs_sandbox
@pytest.mark.slow
def test_after_a_dead_kernel_the_broken_tasks_test_is_not_run_and_the_next_one_is(graded):
    """The test cell after a solution that killed the kernel is not run (it says why); after
    the restart and the replay of the setup and earlier solutions, the next task's test runs
    (its full marks are checked above) and shows no error."""
    name, chapter = next(case for case in RUNTIME_CASES if case[0] == "os_exit")
    cells = autograded_cells(graded, student(name, chapter), chapter)
    assert f"{CELL_NOT_RUN}: not run: the solution cell before this test stopped" in first_error(
        cells[broken_task(chapter)]
    )
    assert not first_error(cells[tasks_of(chapter)[2]])


# --- the sandbox, through nbgrader autograde ------------------------------------------------------


@needs_sandbox
@pytest.mark.slow
def test_no_connection_reached_the_graders_machine(graded):
    assert graded.listener_accepted is False


@needs_sandbox
@pytest.mark.slow
def test_the_gradebook_the_kernel_tried_to_overwrite_is_intact(graded):
    assert b"all full marks" not in (graded.course_dir / "gradebook.db").read_bytes()
    assert graded.scores  # and nbgrader could still read it


# --- bad files: an explicit 0 with the reason -----------------------------------------------------


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("name, chapter", FILE_CASES)
def test_a_bad_file_scores_0_on_every_task_or_is_graded_with_a_remark(graded, name, chapter):
    who = student(name, chapter)
    got = {task: score for task, (score, _) in graded.scores[(who, chapter)].items()}
    expected = (
        full_marks(chapter) if FILES[name]["graded"] else dict.fromkeys(full_marks(chapter), 0.0)
    )
    assert got == expected


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("name, chapter", FILE_CASES)
def test_the_table_and_the_csv_give_the_reason(graded, name, chapter):
    who = student(name, chapter)
    reason = FILES[name]["reason"]
    assert any(
        line.startswith(f"  {who} {chapter}: ") and reason in line
        for line in graded.out.splitlines()
    )
    rows = [row for row in graded.csv_rows if row[:2] == [who, chapter]]
    assert [row[2] for row in rows] == tasks_of(chapter)
    assert all(reason in row[5] for row in rows)
    if not FILES[name]["graded"]:
        assert all(row[3] == "0" for row in rows)
        assert f"could not grade {who}/{chapter}: " in graded.err


@needs_sandbox
@pytest.mark.slow
def test_a_folder_for_no_chapter_of_the_course_gets_a_row_of_0_with_the_reason(graded):
    assert ["lost", "ch99", "", "0", "0"] == graded.csv_rows[
        [row[:2] for row in graded.csv_rows].index(["lost", "ch99"])
    ][:5]
    assert "lost ch99: ch99 is not a chapter of this course" in graded.out


@needs_sandbox
@pytest.mark.slow
def test_grade_exits_1_when_a_submission_could_not_be_graded(graded):
    assert graded.exit_code == 1, graded.err
    # only the intake's rejections: nbgrader graded every submission it was given, at once
    assert "0 failed (0 points), 0 retried" in graded.out, graded.err
    assert "the end of nbgrader's log" not in graded.err


@needs_sandbox
@pytest.mark.slow
def test_plain_nbgrader_does_not_run_a_submission_that_holds_a_link(graded):
    """Put straight into submitted/ (no intake) and graded by plain nbgrader autograde, the
    link is refused by GradingExecute."""
    chapter = CHAPTERS[0]
    got = graded.scores[("planted-link", chapter)]
    assert all(score == 0 for score, _ in got.values())
    cells = autograded_cells(graded, "planted-link", chapter)
    assert "holds a symbolic link (data.txt)" in first_error(cells[tasks_of(chapter)[0]])
    assert f"{CELL_NOT_RUN}: not run: the submission holds" in first_error(cells["setup"])


@needs_sandbox
@pytest.mark.slow
def test_no_grade_is_null(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded.course_dir / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    for grade_row in notebook.grades:
                        assert grade_row.score is not None, (submission.student.id, grade_row.name)


@needs_sandbox
@pytest.mark.slow
@pytest.mark.parametrize("folder", ["incoming", "planted"])
def test_submitted_files_are_byte_identical_after_grading_and_feedback(graded, folder):
    assert graded.fingerprints_after[folder] == graded.fingerprints_before[folder]
    assert graded.fingerprints_before[folder]


@needs_sandbox
@pytest.mark.slow
def test_the_whole_bank_grades_in_bounded_time(graded):
    """Each breakage costs at most its own caps: about one cell timeout and a restart."""
    notebooks_run = len(RUNTIME_CASES) + len(CHAPTERS) + 2
    print(f"graded {notebooks_run} notebooks and their feedback in {graded.seconds:.0f} s")
    assert graded.seconds < notebooks_run * 30


# --- GradingExecute on its own: tiny notebooks without torch --------------------------------------


def tiny(*sources: str, graded_at: tuple[int, ...] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for index, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade": index in graded_at, "grade_id": f"cell{index}"}
        nb.cells.append(cell)
    return nb


def run_tiny(nb, folder: Path, **limits) -> nbformat.NotebookNode:
    config = Config()
    config.Execute.timeout = limits.pop("timeout", 10)
    for key, value in limits.items():
        setattr(config.GradingExecute, key, value)
    config.SandboxedKernelManager.max_processes = 64
    nb, _ = GradingExecute(config=config).preprocess(nb, {"metadata": {"path": str(folder)}})
    return nb


def stdout_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


@needs_sandbox
def test_the_notebook_time_limit_stops_the_cells_left_each_with_the_reason(tmp_path):
    nb = tiny(*["import time; time.sleep(1.5)"] * 6, graded_at=(5,))
    started = time.monotonic()
    nb = run_tiny(nb, tmp_path, notebook_wall_seconds=4)
    assert time.monotonic() - started < 15
    errors = [first_error(cell) for cell in nb.cells]
    assert errors[0] == ""
    assert f"{CELL_NOT_RUN}: not run: the notebook used up its time limit of 4 s" in errors[-1]


@needs_sandbox
def test_after_a_dead_kernel_the_clean_cells_before_are_replayed_and_the_task_pays(tmp_path):
    nb = tiny(
        "state = ['setup']",
        "state.append('first solution')",
        "oops = 1 / 0",  # an ordinary error: not replayed
        "import os; os._exit(3)",
        "print('never')",  # the test of the task whose solution killed the kernel
        "print(state)",
        graded_at=(4, 5),
    )
    nb = run_tiny(nb, tmp_path)
    assert first_error(nb.cells[3]) == (
        f"{CELL_STOPPED}: the kernel died while running this cell: exited with status 3"
    )
    assert first_error(nb.cells[4]).startswith(
        f"{CELL_NOT_RUN}: not run: the solution cell before this test stopped: the kernel died"
    )
    assert stdout_of(nb.cells[5]) == "['setup', 'first solution']\n"


@needs_sandbox
def test_output_past_the_cap_is_cut_with_a_marker_and_the_cell_runs_on(tmp_path):
    flood = "print('y' * 5000)\nprint('dropped')\nran_on = True"
    nb = run_tiny(tiny(flood, "print(ran_on)"), tmp_path, max_cell_output_bytes=1000)
    printed = stdout_of(nb.cells[0])
    assert printed.startswith("y" * 1000 + "\n... output cut at 1000 bytes: this cell printed more")
    assert "dropped" not in printed
    assert not first_error(nb.cells[0])
    assert stdout_of(nb.cells[1]) == "True\n"


@needs_sandbox
def test_a_display_update_cannot_carry_output_past_the_cap(tmp_path):
    flood = (
        "from IPython.display import display, update_display\n"
        "display('small', display_id='d')\n"
        "display('tiny', display_id='e')\n"
        "update_display('still small', display_id='e')\n"
        "update_display('y' * 50_000, display_id='d')\n"
    )
    nb = run_tiny(tiny(flood), tmp_path, max_cell_output_bytes=1000)
    kept = json.dumps(nb.cells[0].outputs)
    assert len(kept) < 2000 and "yyyy" not in kept
    assert "still small" in kept  # updates under the cap still apply
    assert not first_error(nb.cells[0])


@needs_sandbox
def test_an_error_after_the_output_cap_is_kept_so_a_failing_test_still_fails(tmp_path):
    flood = "print('y' * 5000)\nraise AssertionError('wrong' * 10_000)"
    nb = run_tiny(tiny(flood), tmp_path, max_cell_output_bytes=1000)
    error = first_error(nb.cells[0])
    assert error.startswith("AssertionError: wrongwrong")
    assert len(error) < 3000  # the error's text is bounded too


@needs_sandbox
def test_a_module_in_the_students_folder_cannot_stand_in_for_the_package(tmp_path):
    (tmp_path / "selfattn_course.py").write_text("raise SystemExit('shadowed')\n")
    nb = run_tiny(
        tiny("import selfattn_course, sys; print(selfattn_course.__file__, sys.flags.safe_path)"),
        tmp_path,
    )
    printed = stdout_of(nb.cells[0])
    assert printed.endswith("__init__.py True\n"), printed


def test_the_kernel_is_started_as_python_minus_p():
    manager = execute.GradingKernelManager(kernel_name="python3")
    command = manager.format_kernel_cmd()
    assert command[1] == "-P" and os.path.basename(command[0]).startswith("python")


# --- where no sandbox can be made -----------------------------------------------------------------


@pytest.fixture
def no_sandbox(monkeypatch):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, "bwrap is not installed"))


def test_autograde_stops_before_grading_when_no_sandbox_can_be_made(no_sandbox, capsys):
    with pytest.raises(SystemExit) as stopped:
        execute.require_sandbox_before_grading(assignment="ch01", student="*", notebooks=[])
    assert stopped.value.code == 2
    assert "cannot sandbox student code: bwrap is not installed" in capsys.readouterr().err


def test_unsafe_no_sandbox_lets_autograde_go_on(no_sandbox, monkeypatch):
    config = Config()
    config.SandboxedKernelManager.unsafe_no_sandbox = True
    monkeypatch.setattr(execute, "_running_config", lambda: config)
    execute.require_sandbox_before_grading(assignment="ch01", student="*", notebooks=[])


def test_the_config_reads_the_unsafe_switch_from_the_environment(monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv(UNSAFE_ENVIRONMENT_VARIABLE, "1")
    config = PyFileConfigLoader(course.CONFIG_FILE, path=str(REPO)).load_config()
    assert config.SandboxedKernelManager.unsafe_no_sandbox is True
    assert (
        "selfattn_course.grading.autograde.execute.GradingExecute"
        in config.Autograde.autograde_preprocessors
    )
    assert "nbgrader.preprocessors.Execute" not in config.Autograde.autograde_preprocessors
    assert config.Autograde.pre_convert_hook.endswith("require_sandbox_before_grading")


def test_grade_refuses_to_start_without_a_sandbox_and_says_how_to_go_on(
    no_sandbox, tmp_path, capsys
):
    course_dir = tmp_path / "course"
    (course_dir / "solutions" / "ch01").mkdir(parents=True)
    shutil.copy(REPO / course.CONFIG_FILE, course_dir)
    shutil.copy(REPO / "solutions" / "ch01" / "ch01.ipynb", course_dir / "solutions" / "ch01")
    notebooks.write(solution("ch01"), tmp_path / "incoming" / "alice" / "ch01" / "ch01.ipynb")
    assert main(["grade", str(tmp_path / "incoming"), "--course-dir", str(course_dir)]) == 2
    assert "cannot sandbox student code: bwrap is not installed" in capsys.readouterr().err
    assert not (course_dir / "gradebook.db").exists()


def test_grade_with_unsafe_no_sandbox_tells_nbgrader_so_and_only_nbgrader(monkeypatch):
    """The switch travels in the environment of the nbgrader process, passed to it explicitly:
    this process's own environment never changes (the pools grade from threads)."""
    seen = []

    def run(course_dir, args, *, env=None, on_line=None, timeout=None):
        seen.append(dict(env or {}))
        return NbgraderCommand(list(args), 1, "")

    monkeypatch.setattr(units, "run_nbgrader", run)
    monkeypatch.setattr(units, "_read_scratch_grades", lambda root, results: None)
    monkeypatch.delenv(UNSAFE_ENVIRONMENT_VARIABLE, raising=False)
    files = {"ch01.ipynb": nbformat.writes(solution("ch01")).encode()}
    unit = units.Unit("alice", "ch01", files, units.files_hash(files))
    gradebook = b""  # nbgrader is a stand-in: nothing reads it
    for unsafe, expected in ((True, "1"), (False, "0")):
        context = units.GradingContext("c = get_config()\n", gradebook, unsafe)
        (result,) = units.grade_units([unit], context)
        assert not result.ok
        assert seen.pop()[UNSAFE_ENVIRONMENT_VARIABLE] == expected
        assert UNSAFE_ENVIRONMENT_VARIABLE not in os.environ


# --- the intake on its own ------------------------------------------------------------------------


def test_the_intake_sorts_a_folder_without_writing_to_it(tmp_path):
    text = nbformat.writes(solution("ch01"))
    for name, entry in FILES.items():
        entry["write"](tmp_path / name / "ch01", "ch01", text, REPO)
    before = fingerprint(tmp_path)
    found = intake.inspect(tmp_path, ["ch01"])
    assert fingerprint(tmp_path) == before
    assert [s.student for s in found.accepted] == ["extra_notebook"]
    reasons = {p.student: p.reason for p in found.problems}
    for name, entry in FILES.items():
        assert entry["reason"] in reasons[name]
    assert {p.student for p in found.rejected} == {n for n, e in FILES.items() if not e["graded"]}


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[]", "it is JSON but not a notebook (no list of cells)"),
        ('{"nbformat": 3, "cells": []}', "it is nbformat 3; Jupyter's is 4"),
        ('{"cells": [}', "bad JSON at line 1 column 12"),
    ],
)
def test_a_file_that_is_not_a_notebook_is_named_as_such(tmp_path, text, reason):
    (tmp_path / "ch01.ipynb").write_text(text)
    assert reason in intake.notebook_error(tmp_path / "ch01.ipynb")
