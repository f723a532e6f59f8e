"""Scores out of nbgrader's gradebook, and what ``selfattn-course grade`` prints and writes.

A :class:`TaskScore` is one graded test cell of one learner's notebook. :func:`gradebook_scores`
reads them, :func:`format_table` prints the summary the instructor looks at first::

    student   ch01    ch02    total
    alice     10/10   7/10    17/20
    bob       3/10    -       3/10

(``-``: no graded submission), :func:`format_problems` the lines under it (what scored 0 and
why, then remarks), and :func:`write_csv` writes one row per task for a spreadsheet
(:data:`CSV_COLUMNS`). Every task that lost points has a reason there: why its submission was
not graded, or what its test cell in the autograded notebook says (:func:`task_reasons`: the
grader's verdict, e.g. tampering, a forbidden call, a wrong result, or why the cell stopped:
a timeout, a crash). :func:`report_grading` does all of
that for one grading of a class (:class:`~.pipeline.ClassGrading`), whatever pool graded it.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from selfattn_course.grading.classroom.course import printable
from selfattn_course.grading.classroom.intake import Problem
from selfattn_course.grading.classroom.pipeline import ClassGrading

CSV_COLUMNS = ("student", "chapter", "task", "score", "max_score", "reason")
#: Lines of nbgrader's log shown for a submission it could not grade.
LOG_TAIL_LINES = 30
#: Most characters of one task's reason in the CSV.
MAX_REASON_CHARS = 600
#: The reason of a task that lost points but whose test cell shows no error.
NO_ERROR_SHOWN = "its autograded test cell shows no error to say why it lost points"


@dataclass(frozen=True)
class TaskScore:
    """The autograded score of one task (test cell) in one learner's notebook."""

    student: str
    chapter: str
    task: str
    score: float
    max_score: float


def gradebook_scores(
    course_dir: str | Path, pairs: Iterable[tuple[str, str]] | None = None
) -> list[TaskScore]:
    """Every autograded task score in the course's gradebook, or only those of the
    ``(student, chapter)`` pairs given, sorted by student, chapter and notebook order."""
    from nbgrader.api import Gradebook

    wanted = None if pairs is None else set(pairs)
    keyed = []
    with Gradebook(f"sqlite:///{Path(course_dir) / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                student = submission.student.id
                if wanted is not None and (student, assignment.name) not in wanted:
                    continue
                for notebook in submission.notebooks:
                    order = {cell.name: i for i, cell in enumerate(notebook.notebook.grade_cells)}
                    for grade in notebook.grades:
                        score = TaskScore(
                            student,
                            assignment.name,
                            grade.name,
                            float(grade.score),
                            float(grade.max_score),
                        )
                        at = order.get(grade.name, len(order))
                        keyed.append(((student, assignment.name, at), score))
    return [score for _, score in sorted(keyed, key=lambda pair: pair[0])]


def task_reasons(
    course_dir: str | Path, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str, str], str]:
    """``(student, chapter, task) -> reason`` for each test cell of the autograded notebooks of
    ``pairs`` that shows an error: the first error's message on one line (the grader's verdict
    for a hidden check; the reason the grader stopped or did not run the cell; or the error the
    cell raised)."""
    from selfattn_course.grading import notebooks

    reasons = {}
    for student, chapter in pairs:
        folder = Path(course_dir) / "autograded" / student / chapter
        for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else ():
            for cell in notebooks.graded_cells(notebooks.read(path)):
                task = notebooks.nbgrader_meta(cell).get("grade_id")
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if task and errors:
                    reasons[(student, chapter, task)] = _one_line(errors[0])
    return reasons


def _one_line(error) -> str:
    """An error output as one line: the message alone for a check that failed (it names the
    task), else ``Name: message``."""
    from selfattn_course.grading.errors import CheckFailed

    name, message = str(error.get("ename", "")), str(error.get("evalue", ""))
    text = message if name == CheckFailed.__name__ else f"{name}: {message}"
    line = printable(" ".join(part.strip() for part in text.splitlines() if part.strip()))
    if len(line) > MAX_REASON_CHARS:
        line = line[: MAX_REASON_CHARS - 3].rstrip() + "..."
    return line


def totals(scores: Iterable[TaskScore]) -> dict[tuple[str, str], tuple[float, float]]:
    """``(student, chapter) -> (score, max_score)``."""
    summed: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for score in scores:
        entry = summed[(score.student, score.chapter)]
        entry[0] += score.score
        entry[1] += score.max_score
    return {key: (value[0], value[1]) for key, value in summed.items()}


def _points(value: float) -> str:
    return f"{value:g}"


def format_table(scores: Sequence[TaskScore]) -> str:
    """One row per student, one column per chapter (``score/max``), and a total column."""
    per_pair = totals(scores)
    students = sorted({student for student, _ in per_pair})
    chapter_names = sorted({chapter for _, chapter in per_pair})
    header = ["student", *chapter_names, "total"]
    rows = [header]
    for student in students:
        row = [student]
        got = possible = 0.0
        for chapter in chapter_names:
            if (student, chapter) in per_pair:
                score, max_score = per_pair[(student, chapter)]
                got, possible = got + score, possible + max_score
                row.append(f"{_points(score)}/{_points(max_score)}")
            else:
                row.append("-")
        row.append(f"{_points(got)}/{_points(possible)}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


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


def write_csv(
    scores: Iterable[TaskScore],
    path: str | Path,
    problems: Sequence[Problem] = (),
    task_reasons: Mapping[tuple[str, str, str], str] | None = None,
) -> Path:
    """One row per task score (:data:`CSV_COLUMNS`). Its reason: the problem of its learner's
    chapter (why it was not graded, or a remark), then, when a graded task lost points, its own
    reason from ``task_reasons`` (:func:`task_reasons`; :data:`NO_ERROR_SHOWN` when there is
    none), so every task below full marks has one. A problem the gradebook holds no
    score for (no such chapter) gets one row of 0 of 0. Returns the path."""
    by_pair = {(p.student, p.chapter): p for p in problems}
    task_reasons = task_reasons or {}
    scored = set()
    rows = []
    for score in scores:
        pair = (score.student, score.chapter)
        scored.add(pair)
        problem = by_pair.get(pair)
        parts = [problem.reason] if problem else []
        if score.score < score.max_score and (problem is None or problem.graded):
            parts.append(task_reasons.get((*pair, score.task)) or NO_ERROR_SHOWN)
        reason = "; ".join(parts)
        points = [_points(score.score), _points(score.max_score)]
        rows.append([score.student, score.chapter, score.task, *points, reason])
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


def report_grading(
    grading: ClassGrading,
    course_dir: str | Path,
    csv_path: str | Path,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the table, the problems and the run's summary on ``out``, write the CSV, and say on
    ``err`` what could not be graded (with nbgrader's log where it had one). Returns the exit
    code of ``selfattn-course grade``: 1 when something scores 0 for not being graded, else 0."""
    out = out or sys.stdout
    err = err or sys.stderr
    problems = grading.problems
    scores = gradebook_scores(course_dir, grading.intake.pairs)
    print(printable(format_table(scores)), file=out)
    if problems:
        print(printable(format_problems(problems)), file=out)
    reasons = task_reasons(course_dir, grading.intake.pairs)
    print(f"per-task scores: {write_csv(scores, csv_path, problems, reasons)}", file=out)
    print(grading.summary.format(), file=out)
    for problem in grading.not_graded:
        log = grading.logs.get((problem.student, problem.chapter), "")
        if log:
            tail = "".join(log.splitlines(keepends=True)[-LOG_TAIL_LINES:])
            where = f"{problem.student}/{problem.chapter}"
            print(printable(f"--- the end of nbgrader's log for {where} ---"), file=err)
            err.write(printable(tail if tail.endswith("\n") else tail + "\n"))
        where = f"{problem.student}/{problem.chapter}"
        print(printable(f"could not grade {where}: {problem.reason}; it scores 0"), file=err)
    return 1 if grading.not_graded else 0
