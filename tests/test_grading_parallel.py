"""Grading a class (selfattn_course/grading/classroom/): one pipeline, same grades, any pool.

Fast tests check the pieces (the hash, the choice of N, the batches, nbgrader's log). The slow
ones grade a class of synthetic learners of chapter 1, one of each kind (the solution, each wrong
submission of tests/grading_bank/ch01.py, one that kills its kernel on purpose: 7 today) with
``--workers 2`` (two batches), without ``--workers`` (one local worker: one batch) and
through a 2-process ``distributed.LocalCluster``, and compare the table and the CSV; a rerun, a
changed submission and ``--force`` reuse a copy of the first grading's gradebook. Then fault tests
(a killed grading process, a killed coordinator) and one run through a real ``dask scheduler``
and ``dask worker`` started as separate processes.
Stand-ins for ``grade_units`` check the retry rules quickly: a unit that fails twice, a batch and
then a unit that kill their Dask workers twice.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import bank_submission, filled_release, load_bank, released_course

from selfattn_course.cli import main
from selfattn_course.grading import notebooks
from selfattn_course.grading.autograde import sandbox
from selfattn_course.grading.autograde.nbgrader_command import students_not_graded, tool_env
from selfattn_course.grading.classroom import course, intake, pipeline, pools, report, units
from selfattn_course.grading.classroom.gradebook import UNITS_TABLE

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "ch01"
# Each kind of submission once (the solution, each entry of the chapter's bank, a crash): the
# pools cut the class into other batches (2 workers: 4 + 3 for 7; one worker: all), so a
# learner's grade must not depend on who shares its batch.
LEARNERS = 2 + len(load_bank(CHAPTER))
AVAILABLE, WHY_NOT = sandbox.sandbox_available()
needs_sandbox = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY_NOT}")
CRASH = "import os\nos._exit(3)\n"


def submission(replace: dict[str, str] | None = None, entry: dict | None = None):
    """The release with every solution cell filled in, then ``replace`` or a bank ``entry``."""
    solution = notebooks.read(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    release = notebooks.read(REPO / "exercises" / CHAPTER / f"{CHAPTER}.ipynb")
    if entry is not None:
        return bank_submission(solution, release, entry)
    return filled_release(solution, release, replace=replace)


def first_solution_id() -> str:
    solution = notebooks.read(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    return next(
        notebooks.nbgrader_meta(c)["grade_id"]
        for c in solution.cells
        if notebooks.nbgrader_meta(c).get("solution")
    )


def make_class(folder: Path, learners: int = LEARNERS) -> dict[str, str]:
    """``learners`` submissions of chapter 1 under ``folder``; returns learner -> what it is."""
    bank = load_bank(CHAPTER)
    kinds = ["solution", *bank, "crash"]
    made = {}
    for i in range(learners):
        kind = kinds[i % len(kinds)]
        if kind == "solution":
            nb = submission()
        elif kind == "crash":
            nb = submission({first_solution_id(): CRASH})
        else:
            nb = submission(entry=bank[kind])
        who = f"learner{i:02d}"
        notebooks.write(nb, folder / who / CHAPTER / f"{CHAPTER}.ipynb")
        made[who] = kind
    return made


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """A course with chapter 1 released (copied for each run, so each starts from the same)."""
    if not AVAILABLE:
        pytest.skip(f"no sandbox here: {WHY_NOT}")
    return released_course(REPO, tmp_path_factory.mktemp("released") / "course", [CHAPTER])


def fresh_course(released: Path, where: Path) -> Path:
    shutil.copytree(released, where)
    return where


def grade_cli(course_dir: Path, incoming: Path, *options: str) -> tuple[int, str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    csv_path = course_dir / "grades.csv"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["grade", str(incoming), "--course-dir", str(course_dir), "--csv", str(csv_path)]
            + list(options)
        )
    return code, out.getvalue(), err.getvalue(), csv_path.read_text()


def table_of(out: str) -> str:
    """The score table and the problems printed by ``grade``, without the run's summary."""
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("per-task", "grading with"))
    ).rsplit("\n", 1)[0]


def submissions_in_gradebook(course_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(course_dir / "gradebook.db") as db:
        return sorted(
            db.execute(
                "SELECT student.id, assignment.name FROM submitted_assignment "
                "JOIN student ON student.id = submitted_assignment.student_id "
                "JOIN assignment ON assignment.id = submitted_assignment.assignment_id"
            )
        )


# --- fast: the pieces ----------------------------------------------------------------------------


def test_the_hash_changes_with_any_file_name_or_content():
    base = {"ch01.ipynb": b"{}", "data.txt": b"1"}
    assert units.files_hash(base) == units.files_hash(dict(reversed(base.items())))
    assert units.files_hash(base) != units.files_hash({**base, "data.txt": b"2"})
    assert units.files_hash(base) != units.files_hash({**base, "more.txt": b""})
    assert units.files_hash({"ab": b"c"}) != units.files_hash({"a": b"bc"})


@pytest.mark.parametrize(
    "cores, memory_gib, cap_gib, expected",
    [(16, 128, 2, 16), (16, 16, 2, 8), (2, 1, 2, 1), (64, 512, 4, 64), (8, 23, 2, 8)],
)
def test_the_default_workers_fit_the_cores_and_the_memory(cores, memory_gib, cap_gib, expected):
    got = pools.default_workers(cap_gib * 2**30, cores=cores, memory=memory_gib * 2**30)
    assert got == expected


def test_the_memory_cap_is_read_from_the_course_config():
    assert pools.memory_cap_bytes(REPO) == 2 * 1024**3


@needs_sandbox
def test_a_bad_workers_value_is_refused(tmp_path, capsys):
    (tmp_path / "someone" / CHAPTER).mkdir(parents=True)
    notebooks.write(submission(), tmp_path / "someone" / CHAPTER / f"{CHAPTER}.ipynb")
    assert main(["grade", str(tmp_path), "--course-dir", str(REPO), "--workers", "0"]) == 2
    assert "--workers takes a number >= 1" in capsys.readouterr().err


def test_without_workers_or_a_scheduler_one_local_worker_grades():
    pool, note = pools.pool_for(REPO)
    assert isinstance(pool, pools.LocalPool) and pool.workers == 1 and note == ""
    assert isinstance(pools.pool_for(REPO, "3")[0], pools.LocalPool)
    assert pools.pool_for(REPO, "auto")[1].startswith("grading with ")
    assert isinstance(pools.pool_for(REPO, None, "tcp://host:8786")[0], pools.DaskPool)


# --- the pools' retry rules, with stand-ins for grade_units (no nbgrader, no sandbox) -------------


def _unit(student: str) -> units.Unit:
    files = {f"{CHAPTER}.ipynb": student.encode()}
    return units.Unit(student, CHAPTER, files, units.files_hash(files))


def _fails_for_victim(batch, context):
    """Stand-in for grade_units: the unit of learner "victim" fails every time, the others pass."""
    return [
        units.UnitResult(
            unit.student,
            unit.chapter,
            unit.files_sha256,
            ok=unit.student != "victim",
            reason="it failed on purpose",
        )
        for unit in batch
    ]


def _kills_the_worker_for_victim(batch, context):
    """Stand-in for grade_units: grading learner "victim" kills the process it runs in."""
    if any(unit.student == "victim" for unit in batch):
        os._exit(13)
    return [
        units.UnitResult(unit.student, unit.chapter, unit.files_sha256, ok=True) for unit in batch
    ]


def test_batches_hold_one_chapter_and_give_each_worker_an_equal_share():
    some = [_unit(f"l{i:02d}") for i in range(20)]
    assert [len(b) for b in units.make_batches(some, 2)] == [5, 5, 5, 5]
    assert [len(b) for b in units.make_batches(some[:8], 2)] == [4, 4]
    assert [len(b) for b in units.make_batches(some, 1)] == [7, 7, 6]  # at most MAX_BATCH
    assert [len(b) for b in units.make_batches(some, 16)] == [2] * 10
    assert [len(b) for b in units.make_batches(some, 64)] == [1] * 20
    assert units.make_batches([], 4) == []
    assert [len(b) for b in units.make_batches(some, 2, most=None)] == [20]  # a chapter each
    other = units.Unit("l00", "ch02", {}, units.files_hash({}))
    batches = units.make_batches([*some[:3], other], 1)
    assert [[u.name for u in b] for b in batches] == [
        ["l00/ch01", "l01/ch01", "l02/ch01"],
        ["l00/ch02"],
    ]


def test_the_learners_nbgrader_could_not_grade_are_read_from_its_log():
    log = (
        "[AutogradeApp | ERROR] There was an error processing assignment: /x/submitted/b/ch01\n"
        "[AutogradeApp | ERROR] There was an error processing assignment 'ch01' for student 'b'\n"
        "[AutogradeApp | ERROR] There was an error processing assignment 'ch01' for student 'c_3'\n"
        "[AutogradeApp | INFO] Writing 'a' to the gradebook\n"
    )
    assert students_not_graded(log) == [("b", "ch01"), ("c_3", "ch01")]


def test_a_local_unit_that_fails_twice_is_tried_twice_then_reported_once():
    calls = []
    pool = pools.LocalPool(1, grade=_fails_for_victim)  # one batch: both units
    pool.grade(
        [_unit("victim"), _unit("fine")],
        None,
        lambda result, attempt: calls.append((result.student, result.ok, attempt)),
    )
    assert sorted(calls) == [("fine", True, 1), ("victim", False, 1), ("victim", False, 2)]


@pytest.mark.slow
def test_a_unit_that_kills_its_dask_worker_twice_scores_0_with_the_reason():
    import cloudpickle
    import dask
    from distributed import Client, LocalCluster

    # Workers cannot import this test module: send the stand-in by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    others = [_unit(f"fine{i}") for i in range(7)]
    calls = []
    try:
        # The scheduler settings the README gives: a second death is final, and a worker holds
        # only the unit it grades, so the other unit never sits on the worker that dies.
        with dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 1,
                "distributed.scheduler.worker-saturation": 1.0,
            }
        ):
            with LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster:
                with Client(cluster) as client:
                    pool = pools.DaskPool(client=client, grade=_kills_the_worker_for_victim)
                    # Eight units on two threads: batches of four. The victim's batch kills two
                    # workers, then each of its units is tried alone: the victim kills two more.
                    pool.grade(
                        [_unit("victim"), *others],
                        None,
                        lambda result, attempt: calls.append((result, attempt)),
                    )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    by_student = {result.student: (result, attempt) for result, attempt in calls}
    assert len(calls) == 8 and set(by_student) == {"victim", *(u.student for u in others)}
    assert all(by_student[u.student][0].ok for u in others)
    victim, attempt = by_student["victim"]
    assert not victim.ok and attempt == pools.ATTEMPTS
    assert "killed its worker process twice" in victim.reason


# --- slow: the class, graded three ways ----------------------------------------------------------


@pytest.fixture(scope="module")
def graded_with_2(released, tmp_path_factory):
    root = tmp_path_factory.mktemp("workers2")
    incoming = root / "incoming"
    kinds = make_class(incoming)
    (incoming / "broken" / CHAPTER).mkdir(parents=True)  # intake still rejects bad files
    (incoming / "broken" / CHAPTER / f"{CHAPTER}.ipynb").write_text("{not json")
    course_dir = fresh_course(released, root / "course")
    result = grade_cli(course_dir, incoming, "--workers", "2")
    return course_dir, incoming, kinds, result


@needs_sandbox
@pytest.mark.slow
def test_the_class_is_graded_as_the_bank_says(graded_with_2):
    course_dir, _, kinds, (code, out, err, _) = graded_with_2
    assert code == 1  # the broken file and nothing else
    assert "could not grade broken/ch01" in err
    assert f"{LEARNERS} graded, 0 failed (0 points), 0 retried" in out
    assert set(kinds.values()) == {"solution", "crash", *load_bank(CHAPTER)}  # every kind
    bank = load_bank(CHAPTER)
    full = {t.name: t.points for t in notebooks.tasks_of(submission())}
    scores: dict = {}
    for score in report.gradebook_scores(course_dir):
        scores.setdefault(score.student, {})[score.task] = score.score
    assert scores["broken"] == {task: 0 for task in full}
    for who, kind in kinds.items():
        if kind == "solution":
            assert scores[who] == full, who
        elif kind == "crash":  # its kernel died on the first task: 0 there, the rest as usual
            lost = [task for task in full if scores[who][task] < full[task]]
            assert lost == [next(iter(full))], (who, scores[who])
        else:
            lost = {task for task in full if scores[who][task] < full[task]}
            assert lost == set(bank[kind]["loses"]), (who, kind, scores[who])
    assert submissions_in_gradebook(course_dir) == sorted(
        [(who, CHAPTER) for who in kinds] + [("broken", CHAPTER)]
    )


@needs_sandbox
@pytest.mark.slow
def test_a_kernel_crash_scores_0_with_the_reason_in_the_autograded_notebook(graded_with_2):
    course_dir, _, kinds, _ = graded_with_2
    crashed = next(who for who, kind in kinds.items() if kind == "crash")
    text = (course_dir / "autograded" / crashed / CHAPTER / f"{CHAPTER}.ipynb").read_text()
    assert "the kernel died while running this cell" in text


@needs_sandbox
@pytest.mark.slow
def test_grading_without_workers_gives_the_same_table_and_csv(graded_with_2, released, tmp_path):
    _, incoming, _, (_, out2, _, csv2) = graded_with_2
    course_dir = fresh_course(released, tmp_path / "course")
    code, out1, _, csv1 = grade_cli(course_dir, incoming)  # one local worker
    assert code == 1
    assert f"{LEARNERS} graded, 0 failed (0 points), 0 retried" in out1
    assert "on 1 local worker" in out1
    assert table_of(out1) == table_of(out2)
    assert csv1 == csv2


@needs_sandbox
@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_table_and_csv(graded_with_2, released, tmp_path):
    from distributed import Client, LocalCluster

    _, incoming, _, (_, out2, _, csv2) = graded_with_2
    course_dir = fresh_course(released, tmp_path / "course")
    found = intake.inspect(incoming, course.chapters(course_dir))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        with Client(cluster) as client:
            done = pipeline.grade_class(
                course_dir, found, pools.DaskPool(client=client), progress_stream=io.StringIO()
            )
    assert (done.summary.graded, done.summary.failed) == (LEARNERS, 0)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # a rerun: all stored
        code = main(["grade", str(incoming), "--course-dir", str(course_dir), "--workers", "1"])
    assert code == 1
    assert "0 graded" in out.getvalue() and f"{LEARNERS} unchanged" in out.getvalue()
    assert table_of(out.getvalue()) == table_of(out2)
    assert (course_dir / "grades.csv").read_text() == csv2


@needs_sandbox
@pytest.mark.slow
def test_a_rerun_grades_only_the_changed_submission_and_force_regrades_all(graded_with_2, tmp_path):
    # A copy of the graded class and of its gradebook: nothing is graded twice to get there.
    graded_course, graded_incoming, kinds, _ = graded_with_2
    course_dir = Path(shutil.copytree(graded_course, tmp_path / "course"))
    incoming = Path(shutil.copytree(graded_incoming, tmp_path / "incoming"))
    again = grade_cli(course_dir, incoming, "--workers", "2")[1]
    assert "0 graded" in again and f"{LEARNERS} unchanged" in again
    assert kinds["learner01"] != "solution" and "learner01  10/10" not in again
    notebooks.write(submission(), incoming / "learner01" / CHAPTER / f"{CHAPTER}.ipynb")
    out = grade_cli(course_dir, incoming, "--workers", "2")[1]
    assert "1 graded" in out and f"{LEARNERS - 1} unchanged" in out
    assert "learner01  10/10" in out
    # --force regrades every submission it is given, changed or not: two of them here.
    two = tmp_path / "two"
    for who in ("learner00", "learner01"):
        shutil.copytree(incoming / who, two / who)
    forced = grade_cli(course_dir, two, "--workers", "2", "--force")[1]
    assert "2 graded" in forced and "0 unchanged" in forced


# --- slow: faults --------------------------------------------------------------------------------


def grading_processes(student: str) -> list[int]:
    """Pids of the ``nbgrader autograde`` processes grading ``student``: named on the command
    line (a batch of one), or in the scratch course the process runs in (a larger batch)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"autograde" not in args or b"nbgrader" not in args:
                continue
            in_scratch = Path(f"/proc/{entry}/cwd/submitted/{student}").is_dir()
        except OSError:
            continue
        if student.encode() in args or in_scratch:
            found.append(int(entry))
    return found


@needs_sandbox
@pytest.mark.slow
def test_a_killed_grading_process_is_retried_and_its_unit_graded_once(released, tmp_path):
    incoming = tmp_path / "incoming"
    make_class(incoming, learners=3)
    course_dir = fresh_course(released, tmp_path / "course")
    killed = []

    def kill_once():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for pid in grading_processes("learner00"):
                time.sleep(1.0)  # let it start its kernel
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                break
            time.sleep(0.1)

    killer = threading.Thread(target=kill_once)
    killer.start()
    code, out, err, csv_text = grade_cli(course_dir, incoming, "--workers", "2")
    killer.join()
    assert killed
    assert code == 0, err
    # 3 learners on 2 workers: batches of 2 and 1. Killing learner00's process fails its whole
    # batch, learner00 and learner01; each is retried alone.
    assert "3 graded, 0 failed (0 points), 2 retried" in out
    assert "learner00  10/10" in out
    assert submissions_in_gradebook(course_dir).count(("learner00", CHAPTER)) == 1
    assert sum(line.startswith("learner00,") for line in csv_text.splitlines()) == len(
        notebooks.tasks_of(submission())
    )


def units_stored(course_dir: Path) -> int:
    try:
        with sqlite3.connect(course_dir / "gradebook.db") as db:
            return db.execute(f"SELECT COUNT(*) FROM {UNITS_TABLE}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@needs_sandbox
@pytest.mark.slow
def test_a_killed_coordinator_leaves_a_gradebook_a_rerun_completes(released, tmp_path):
    incoming = tmp_path / "incoming"
    make_class(incoming, learners=3)  # 2 workers: batches of 2 and 1, which ends first
    course_dir = fresh_course(released, tmp_path / "course")
    command = [sys.executable, "-m", "selfattn_course.cli", "grade", str(incoming)]
    command += ["--course-dir", str(course_dir), "--workers", "2"]
    coordinator = subprocess.Popen(
        command, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    while units_stored(course_dir) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    coordinator.kill()
    coordinator.wait()
    stored_then = units_stored(course_dir)
    assert 1 <= stored_then < 3
    code, out, err, csv_text = grade_cli(course_dir, incoming, "--workers", "2")
    assert code == 0, err
    assert f"{stored_then} unchanged" in out
    assert units_stored(course_dir) == 3
    assert submissions_in_gradebook(course_dir) == [(f"learner{i:02d}", CHAPTER) for i in range(3)]
    with sqlite3.connect(course_dir / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM grade WHERE auto_score IS NULL").fetchone() == (0,)
    rows = csv_text.splitlines()[1:]
    assert len(rows) == len(set(rows)) == 3 * len(notebooks.tasks_of(submission()))


# --- slow: a real scheduler and worker -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_sandbox
@pytest.mark.slow
def test_grading_through_a_dask_scheduler_and_worker_started_apart(released, tmp_path):
    incoming = tmp_path / "incoming"
    make_class(incoming, learners=2)
    course_dir = fresh_course(released, tmp_path / "course")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = tool_env({"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--dashboard-address", ":0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
         "--nthreads", "2", "--dashboard-address", ":0", "--local-directory", str(tmp_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        code, out, err, csv_text = grade_cli(course_dir, incoming, "--scheduler", address)
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert code == 0, err
    assert "2 graded, 0 failed (0 points)" in out and address in out
    assert "learner00  10/10" in out
    assert csv_text.count("\nlearner01,") == len(notebooks.tasks_of(submission()))


@needs_sandbox
@pytest.mark.slow
def test_a_killed_dask_worker_has_its_unit_rerun_elsewhere_and_graded_once(released, tmp_path):
    from distributed import Client, LocalCluster

    incoming = tmp_path / "incoming"
    make_class(incoming, learners=3)
    course_dir = fresh_course(released, tmp_path / "course")
    found = intake.inspect(incoming, course.chapters(course_dir))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        with Client(cluster) as client:
            pids = client.run(os.getpid)
            victim = next(iter(pids.values()))
            killed = []

            def kill_when_busy():
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if any(grading_processes(f"learner{i:02d}") for i in range(3)):
                        time.sleep(1.0)
                        os.kill(victim, signal.SIGKILL)
                        killed.append(victim)
                        return
                    time.sleep(0.1)

            killer = threading.Thread(target=kill_when_busy)
            killer.start()
            done = pipeline.grade_class(
                course_dir, found, pools.DaskPool(client=client), progress_stream=io.StringIO()
            )
            killer.join()
    assert killed
    assert (done.summary.graded, done.summary.failed) == (3, 0)
    assert submissions_in_gradebook(course_dir) == [(f"learner{i:02d}", CHAPTER) for i in range(3)]
    assert units_stored(course_dir) == 3
