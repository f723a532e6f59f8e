"""Scores out of nbgrader's gradebook: per task, as a per-student/per-chapter table, as a CSV.

A :class:`TaskScore` is one graded test cell of one learner's notebook. :func:`gradebook_scores`
reads them, :func:`format_table` prints the summary the instructor looks at first::

    student   ch01    ch02    total
    alice     10/10   7/10    17/20
    bob       3/10    -       3/10

and :func:`write_csv` writes one row per task (``student,chapter,task,score,max_score``) for a
spreadsheet. A ``-`` means no graded submission.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CSV_COLUMNS = ("student", "chapter", "task", "score", "max_score")


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
                        keyed.append(
                            ((student, assignment.name, order.get(grade.name, len(order))), score)
                        )
    return [score for _, score in sorted(keyed, key=lambda pair: pair[0])]


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
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def write_csv(scores: Iterable[TaskScore], path: str | Path) -> Path:
    """Write one row per task score; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for score in scores:
            writer.writerow(
                [
                    score.student,
                    score.chapter,
                    score.task,
                    _points(score.score),
                    _points(score.max_score),
                ]
            )
    return path
