"""Grade a whole class in parallel: batches of (learner, chapter) units, one gradebook writer.

``selfattn-course grade SUBMISSIONS --workers N`` (or ``--scheduler tcp://HOST:PORT``) cuts the
work into units, one per accepted submission (:class:`Unit`: the learner, the chapter and the
submitted files), and the units into batches of one chapter (:func:`make_batches`: at most
:data:`MAX_BATCH`, an equal share for each worker). :func:`grade_units` grades one batch with the
course's own pipeline (its ``nbgrader_config.py``: the sandbox, the caps, the trusted checks) in
one ``nbgrader autograde`` process and a private scratch course (a copy of the config and of
the gradebook's released chapters, and the batch's submissions) and returns a
:class:`UnitResult` per unit: each cell's score and comment, the autograded folder, the time.
Batching pays nbgrader's start-up once per batch instead of once per notebook; every notebook
still gets its own sandboxed kernel.

Only the coordinating process writes the real ``gradebook.db`` (SQLite takes one writer):
:class:`GradebookWriter` stores each result in one transaction, together with a row of
:data:`UNITS_TABLE` holding the hash of the submitted files. That row is what makes a rerun
resume: a unit whose row holds the same hash is not graded again (``force`` regrades all); a
changed submission is. A run stopped at any point (Ctrl-C, a killed coordinator) leaves every unit
either fully stored with its row, or to be graded by the next run.

Where batches run:

- locally (:class:`LocalRunner`): ``workers`` threads, each driving one ``nbgrader autograde``
  process at a time. A unit that failed (its process killed or crashed, or nbgrader could not
  grade it) is retried once, alone, then scores 0 with the reason;
- on a Dask cluster (:class:`DaskRunner`): the same batches through ``distributed``'s ``Client``;
  a worker that dies has its batch rerun elsewhere by the scheduler. A batch that kills two
  workers (start the scheduler with ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1``) comes
  back as ``KilledWorker``, and its units are tried again one by one; a single unit that kills
  two workers scores 0 with the reason. Dask blames every task a dying worker was processing, so
  the README also sets ``WORKER_SATURATION=1.0`` (and each worker runs one thread): a worker then
  holds only the batch it is grading, and no bystander is blamed.

:func:`default_workers` picks N: the cores, lowered so that N kernels at the memory cap
(``c.SandboxedKernelManager.memory_bytes``) fit in the machine's memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfattn_course.grading.autograde.execute import UNSAFE_ENVIRONMENT_VARIABLE
from selfattn_course.grading.classroom import course
from selfattn_course.grading.classroom.course import CONFIG_FILE, Submission
from selfattn_course.grading.classroom.intake import Intake, Problem

#: The coordinator's table in ``gradebook.db``: one row per stored unit.
UNITS_TABLE = "selfattn_graded_units"
#: Attempts a unit gets before it scores 0 (its grading process died each time).
ATTEMPTS = 2
#: Most units graded by one ``nbgrader autograde`` process (see :func:`make_batches`).
MAX_BATCH = 8
#: Times a unit whose finished result was lost with its Dask worker is resubmitted.
LOST_RESULT_RETRIES = 3
#: Memory cap per kernel when the course's config sets none (the sandbox's default).
DEFAULT_MEMORY_BYTES = 2 * 1024**3


# --- units and their results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One learner's submission of one chapter, with its files (relative path -> bytes), so it
    can be graded on a machine that does not see the submissions folder."""

    student: str
    chapter: str
    files: dict[str, bytes]
    files_sha256: str

    @classmethod
    def from_submission(cls, submission: Submission) -> Unit:
        files = read_folder(submission.path.parent)
        return cls(submission.student, submission.chapter, files, files_hash(files))

    @property
    def name(self) -> str:
        return f"{self.student}/{self.chapter}"


@dataclass(frozen=True)
class GradingContext:
    """What every unit needs besides its files: the course's config file, a gradebook holding
    the released chapters and no learner, and whether to grade without a sandbox."""

    config_text: str
    gradebook: bytes
    unsafe_no_sandbox: bool = False


@dataclass
class UnitResult:
    """What grading one unit gave. ``grades`` maps ``(notebook, cell)`` to ``(auto_score,
    needs_manual_grade)``, ``comments`` to the automatic comment; ``autograded`` is the
    autograded folder (relative path -> bytes). ``reason`` says why a unit that failed did."""

    student: str
    chapter: str
    files_sha256: str
    ok: bool
    grades: dict[tuple[str, str], tuple[float | None, bool]] = field(default_factory=dict)
    comments: dict[tuple[str, str], str | None] = field(default_factory=dict)
    autograded: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    reason: str | None = None
    log: str = ""


def read_folder(folder: str | Path) -> dict[str, bytes]:
    """Every plain file under ``folder``, by its relative POSIX path (sorted)."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def write_folder(files: dict[str, bytes], folder: str | Path) -> None:
    """Replace ``folder`` by exactly ``files`` (written beside it, then renamed into place)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    for name, data in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def files_hash(files: dict[str, bytes]) -> str:
    """SHA-256 over the files' names and contents: changes when any submitted file does."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def grade_units(units: Sequence[Unit], context: GradingContext) -> list[UnitResult]:
    """Grade ``units`` (one chapter, distinct learners) with the course's pipeline, in one
    ``nbgrader autograde`` process and a private scratch course; one result per unit, in order.

    One process for several units pays nbgrader's start-up (about 3-5 s: imports, the database)
    once. Never raises for what a submission does: a unit nbgrader could not grade, or all of
    them when the process itself died, come back ``ok=False`` with the reason and the log.
    """
    if len({unit.chapter for unit in units}) > 1 or len({unit.student for unit in units}) < len(
        units
    ):
        raise ValueError(
            f"a batch takes one chapter and distinct learners, got {[u.name for u in units]}"
        )
    started = time.perf_counter()
    os.environ[UNSAFE_ENVIRONMENT_VARIABLE] = "1" if context.unsafe_no_sandbox else "0"
    chapter = units[0].chapter
    with tempfile.TemporaryDirectory(prefix="selfattn-unit-") as scratch:
        root = Path(scratch)
        (root / CONFIG_FILE).write_text(context.config_text)
        (root / "gradebook.db").write_bytes(context.gradebook)
        (root / "solutions").mkdir()
        for unit in units:
            write_folder(unit.files, root / "submitted" / unit.student / chapter)
        # One learner: name it, so that its process can be told apart (the fault tests do).
        # Several: the scratch course holds only them (``--student`` takes a glob, not a list).
        only = ["--student", units[0].student] if len(units) == 1 else []
        run = course.run_nbgrader(root, ["autograde", chapter, *only])
        refused = set(_students_nbgrader_could_not_grade(run.log))
        results = [
            UnitResult(u.student, chapter, u.files_sha256, ok=False, log=run.log) for u in units
        ]
        _read_scratch_grades(root, results)
        for result in results:
            autograded = root / "autograded" / result.student / chapter
            if autograded.is_dir():
                result.autograded = read_folder(autograded)
            result.ok = (
                run.returncode >= 0  # not killed: a killed run may have stored half a unit
                and result.student not in refused
                and bool(result.grades)
                and bool(result.autograded)
            )
            if not result.ok:
                result.reason = _failure_reason(run.returncode, run.log)
    seconds = (time.perf_counter() - started) / len(units)
    for result in results:
        result.seconds = seconds
    return results


def _students_nbgrader_could_not_grade(log: str) -> list[str]:
    """The learners of nbgrader's closing "There was an error processing assignment '...' for
    student '...'" lines."""
    return re.findall(
        r"There was an error processing assignment '[^']*' for student '([^']*)'", log
    )


def _read_scratch_grades(root: Path, results: Sequence[UnitResult]) -> None:
    """Fill each result's grades and comments from the scratch gradebook (opened once)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for result in results:
            try:
                submission = gradebook.find_submission(result.chapter, result.student)
            except MissingEntry:
                continue
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    score = None if grade.auto_score is None else float(grade.auto_score)
                    result.grades[(notebook.name, grade.name)] = (
                        score,
                        bool(grade.needs_manual_grade),
                    )
                for comment in notebook.comments:
                    result.comments[(notebook.name, comment.name)] = comment.auto_comment


def _failure_reason(returncode: int, log: str) -> str:
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"its grading process was killed ({name})"
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    last = lines[-1] if lines else "no log"
    return f"nbgrader could not grade it (exit {returncode}): {last[:200]}"


# --- the one writer ------------------------------------------------------------------------------


class GradebookWriter:
    """The coordinator's side of the gradebook: what is stored, and storing results."""

    def __init__(self, course_dir: str | Path):
        self.course_dir = Path(course_dir)
        self.path = self.course_dir / "gradebook.db"
        with sqlite3.connect(self.path) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {UNITS_TABLE} (student TEXT NOT NULL, "
                "chapter TEXT NOT NULL, files_sha256 TEXT NOT NULL, reason TEXT, "
                "graded_at REAL NOT NULL, PRIMARY KEY (student, chapter))"
            )

    def stored(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """``(student, chapter) -> (files_sha256, reason)`` of every stored unit."""
        with sqlite3.connect(self.path) as db:
            rows = db.execute(f"SELECT student, chapter, files_sha256, reason FROM {UNITS_TABLE}")
            return {(s, c): (sha, reason) for s, c, sha, reason in rows}

    def forget(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Drop the rows of ``pairs`` (graded elsewhere, or rejected by the intake now)."""
        with sqlite3.connect(self.path) as db:
            db.executemany(
                f"DELETE FROM {UNITS_TABLE} WHERE student = ? AND chapter = ?", list(pairs)
            )

    def template(self) -> bytes:
        """The gradebook's released chapters without any learner: what a scratch course needs."""
        with tempfile.TemporaryDirectory(prefix="selfattn-template-") as scratch:
            copy = Path(scratch) / "gradebook.db"
            with sqlite3.connect(self.path) as source, sqlite3.connect(copy) as target:
                source.backup(target)
                for table in (
                    "grade",
                    "comment",
                    "submitted_notebook",
                    "submitted_assignment",
                    "student",
                    UNITS_TABLE,
                ):
                    target.execute(f"DELETE FROM {table}")
            with sqlite3.connect(copy) as target:
                target.execute("VACUUM")
            return copy.read_bytes()

    def store(self, result: UnitResult, files: dict[str, bytes] | None) -> None:
        """Store ``result`` and the submitted ``files``: the copies in ``submitted/`` and
        ``autograded/`` first, then the grades and the unit's row in one transaction. A failed
        unit scores 0 on every task, with its reason in the row."""
        from nbgrader.api import Gradebook
        from sqlalchemy import text
        from sqlalchemy.exc import SAWarning

        where = (result.student, result.chapter)
        if files is not None:  # None: graded in place, submitted/ is the source
            write_folder(files, self.course_dir / "submitted" / result.student / result.chapter)
        autograded = self.course_dir / "autograded" / result.student / result.chapter
        if result.ok:
            write_folder(result.autograded, autograded)
        else:
            shutil.rmtree(autograded, ignore_errors=True)
        with Gradebook(f"sqlite:///{self.path}") as gradebook, warnings.catch_warnings():
            # nbgrader's update_or_create_submission warns about its own autoflush (harmless)
            warnings.simplefilter("ignore", SAWarning)
            try:
                gradebook.update_or_create_student(result.student)
                submission = gradebook.update_or_create_submission(result.chapter, result.student)
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if result.ok:
                            score, manual = result.grades.get(
                                (notebook.name, grade.name), (None, True)
                            )
                            grade.auto_score, grade.needs_manual_grade = score, manual
                        else:
                            grade.auto_score, grade.needs_manual_grade = 0, False
                        grade.manual_score = None
                    for comment in notebook.comments:
                        key = (notebook.name, comment.name)
                        comment.auto_comment = result.comments.get(key) if result.ok else None
                gradebook.db.execute(
                    text(
                        f"INSERT OR REPLACE INTO {UNITS_TABLE} "
                        "(student, chapter, files_sha256, reason, graded_at) "
                        "VALUES (:student, :chapter, :sha, :reason, :at)"
                    ),
                    dict(
                        student=where[0],
                        chapter=where[1],
                        sha=result.files_sha256,
                        reason=None if result.ok else result.reason,
                        at=time.time(),
                    ),
                )
                gradebook.db.commit()
            except BaseException:
                gradebook.db.rollback()
                raise


# --- where units run -----------------------------------------------------------------------------


def memory_cap_bytes(course_dir: str | Path) -> int:
    """``c.SandboxedKernelManager.memory_bytes`` of the course's config (or the default)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config()
    return int(config.SandboxedKernelManager.get("memory_bytes", DEFAULT_MEMORY_BYTES))


def machine_memory_bytes() -> int:
    """Total physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(memory_cap: int, *, cores: int | None = None, memory: int | None = None) -> int:
    """The cores, lowered so that that many kernels at ``memory_cap`` bytes fit in ``memory``."""
    cores = usable_cores() if cores is None else cores
    memory = machine_memory_bytes() if memory is None else memory
    return max(1, min(cores, memory // max(1, memory_cap)))


@dataclass
class Summary:
    """What a parallel run did."""

    workers: str
    graded: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    seconds: float = 0.0
    unit_seconds: list[float] = field(default_factory=list)

    @property
    def notebooks_per_second(self) -> float:
        done = self.graded + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        return (
            f"{self.graded} graded, {self.failed} failed (0 points), {self.retried} retried, "
            f"{self.skipped} unchanged since the last run; {self.seconds:.1f} s wall, "
            f"{self.notebooks_per_second:.2f} notebooks/s on {self.workers}"
        )


class Progress:
    """Counts, rate and ETA on the course's one-line progress bar."""

    def __init__(self, total: int, stream=None):
        from selfattn_course.grading.classroom.progress import ProgressBar

        self.bar = ProgressBar(total, label="autograding", stream=stream)
        self.total = total
        self.started = time.perf_counter()

    def advance(self, note: str) -> None:
        done = self.bar.done + 1
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime(left))
        self.bar.advance(f"{rate:.2f} nb/s ETA {eta} {note}")

    def close(self) -> None:
        self.bar.close()


OnResult = Callable[[UnitResult, int], None]
GradeBatch = Callable[[Sequence[Unit], GradingContext], list[UnitResult]]


def make_batches(units: Sequence[Unit], slots: int, *, most: int = MAX_BATCH) -> list[list[Unit]]:
    """``units`` cut into batches for :func:`grade_units`, each of one chapter, in order.

    A batch pays nbgrader's start-up once, so batches are as large as they may be (``most``)
    while the ``slots`` workers get equal shares: the number of batches is a multiple of
    ``slots``, and their sizes differ by at most one (8 units on 2 slots: 4 + 4; 20 units:
    5 + 5 + 5 + 5).
    """
    slots = max(1, slots)
    count = slots * -(-len(units) // (slots * most))  # batches: a multiple of the slots
    size = max(1, -(-len(units) // max(1, count)))
    by_chapter: dict[str, list[Unit]] = {}
    for unit in units:
        by_chapter.setdefault(unit.chapter, []).append(unit)
    return [
        group[i : i + size] for group in by_chapter.values() for i in range(0, len(group), size)
    ]


def _after_batch(
    batch: Sequence[Unit],
    batch_attempt: int,
    results: Sequence[UnitResult],
    on_result: OnResult,
    resubmit: Callable[[list[Unit], int], None],
) -> None:
    """The retry rule, shared by the runners: a unit that failed gets one more attempt, alone.
    ``results`` are the batch's, in its order (as :func:`grade_units` returns them)."""
    for unit, result in zip(batch, results, strict=True):
        on_result(result, batch_attempt)
        if not result.ok and batch_attempt < ATTEMPTS:
            resubmit([unit], batch_attempt + 1)


class LocalRunner:
    """``workers`` threads, each driving one ``nbgrader autograde`` process at a time, which
    grades a batch of units (:func:`make_batches`); a unit that failed is retried once, alone.

    ``grade`` grades one batch (:func:`grade_units`; the tests pass stand-ins that fail on purpose).
    """

    def __init__(self, workers: int, grade: GradeBatch = grade_units):
        self.workers = workers
        self.grade = grade
        self.description = f"{workers} local worker{'s' if workers != 1 else ''}"

    def run(self, units: Sequence[Unit], context: GradingContext, on_result: OnResult) -> None:
        """Grade ``units``; ``on_result(result, attempt)`` (in this thread) for each final result,
        and for each failed attempt that will be retried (``result.ok`` False, attempt 1)."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="grade")
        pending = {}

        def submit(batch: list[Unit], attempt: int) -> None:
            pending[executor.submit(self.grade, batch, context)] = (batch, attempt)

        for batch in make_batches(units, self.workers):
            submit(batch, 1)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    batch, attempt = pending.pop(future)
                    _after_batch(batch, attempt, future.result(), on_result, submit)
        finally:
            executor.shutdown(wait=not pending, cancel_futures=True)


class DaskRunner:
    """The units on a Dask distributed cluster (a ``Client`` on ``address``, or one given), in
    batches as :class:`LocalRunner` cuts them, one task per batch.

    ``grade`` is sent to the workers (by reference: they must be able to import it).
    """

    def __init__(self, address: str | None = None, client=None, grade: GradeBatch = grade_units):
        self.address = address
        self.client = client
        self.grade = grade
        self.description = f"the Dask cluster at {address}" if address else "a Dask cluster"

    def run(self, units: Sequence[Unit], context: GradingContext, on_result: OnResult) -> None:
        from distributed import Client, as_completed
        from distributed.scheduler import KilledWorker

        client = self.client or Client(self.address)
        try:
            futures = {}
            # Each batch carries the context itself (tens of kB to a few MB), so batches depend
            # on no other task: lost scattered data cannot cancel them, and no batch is placed
            # next to another for locality. At most ``limit`` batches are on the cluster at
            # once, so the scheduler holds a bounded number of contexts.
            slots = sum(client.nthreads().values())
            waiting = deque((batch, 1) for batch in make_batches(units, slots))
            limit = max(4, 2 * slots)

            def submit(batch: list[Unit], attempt: int):
                key = f"grade-{batch[0].name}-{len(batch)}-{attempt}-{os.urandom(4).hex()}"
                future = client.submit(self.grade, batch, context, pure=False, key=key)
                futures[future] = (batch, attempt)
                return future

            # Results are fetched as soon as each batch finishes: a result still held by a
            # worker that then dies is lost (its future is cancelled), and is graded again.
            first = [submit(*waiting.popleft()) for _ in range(min(limit, len(waiting)))]
            queue = as_completed(first, with_results=True, raise_errors=False)
            lost: dict[str, int] = {}
            for future, outcome in queue:
                batch, attempt = futures.pop(future)
                if future.status == "error" and isinstance(outcome[1], KilledWorker):
                    if len(batch) > 1:  # which of them killed it? Each gets its own try, alone
                        waiting.extendleft(([unit], attempt) for unit in batch)
                    else:  # the scheduler retried it already: this was its last attempt
                        reason = f"grading it killed its worker process twice ({outcome[1]})"
                        on_result(self._failed(batch[0], reason), ATTEMPTS)
                elif future.status == "error":  # grade_units itself raised: the grader is broken
                    raise outcome[1].with_traceback(outcome[2])
                elif isinstance(outcome, BaseException):  # cancelled: its result was lost
                    key = batch[0].name
                    lost[key] = lost.get(key, 0) + 1
                    if lost[key] <= LOST_RESULT_RETRIES:
                        waiting.appendleft((batch, attempt))
                    else:
                        reason = f"its result was lost {lost[key]} times ({outcome!r})"
                        for unit in batch:
                            on_result(self._failed(unit, reason), ATTEMPTS)
                else:
                    _after_batch(
                        batch,
                        attempt,
                        outcome,
                        on_result,
                        lambda again, n: waiting.appendleft((again, n)),
                    )
                while waiting and len(futures) < limit:
                    queue.add(submit(*waiting.popleft()))
        finally:
            if self.client is None:
                client.close()

    @staticmethod
    def _failed(unit: Unit, reason: str) -> UnitResult:
        return UnitResult(unit.student, unit.chapter, unit.files_sha256, ok=False, reason=reason)


# --- the whole run -------------------------------------------------------------------------------


@dataclass
class ParallelGraded:
    """What :func:`grade_parallel` did: the intake (with the failed units as problems too)."""

    intake: Intake
    summary: Summary
    failed: list[Problem]


def grade_parallel(
    course_dir: str | Path,
    intake: Intake,
    runner,
    *,
    force: bool = False,
    unsafe_no_sandbox: bool = False,
    progress_stream=None,
) -> ParallelGraded:
    """Grade what ``intake`` accepted through ``runner`` (:class:`LocalRunner` or
    :class:`DaskRunner`), store every result here, record 0 for what the intake rejected."""
    from selfattn_course.grading.classroom.intake import _environment, record_zeros

    course_dir = Path(course_dir).resolve()
    started = time.perf_counter()
    chapters = sorted({s.chapter for s in intake.accepted})
    unreleased = [c for c in chapters if c not in course.released_chapters(course_dir)]
    if unreleased:
        for run in course.release(course_dir, unreleased):
            if not run.ok:
                raise RuntimeError(f"could not release {', '.join(unreleased)}:\n{run.log}")
    writer = GradebookWriter(course_dir)
    in_place = intake.source == (course_dir / "submitted").resolve()
    record_zeros(course_dir, intake.rejected, replace_copies=not in_place)
    writer.forget((p.student, p.chapter) for p in intake.rejected)

    stored = writer.stored()
    units, failed = [], []
    summary = Summary(runner.description)
    for submission in intake.accepted:
        unit = Unit.from_submission(submission)
        previous = stored.get((unit.student, unit.chapter))
        if not force and previous is not None and previous[0] == unit.files_sha256:
            summary.skipped += 1
            if previous[1] is not None:
                failed.append(Problem(unit.student, unit.chapter, previous[1]))
            continue
        units.append(unit)
    by_name = {unit.name: unit for unit in units}

    if units:
        context = GradingContext(
            (course_dir / CONFIG_FILE).read_text(), writer.template(), unsafe_no_sandbox
        )
        progress = Progress(len(units), stream=progress_stream)

        def on_result(result: UnitResult, attempt: int) -> None:
            if not result.ok and attempt < ATTEMPTS:
                summary.retried += 1
                return
            unit = by_name[f"{result.student}/{result.chapter}"]
            writer.store(result, None if in_place else unit.files)
            summary.unit_seconds.append(result.seconds)
            if result.ok:
                summary.graded += 1
            else:
                summary.failed += 1
                failed.append(Problem(result.student, result.chapter, result.reason or "failed"))
            progress.advance(f"{result.student} {result.chapter}")

        unsafe = "1" if unsafe_no_sandbox else "0"
        try:  # grade_units sets the variable for its nbgrader; put this process's back after
            with _environment(UNSAFE_ENVIRONMENT_VARIABLE, unsafe):
                runner.run(units, context, on_result)
        finally:
            progress.close()
    summary.seconds = time.perf_counter() - started
    failed.sort(key=lambda p: (p.student, p.chapter))
    return ParallelGraded(intake, summary, failed)
