"""Units of grading: one learner's chapter, graded in batches, each batch in a scratch course.

A :class:`Unit` is one accepted submission with its files (relative path -> bytes), so it can be
graded on a machine that does not see the submissions folder. :func:`make_batches` cuts the
units into batches of one chapter (at most :data:`MAX_BATCH`, an equal share for each worker),
and :func:`grade_units` grades one batch with the course's own pipeline (its
``nbgrader_config.py``: the sandbox, the caps, the trusted checks) in one ``nbgrader autograde``
process and a private scratch course (the config, a gradebook holding the released chapters and
no learner, and the batch's submissions). Batching pays nbgrader's start-up once per batch
instead of once per notebook; every notebook still gets its own sandboxed kernel.

:func:`grade_units` returns a :class:`UnitResult` per unit (each cell's score and comment, the
autograded folder, the time) and never raises for what a submission does. It runs wherever a
pool puts it (:mod:`.pools`): a thread here, or a Dask worker elsewhere.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from selfattn_course.grading.autograde.nbgrader_command import (
    UNSAFE_ENVIRONMENT_VARIABLE,
    run_nbgrader,
)
from selfattn_course.grading.classroom.course import CONFIG_FILE, Submission, load_config

#: Seconds nbgrader may spend on one unit beyond the notebook's own wall-clock cap
#: (``c.GradingExecute.notebook_wall_seconds``): its start, the gradebook, the verdicts. A batch
#: gets ``len(units)`` times (cap + this); past it nbgrader is killed and each unit retried alone.
UNIT_OVERHEAD_SECONDS = 120

#: Most units graded by one ``nbgrader autograde`` process (see :func:`make_batches`).
MAX_BATCH = 8


@dataclass(frozen=True)
class Unit:
    """One learner's submission of one chapter, with its files (relative path -> bytes)."""

    student: str
    chapter: str
    files: dict[str, bytes]
    files_sha256: str

    @classmethod
    def from_submission(cls, submission: Submission, *, trust_timestamp: bool = False) -> Unit:
        """The unit of ``submission``, its folder's files read now.

        nbgrader takes the submission time from the folder's ``timestamp.txt``. Only the
        exchange's is trusted (``trust_timestamp``: the folder is the course's ``submitted/``,
        filled by ``nbgrader collect``); anywhere else the learner may have written it, so it is
        replaced by the time the file system gives (:func:`file_system_timestamp`).
        """
        folder = submission.path.parent
        files = read_folder(folder)
        if not trust_timestamp:
            files.pop(TIMESTAMP_FILE, None)
            digest = files_hash(files)
            files[TIMESTAMP_FILE] = file_system_timestamp(folder).encode()
        else:
            digest = files_hash(files)
        return cls(submission.student, submission.chapter, files, digest)

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
    autograded folder (relative path -> bytes). ``reason`` says why a unit that failed did, and
    ``log`` is nbgrader's log then."""

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
    #: Why a unit graded as usual should be graded again: a cell timed out while the machine
    #: was too busy (:data:`~selfattn_course.grading.autograde.execute.STARVED_KEY`).
    starved: str | None = None

    @property
    def worth_retrying(self) -> bool:
        """Failed, or graded while starved of CPU: either way not the learner's doing."""
        return not self.ok or self.starved is not None

    @property
    def name(self) -> str:
        return f"{self.student}/{self.chapter}"


#: Where nbgrader reads a submission's time (written by ``nbgrader submit`` into the exchange).
TIMESTAMP_FILE = "timestamp.txt"


def file_system_timestamp(folder: str | Path, now: datetime | None = None) -> str:
    """The time of the newest file under ``folder`` (its modification time), never later than
    ``now``, in nbgrader's format (``2026-12-07 09:23:06.000000 UTC``): what the file system says
    the learner last changed, in place of a ``timestamp.txt`` the learner could have written."""
    now = now or datetime.now(UTC)
    times = [path.stat().st_mtime for path in Path(folder).rglob("*") if path.is_file()]
    newest = datetime.fromtimestamp(max(times), UTC) if times else now
    return min(newest, now).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


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


def make_batches(
    units: Sequence[Unit], slots: int, *, most: int | None = MAX_BATCH
) -> list[list[Unit]]:
    """``units`` cut into batches for :func:`grade_units`, each of one chapter, in order.

    A batch pays nbgrader's start-up once, so batches are as large as they may be (``most``)
    while the ``slots`` workers get equal shares: the number of batches is a multiple of
    ``slots``, and their sizes differ by at most one (8 units on 2 slots: 4 + 4; 20 units:
    5 + 5 + 5 + 5). ``most`` None: one batch per chapter, whatever its size.
    """
    by_chapter: dict[str, list[Unit]] = {}
    for unit in units:
        by_chapter.setdefault(unit.chapter, []).append(unit)
    if most is None:
        return list(by_chapter.values())
    slots = max(1, slots)
    count = slots * -(-len(units) // (slots * most))  # batches: a multiple of the slots
    size = max(1, -(-len(units) // max(1, count)))
    return [
        group[i : i + size] for group in by_chapter.values() for i in range(0, len(group), size)
    ]


def grade_units(units: Sequence[Unit], context: GradingContext) -> list[UnitResult]:
    """Grade ``units`` (one chapter, distinct learners) with the course's pipeline, in one
    ``nbgrader autograde`` process and a private scratch course; one result per unit, in order.

    One process for several units pays nbgrader's start-up (about 3-5 s: imports, the database)
    once. Never raises for what a submission does: a unit nbgrader could not grade, or all of
    them when the process itself died, come back ``ok=False`` with the reason and the log.
    """
    chapters, students = {unit.chapter for unit in units}, {unit.student for unit in units}
    if len(chapters) > 1 or len(students) < len(units):
        raise ValueError(
            f"a batch takes one chapter and distinct learners, got {[u.name for u in units]}"
        )
    started = time.perf_counter()
    chapter = units[0].chapter
    env = {UNSAFE_ENVIRONMENT_VARIABLE: "1" if context.unsafe_no_sandbox else "0"}
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
        wall = _notebook_wall_seconds(root) + UNIT_OVERHEAD_SECONDS
        command = run_nbgrader(
            root, ["autograde", chapter, *only], env=env, timeout=wall * len(units)
        )
        results = [
            UnitResult(u.student, chapter, u.files_sha256, ok=False, log=command.log) for u in units
        ]
        _read_scratch_grades(root, results)
        for result in results:
            autograded = root / "autograded" / result.student / chapter
            if autograded.is_dir():
                result.autograded = read_folder(autograded)
                result.starved = _starved_reason(result.autograded)
            # Decided from what nbgrader left, never from its log (a learner's output can reach
            # the log): on any failure nbgrader removes the unit's autograded/ folder.
            result.ok = (
                command.returncode >= 0  # not killed: a killed run may have stored half a unit
                and bool(result.grades)
                and bool(result.autograded)
            )
            if result.ok:
                result.log = ""
            else:
                result.reason = (
                    f"its grading ran past the time limit of {wall * len(units):g} s "
                    f"({len(units)} notebook{'s' if len(units) != 1 else ''}) and was stopped"
                    if command.timed_out
                    else _failure_reason(command.returncode, command.log)
                )
    seconds = (time.perf_counter() - started) / len(units)
    for result in results:
        result.seconds = seconds
    return results


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


def _starved_reason(autograded: dict[str, bytes]) -> str | None:
    """The first reason an autograded notebook of the unit gives for a cell starved of CPU."""
    import json

    from selfattn_course.grading.autograde.execute import STARVED_KEY

    for name, data in autograded.items():
        if name.endswith(".ipynb"):
            try:
                reasons = json.loads(data).get("metadata", {}).get(STARVED_KEY)
            except (ValueError, AttributeError):
                continue
            if reasons:
                return str(reasons[0])
    return None


def _notebook_wall_seconds(course_dir: Path) -> float:
    """``c.GradingExecute.notebook_wall_seconds`` of the course's config (600 if unset)."""
    from selfattn_course.grading.autograde.execute import GradingExecute

    configured = load_config(course_dir).GradingExecute.get("notebook_wall_seconds")
    default = GradingExecute.class_traits()["notebook_wall_seconds"].default_value
    return float(default if configured is None else configured)


def _failure_reason(returncode: int, log: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"its grading process was killed ({name})"
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    last = lines[-1] if lines else "no log"
    return f"nbgrader could not grade it (exit {returncode}): {last[:200]}"
