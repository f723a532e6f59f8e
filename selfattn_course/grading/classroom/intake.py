"""Intake: look at a folder of submissions before nbgrader does.

A submission is ``<student>/<chNN>/<chNN>.ipynb``. What else :func:`inspect` may find, the
reason it gives, and the outcome:

- a ``chNN.ipynb`` that is not a notebook (bad JSON, not nbformat 4, larger than
  :data:`MAX_NOTEBOOK_BYTES`, a cell's source larger than :data:`MAX_CELL_SOURCE_BYTES`):
  "ch02.ipynb is not a valid notebook: bad JSON at line 150 column 5: ..."; 0 points;
- no ``chNN.ipynb`` but another notebook: "no ch02.ipynb (found ch02-Copy1.ipynb): name it
  ch02.ipynb"; 0 points;
- no notebook at all: "no ch02.ipynb in alice/ch02"; 0 points;
- a symbolic link or another special file anywhere in the folder (a link could point at the
  course's files, and copying follows it): "alice/ch02 holds a symbolic link (data.txt): ...";
  0 points;
- a folder whose files add up to more than :data:`MAX_FOLDER_BYTES` (sizes as the file system
  states them, nothing read; nbgrader would copy every file, a sparse one densely): "alice/ch02
  holds 1024 MiB of files, more than 64 MiB"; 0 points;
- anything else that makes reading the folder or the notebook fail (a notebook nested so deep
  that the JSON parser gives up, an unreadable file): "alice/ch02 could not be read:
  RecursionError ..."; 0 points, and the rest of the class is inspected as usual;
- a ``chNN.ipynb`` right in the student's folder: "ch02.ipynb must be in alice/ch02/, not in
  alice/"; 0 points;
- a folder for no chapter of the course: "ch31 is not a chapter of this course (it has ...)";
  a row of 0 of 0 (the gradebook has no such chapter);
- ``chNN.ipynb`` and another notebook beside it: "not graded: notes.ipynb (only ch02.ipynb is)";
  ``chNN.ipynb`` is graded as usual.

The :class:`Intake` it returns is what :func:`.pipeline.grade_class` grades (the accepted
submissions) and scores 0 (the rejected ones); its :class:`Problem` list carries the reasons to
the table and the CSV (:mod:`.report`). The submitted files are only read, never changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfattn_course.grading.autograde.plain_files import unsafe_entries
from selfattn_course.grading.classroom.course import CHAPTER, Submission

#: A notebook larger than this is refused before anything reads it into memory (a graded one
#: keeps at most 16 MiB of outputs: c.GradingExecute.max_notebook_output_bytes).
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024
#: A cell whose source is larger than this is refused (the course's cells hold a few KiB; a
#: 4 MiB code cell made nbgrader's own process use 2.8 GiB while it checked the notebook).
MAX_CELL_SOURCE_BYTES = 256 * 1024
#: A chapter folder whose files add up to more than this is refused (nothing of it is read).
MAX_FOLDER_BYTES = 64 * 1024 * 1024


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
                try:
                    _inspect_chapter(intake, student, chapter_dir, chapters)
                except Exception as error:  # one learner's folder never stops the class
                    reason = f"{student}/{chapter_dir.name} could not be read: {_describe(error)}"
                    intake.problems.append(Problem(student, chapter_dir.name, reason))
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
    size = _folder_bytes(folder)
    if size > MAX_FOLDER_BYTES:
        reason = (
            f"{where} holds {size / 2**20:.0f} MiB of files, more than "
            f"{MAX_FOLDER_BYTES // 2**20} MiB"
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


def _folder_bytes(folder: Path) -> int:
    """The sizes of every file under ``folder``, added up from ``stat`` (no file is opened).

    Both the stated size and the blocks allocated count (the larger of the two), so a sparse
    file, small on disk but copied densely, counts at its full size."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            total += max(info.st_size, getattr(info, "st_blocks", 0) * 512)
    return total


def _describe(error: BaseException) -> str:
    """``"RecursionError: maximum recursion depth exceeded"``, on one line, at most 200 chars."""
    text = (
        f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    )
    return text[:200]


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
    except RecursionError:
        return "its JSON is nested too deeply to read"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return "it is JSON but not a notebook (no list of cells)"
    if data.get("nbformat") != 4:
        return f"it is nbformat {data.get('nbformat')!r}; Jupyter's is 4"
    for number, cell in enumerate(data["cells"], start=1):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        size = len(("".join(source) if isinstance(source, list) else str(source)).encode())
        if size > MAX_CELL_SOURCE_BYTES:
            return (
                f"cell {number} holds {size / 1024:.0f} KiB of source, more than "
                f"{MAX_CELL_SOURCE_BYTES // 1024} KiB"
            )
    try:
        nbformat.validate(nbformat.reads(raw.decode("utf-8"), as_version=4))
    except Exception as error:  # nbformat raises several kinds
        return f"it does not follow the notebook format: {str(error).splitlines()[0]}"
    return None
