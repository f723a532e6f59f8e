"""Intake: look at a folder of submissions before nbgrader does, and grade what can be graded.

A submission is ``<student>/<chNN>/<chNN>.ipynb``. What else :func:`inspect` may find, the
reason it gives, and the outcome:

- a ``chNN.ipynb`` that is not a notebook (bad JSON, not nbformat 4, larger than
  :data:`MAX_NOTEBOOK_BYTES`): "ch02.ipynb is not a valid notebook: bad JSON at line 150 column
  5: ..."; 0 points;
- no ``chNN.ipynb`` but another notebook: "no ch02.ipynb (found ch02-Copy1.ipynb): name it
  ch02.ipynb"; 0 points;
- no notebook at all: "no ch02.ipynb in alice/ch02"; 0 points;
- a symbolic link or another special file anywhere in the folder (a link could point at the
  course's files, and copying follows it): "alice/ch02 holds a symbolic link (data.txt): ...";
  0 points;
- a ``chNN.ipynb`` right in the student's folder: "ch02.ipynb must be in alice/ch02/, not in
  alice/"; 0 points;
- a folder for no chapter of the course: "ch31 is not a chapter of this course (it has ...)";
  a row of 0 of 0 (the gradebook has no such chapter);
- ``chNN.ipynb`` and another notebook beside it: "not graded: notes.ipynb (only ch02.ipynb is)";
  ``chNN.ipynb`` is graded as usual.

:func:`grade` autogrades the good submissions with nbgrader (:func:`.course.autograde`, the
course's config: sandbox, caps, trusted checks) and writes an explicit 0 into the gradebook for
every task of a rejected one, so no grade is missing or NULL; its :class:`Problem` list carries
the reasons to the table and the CSV (:func:`format_problems`, :func:`write_csv`). The submitted
files are only read, never changed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from selfattn_course.grading.autograde.execute import UNSAFE_ENVIRONMENT_VARIABLE
from selfattn_course.grading.classroom import course
from selfattn_course.grading.classroom.course import CHAPTER, AutogradeRun, Submission
from selfattn_course.grading.classroom.report import TaskScore

#: A notebook larger than this is refused before anything reads it into memory.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024

CSV_COLUMNS = ("student", "chapter", "task", "score", "max_score", "reason")


@dataclass(frozen=True)
class Problem:
    """Why one learner's chapter scores 0 (``graded=False``), or a remark on a graded one."""

    student: str
    chapter: str
    reason: str
    graded: bool = False


@dataclass
class Intake:
    """What :func:`inspect` found in a submissions folder."""

    source: Path
    accepted: list[Submission] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def rejected(self) -> list[Problem]:
        """The chapters that score 0, each with its reason."""
        return [problem for problem in self.problems if not problem.graded]

    @property
    def pairs(self) -> set[tuple[str, str]]:
        """Every ``(student, chapter)`` handed in, graded or not."""
        return {(s.student, s.chapter) for s in self.accepted} | {
            (p.student, p.chapter) for p in self.problems
        }


def inspect(submissions_dir: str | Path, chapters: Sequence[str]) -> Intake:
    """Sort every ``<student>/<chNN>/`` folder of ``submissions_dir`` into accepted submissions
    and problems (the module's table). ``chapters`` are the course's. Reads, never writes."""
    source = Path(submissions_dir).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"no folder {submissions_dir}")
    intake = Intake(source)
    for student_dir in _folders(source):
        student = student_dir.name
        for chapter_dir in _folders(student_dir):
            if CHAPTER.match(chapter_dir.name):
                _inspect_chapter(intake, student, chapter_dir, chapters)
        for loose in sorted(student_dir.glob("ch[0-9][0-9].ipynb")):
            if loose.stem in chapters and not (student_dir / loose.stem).is_dir():
                reason = f"{loose.name} must be in {student}/{loose.stem}/, not in {student}/"
                intake.problems.append(Problem(student, loose.stem, reason))
    return intake


def _folders(parent: Path) -> list[Path]:
    return sorted(
        entry
        for entry in parent.iterdir()
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(".")
    )


def _inspect_chapter(intake: Intake, student: str, folder: Path, chapters: Sequence[str]) -> None:
    chapter = folder.name
    where = f"{student}/{chapter}"
    if chapter not in chapters:
        known = ", ".join(chapters) or "none"
        reason = f"{chapter} is not a chapter of this course (it has {known})"
        intake.problems.append(Problem(student, chapter, reason))
        return
    unsafe = unsafe_entries(folder)
    if unsafe:
        reason = (
            f"{where} holds {', '.join(unsafe)}: only plain files and folders are accepted "
            "(a link could point at the course's files)"
        )
        intake.problems.append(Problem(student, chapter, reason))
        return
    expected = folder / f"{chapter}.ipynb"
    others = sorted(path.name for path in folder.glob("*.ipynb") if path.name != expected.name)
    if not expected.is_file():
        if others:
            reason = f"no {expected.name} (found {', '.join(others)}): name it {expected.name}"
        else:
            reason = f"no {expected.name} in {where}"
        intake.problems.append(Problem(student, chapter, reason))
        return
    error = notebook_error(expected)
    if error is not None:
        reason = f"{expected.name} is not a valid notebook: {error}"
        intake.problems.append(Problem(student, chapter, reason))
        return
    intake.accepted.append(Submission(student, chapter, expected))
    if others:
        reason = f"not graded: {', '.join(others)} (only {expected.name} is)"
        intake.problems.append(Problem(student, chapter, reason, graded=True))


def unsafe_entries(folder: str | Path) -> list[str]:
    """What in ``folder`` (recursively) is not a plain file or folder: symbolic links, FIFOs,
    sockets, devices; each as ``"a symbolic link (data.txt)"``. Copying such a folder as the
    grader would follow a link to whatever it names, the course's solutions included."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                found.append(f"a symbolic link ({path.relative_to(folder)})")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(f"a special file ({path.relative_to(folder)})")
    return found


def notebook_error(path: str | Path) -> str | None:
    """Why the file at ``path`` is not a notebook nbgrader can read (None when it is)."""
    import nbformat

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return f"it is {size / 2**20:.0f} MiB, more than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return f"it is not UTF-8 text (byte {error.start})"
    except json.JSONDecodeError as error:
        return f"bad JSON at line {error.lineno} column {error.colno}: {error.msg}"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return "it is JSON but not a notebook (no list of cells)"
    if data.get("nbformat") != 4:
        return f"it is nbformat {data.get('nbformat')!r}; Jupyter's is 4"
    try:
        nbformat.validate(nbformat.reads(raw.decode("utf-8"), as_version=4))
    except Exception as error:  # nbformat raises several kinds
        return f"it does not follow the notebook format: {str(error).splitlines()[0]}"
    return None


# --- grading ---------------------------------------------------------------------------------


@dataclass
class Graded:
    """What :func:`grade` did: the intake, nbgrader's run, and the failures nobody expected."""

    intake: Intake
    run: AutogradeRun | None
    #: ``(student, chapter)`` pairs nbgrader could not grade though the intake accepted them.
    unexpected_failures: list[tuple[str, str]]


def grade(
    course_dir: str | Path,
    intake: Intake,
    *,
    unsafe_no_sandbox: bool = False,
    on_notebook: Callable[[str, str], None] | None = None,
) -> Graded:
    """Autograde what :func:`inspect` accepted, record 0 for what it rejected.

    The accepted submissions of a folder other than the course's ``submitted/`` reach nbgrader
    through a staging copy holding only them; then :func:`.course.autograde` copies them into
    ``submitted/`` and grades them in one nbgrader call. The course's own ``submitted/`` is
    graded in place (nbgrader then fails on the rejected ones, as expected).

    ``unsafe_no_sandbox`` lets nbgrader grade where no sandbox can be made (it sets
    :data:`.execute.UNSAFE_ENVIRONMENT_VARIABLE` for nbgrader, which the course's config reads).
    """
    course_dir = Path(course_dir).resolve()
    submitted_dir = course_dir / "submitted"
    run = None
    if intake.accepted:
        with _environment(UNSAFE_ENVIRONMENT_VARIABLE, "1" if unsafe_no_sandbox else "0"):
            run = _autograde(course_dir, intake, on_notebook)
    in_place = intake.source == submitted_dir.resolve()
    record_zeros(course_dir, intake.rejected, replace_copies=not in_place)
    rejected = {(p.student, p.chapter) for p in intake.rejected}
    unexpected = [pair for pair in (run.failed if run else []) if pair not in rejected]
    return Graded(intake, run, unexpected)


def _autograde(course_dir: Path, intake: Intake, on_notebook) -> AutogradeRun:
    if intake.source == (course_dir / "submitted").resolve():  # graded in place
        return course.autograde(course_dir, on_notebook=on_notebook)
    with tempfile.TemporaryDirectory(prefix="selfattn-intake-") as staging:
        for submission in intake.accepted:
            shutil.copytree(
                submission.path.parent,
                Path(staging) / submission.student / submission.chapter,
                symlinks=True,
            )
        return course.autograde(course_dir, staging, on_notebook=on_notebook)


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable (which nbgrader's subprocess inherits) for a while."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def record_zeros(
    course_dir: str | Path, problems: Iterable[Problem], *, replace_copies: bool = True
) -> None:
    """Write 0 for every task of each rejected ``(student, chapter)`` of the course into the
    gradebook (releasing the chapter first if needed), and remove its stale ``autograded/``
    copy; with ``replace_copies`` also its stale copy in ``submitted/`` (from an earlier run)."""
    course_dir = Path(course_dir)
    known = set(course.chapters(course_dir))
    pairs = sorted({(p.student, p.chapter) for p in problems if p.chapter in known})
    if not pairs:
        return
    unreleased = sorted({chapter for _, chapter in pairs} - course.released_chapters(course_dir))
    if unreleased:
        for run in course.release(course_dir, unreleased):
            if not run.ok:
                raise RuntimeError(f"could not release {', '.join(unreleased)}:\n{run.log}")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        for student, chapter in pairs:
            gradebook.update_or_create_student(student)
            submission = gradebook.update_or_create_submission(chapter, student)
            for notebook in submission.notebooks:
                for grade_row in notebook.grades:
                    grade_row.auto_score = 0
                    grade_row.manual_score = None
                    grade_row.needs_manual_grade = False
            gradebook.db.commit()
    for student, chapter in pairs:
        shutil.rmtree(course_dir / "autograded" / student / chapter, ignore_errors=True)
        if replace_copies:
            shutil.rmtree(course_dir / "submitted" / student / chapter, ignore_errors=True)


# --- reporting -------------------------------------------------------------------------------


def format_problems(problems: Sequence[Problem]) -> str:
    """The lines printed under the score table: what scored 0 and why, then remarks."""
    lines = []
    rejected = [p for p in problems if not p.graded]
    remarks = [p for p in problems if p.graded]
    if rejected:
        lines.append("not graded, 0 points:")
        lines += [f"  {p.student} {p.chapter}: {p.reason}" for p in rejected]
    if remarks:
        lines.append("remarks:")
        lines += [f"  {p.student} {p.chapter}: {p.reason}" for p in remarks]
    return "\n".join(lines)


def write_csv(scores: Iterable[TaskScore], problems: Sequence[Problem], path: str | Path) -> Path:
    """One row per task score (:data:`CSV_COLUMNS`), with the reason where the intake gave one;
    a rejected chapter the gradebook cannot hold (no such chapter) gets one row of 0 of 0."""
    reasons = {(p.student, p.chapter): p.reason for p in problems}
    scored = set()
    rows = []
    for score in scores:
        scored.add((score.student, score.chapter))
        reason = reasons.get((score.student, score.chapter), "")
        rows.append(
            [
                score.student,
                score.chapter,
                score.task,
                _points(score.score),
                _points(score.max_score),
                reason,
            ]
        )
    for problem in problems:
        if (problem.student, problem.chapter) not in scored:
            rows.append([problem.student, problem.chapter, "", "0", "0", problem.reason])
    rows.sort(key=lambda row: (row[0], row[1]))  # stable: tasks keep the notebook's order
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    return path


def _points(value: float) -> str:
    return f"{value:g}"
