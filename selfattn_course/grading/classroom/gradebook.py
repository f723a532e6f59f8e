"""The one writer of the course's ``gradebook.db``: graded units, and the zeros of rejected ones.

Only the coordinating process writes the real gradebook (SQLite takes one writer), however many
workers grade: :class:`GradebookWriter` stores each :class:`~.units.UnitResult` in one
transaction, together with a row of :data:`UNITS_TABLE` holding the hash of the submitted files.
That row is what makes a rerun resume: a unit whose row holds the same hash is not graded again;
a changed submission is. A run stopped at any point (Ctrl-C, a killed coordinator) leaves every
unit either fully stored with its row, or to be graded by the next run.

A submission the intake rejected, or one whose grading failed, scores an explicit 0 on every
task, so no grade is missing or NULL.

Every learner the writer adds has a name, its id as first name
(:meth:`GradebookWriter.add_learners`), so that the formgrader does not list a learner who was
never added as "None, None".
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selfattn_course.grading.classroom.units import UnitResult, write_folder

#: The coordinator's table in ``gradebook.db``: one row per stored unit.
UNITS_TABLE = "selfattn_graded_units"

# nbgrader's tables that hold learners (emptied in the template a scratch course starts from).
_LEARNER_TABLES = ("grade", "comment", "submitted_notebook", "submitted_assignment", "student")


class GradebookWriter:
    """The coordinator's side of the gradebook (which must exist: a chapter was released)."""

    def __init__(self, course_dir: str | Path):
        self.course_dir = Path(course_dir)
        self.path = self.course_dir / "gradebook.db"
        if not self.path.is_file():
            raise FileNotFoundError(f"no gradebook at {self.path}: release a chapter first")
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

    def template(self) -> bytes:
        """The gradebook's released chapters without any learner: what a scratch course needs."""
        with tempfile.TemporaryDirectory(prefix="selfattn-template-") as scratch:
            copy = Path(scratch) / "gradebook.db"
            with sqlite3.connect(self.path) as source, sqlite3.connect(copy) as target:
                source.backup(target)
                for table in (*_LEARNER_TABLES, UNITS_TABLE):
                    target.execute(f"DELETE FROM {table}")
            with sqlite3.connect(copy) as target:
                target.execute("VACUUM")
            return copy.read_bytes()

    def store(self, result: UnitResult, files: dict[str, bytes] | None) -> None:
        """Store ``result`` and the submitted ``files``: the copies in ``submitted/`` and
        ``autograded/`` first, then the grades and the unit's row in one transaction. A failed
        unit scores 0 on every task, with its reason in the row. ``files`` None: the unit was
        graded in place (``submitted/`` is where it came from)."""
        from sqlalchemy import text

        if files is not None:
            write_folder(files, self.course_dir / "submitted" / result.student / result.chapter)
        autograded = self.course_dir / "autograded" / result.student / result.chapter
        if result.ok:
            write_folder(result.autograded, autograded)
        else:
            shutil.rmtree(autograded, ignore_errors=True)
        with self._gradebook() as gradebook:
            try:
                submission = _submission(gradebook, result.student, result.chapter)
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if result.ok:
                            key = (notebook.name, grade.name)
                            grade.auto_score, grade.needs_manual_grade = result.grades.get(
                                key, (None, True)
                            )
                            grade.manual_score = None
                        else:
                            _zero(grade)
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
                        student=result.student,
                        chapter=result.chapter,
                        sha=result.files_sha256,
                        reason=None if result.ok else result.reason,
                        at=time.time(),
                    ),
                )
                gradebook.db.commit()
            except BaseException:
                gradebook.db.rollback()
                raise

    def add_learners(self, student_ids: Iterable[str]) -> None:
        """Add each learner the gradebook lacks, with its id as first name; give a learner with
        no name at all (added by nbgrader itself) its id as first name too."""
        with self._gradebook() as gradebook:
            for student in sorted(set(student_ids)):
                _learner(gradebook, student)
            gradebook.db.commit()

    def record_zeros(
        self, pairs: Iterable[tuple[str, str]], *, remove_submitted: bool = True
    ) -> None:
        """Score 0 on every task of each ``(student, chapter)`` (a rejected submission; its
        chapter is released), forget its unit row, and remove its stale ``autograded/`` copy;
        with ``remove_submitted`` also its stale copy in ``submitted/`` (from an earlier run)."""
        pairs = sorted(set(pairs))
        if not pairs:
            return
        with self._gradebook() as gradebook:
            for student, chapter in pairs:
                for notebook in _submission(gradebook, student, chapter).notebooks:
                    for grade in notebook.grades:
                        _zero(grade)
            gradebook.db.commit()
        with sqlite3.connect(self.path) as db:
            db.executemany(f"DELETE FROM {UNITS_TABLE} WHERE student = ? AND chapter = ?", pairs)
        for student, chapter in pairs:
            shutil.rmtree(self.course_dir / "autograded" / student / chapter, ignore_errors=True)
            if remove_submitted:
                shutil.rmtree(self.course_dir / "submitted" / student / chapter, ignore_errors=True)

    @contextmanager
    def _gradebook(self) -> Iterator:
        """nbgrader's ``Gradebook`` on this file, without its warning about its own autoflush
        (``update_or_create_submission`` triggers it; it is harmless)."""
        from nbgrader.api import Gradebook
        from sqlalchemy.exc import SAWarning

        with warnings.catch_warnings(), Gradebook(f"sqlite:///{self.path}") as gradebook:
            warnings.simplefilter("ignore", SAWarning)
            yield gradebook


def _learner(gradebook, student: str):
    """The learner ``student``, added with its id as first name if missing; one with no name
    gets its id as first name (an instructor's names stay)."""
    from nbgrader.api import MissingEntry

    try:
        learner = gradebook.find_student(student)
    except MissingEntry:
        return gradebook.add_student(student, first_name=student)
    if learner.first_name is None and learner.last_name is None:
        learner.first_name = student
    return learner


def _submission(gradebook, student: str, chapter: str):
    _learner(gradebook, student)
    return gradebook.update_or_create_submission(chapter, student)


def _zero(grade) -> None:
    grade.auto_score, grade.manual_score, grade.needs_manual_grade = 0, None, False
