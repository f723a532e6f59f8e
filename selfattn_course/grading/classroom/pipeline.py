"""Grading a class: one pipeline, whatever the pool (one local worker, N, or a Dask cluster).

``selfattn-course grade SUBMISSIONS`` (with or without ``--workers`` or ``--scheduler``) runs
:func:`grade_folder`:

1. the intake sorts the folder into accepted submissions and problems (:mod:`.intake`);
2. the chapters the gradebook lacks are released (:func:`.course.release_missing`), every
   learner found (there, or in the course's ``submitted/``) is in the gradebook with a name
   (:meth:`.GradebookWriter.add_learners`), and every rejected submission scores 0 on every
   task (:meth:`.GradebookWriter.record_zeros`);
3. each accepted submission becomes a :class:`~.units.Unit`; one whose files have not changed
   since it was last stored is skipped (``force`` regrades all);
4. the pool grades the units in batches (:mod:`.pools`, :func:`.units.grade_units`) and this
   process stores each result as it comes (:class:`~.gradebook.GradebookWriter`, the one writer);

and returns a :class:`ClassGrading`, which :func:`.report.report_grading` prints.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from selfattn_course.grading.classroom import course, intake
from selfattn_course.grading.classroom.course import CONFIG_FILE
from selfattn_course.grading.classroom.gradebook import GradebookWriter
from selfattn_course.grading.classroom.intake import Intake, Problem
from selfattn_course.grading.classroom.pools import ATTEMPTS, DaskPool, LocalPool
from selfattn_course.grading.classroom.progress import RateProgress
from selfattn_course.grading.classroom.units import GradingContext, Unit, UnitResult


@dataclass
class Summary:
    """What one grading of a class did, and how fast."""

    workers: str
    graded: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    seconds: float = 0.0
    unit_seconds: list[float] = field(default_factory=list)
    #: Seconds the workers spent on each chapter's units (their batches' time, shared out).
    chapter_seconds: dict[str, float] = field(default_factory=dict)

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


@dataclass
class ClassGrading:
    """What :func:`grade_class` did: the intake, the summary, the units whose grading failed
    (each a :class:`~.intake.Problem` that scores 0; or, with ``graded=True``, a remark on a unit
    graded twice while the machine was too busy) and nbgrader's log of each failed one."""

    intake: Intake
    summary: Summary
    failed: list[Problem] = field(default_factory=list)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def problems(self) -> list[Problem]:
        """The intake's problems and the failed units, by learner and chapter."""
        found = [*self.intake.problems, *self.failed]
        return sorted(found, key=lambda p: (p.student, p.chapter, p.graded))

    @property
    def not_graded(self) -> list[Problem]:
        """What scores 0 because it was not graded: rejected by the intake, or failed."""
        return [*self.intake.rejected, *(problem for problem in self.failed if not problem.graded)]


def grade_folder(
    course_dir: str | Path,
    submissions_dir: str | Path,
    pool: LocalPool | DaskPool,
    *,
    force: bool = False,
    unsafe_no_sandbox: bool = False,
    progress_stream: TextIO | None = None,
) -> ClassGrading:
    """Inspect ``submissions_dir`` (``<student>/<chNN>/<chNN>.ipynb``) and grade it
    (:func:`grade_class`), after making sure the submissions' code can be sandboxed and a
    sandboxed kernel imports the package and its tasks (once, here).

    Raises:
        FileNotFoundError: no submission there.
        SandboxUnavailable: no sandbox can be made here and ``unsafe_no_sandbox`` is off, or a
            sandboxed kernel cannot import the package (nothing was written).
    """
    from selfattn_course.grading.autograde import execute, sandbox

    course_dir = Path(course_dir).resolve()
    found = intake.inspect(submissions_dir, course.chapters(course_dir))
    if not found.pairs:
        raise FileNotFoundError(
            f"no submissions <student>/<chNN>/<chNN>.ipynb under {submissions_dir}"
        )
    available, why_not = sandbox.sandbox_available()
    if not available and not unsafe_no_sandbox:
        raise sandbox.SandboxUnavailable(f"cannot sandbox student code: {why_not}")
    if not available:
        print("selfattn-course grade: WARNING: grading WITHOUT a sandbox", file=sys.stderr)
    else:
        problem = execute.grading_import_problem(course.load_config(course_dir))
        if problem is not None:
            raise sandbox.SandboxUnavailable(problem)
    return grade_class(
        course_dir,
        found,
        pool,
        force=force,
        unsafe_no_sandbox=unsafe_no_sandbox,
        progress_stream=progress_stream,
    )


def grade_class(
    course_dir: str | Path,
    found: Intake,
    pool: LocalPool | DaskPool,
    *,
    force: bool = False,
    unsafe_no_sandbox: bool = False,
    progress_stream: TextIO | None = None,
) -> ClassGrading:
    """Grade what the intake ``found`` accepted through ``pool``, store every result here, and
    record 0 for what it rejected (steps 2-4 of the module's list)."""
    course_dir = Path(course_dir).resolve()
    started = time.perf_counter()
    summary = Summary(pool.description)
    grading = ClassGrading(found, summary)
    known = set(course.chapters(course_dir))
    rejected = {(p.student, p.chapter) for p in found.rejected if p.chapter in known}
    wanted = {s.chapter for s in found.accepted} | {chapter for _, chapter in rejected}
    if not wanted:  # nothing the gradebook could hold
        return grading
    course.release_missing(course_dir, wanted)
    writer = GradebookWriter(course_dir)
    writer.add_learners({student for student, _ in found.pairs} | _submitted_learners(course_dir))
    in_place = found.source == (course_dir / "submitted").resolve()
    writer.record_zeros(rejected, remove_submitted=not in_place)

    stored = writer.stored()
    units = []
    for submission in found.accepted:
        unit = Unit.from_submission(submission, trust_timestamp=in_place)
        previous = stored.get((unit.student, unit.chapter))
        if not force and previous is not None and previous[0] == unit.files_sha256:
            summary.skipped += 1
            if previous[1] is not None:  # it failed then, and still scores 0 for it
                grading.failed.append(Problem(unit.student, unit.chapter, previous[1]))
            continue
        units.append(unit)

    if units:
        config_text = (course_dir / CONFIG_FILE).read_text()
        context = GradingContext(config_text, writer.template(), unsafe_no_sandbox)
        progress = RateProgress(len(units), stream=progress_stream)
        store = _storer(writer, {unit.name: unit for unit in units}, in_place, grading, progress)
        try:
            pool.grade(units, context, store)
        finally:
            progress.close()
    summary.seconds = time.perf_counter() - started
    grading.failed.sort(key=lambda p: (p.student, p.chapter))
    return grading


def _submitted_learners(course_dir: Path) -> set[str]:
    """The learners with a folder in the course's ``submitted/`` (nbgrader collect, or an
    earlier grading), so that each has a name in the gradebook."""
    submitted = course_dir / "submitted"
    if not submitted.is_dir():
        return set()
    return {
        folder.name
        for folder in submitted.iterdir()
        if folder.is_dir() and not folder.name.startswith(".")
    }


def _storer(
    writer: GradebookWriter,
    units: dict[str, Unit],
    in_place: bool,
    grading: ClassGrading,
    progress: RateProgress,
) -> Callable[[UnitResult, int], None]:
    """The pool's ``on_result``: store each final result and count it."""
    summary = grading.summary

    def on_result(result: UnitResult, attempt: int) -> None:
        if result.worth_retrying and attempt < ATTEMPTS:
            summary.retried += 1
            return
        writer.store(result, None if in_place else units[result.name].files)
        summary.unit_seconds.append(result.seconds)
        chapter_total = summary.chapter_seconds.get(result.chapter, 0.0)
        summary.chapter_seconds[result.chapter] = chapter_total + result.seconds
        if result.ok:
            summary.graded += 1
            if result.starved is not None:  # twice: kept, and the instructor is told
                remark = f"graded twice while the machine was too busy ({result.starved})"
                grading.failed.append(Problem(result.student, result.chapter, remark, graded=True))
        else:
            summary.failed += 1
            grading.failed.append(
                Problem(result.student, result.chapter, result.reason or "failed")
            )
            if result.log:
                grading.logs[(result.student, result.chapter)] = result.log
        progress.advance(course.printable(f"{result.student} {result.chapter}"))

    return on_result
