"""The course directory and the nbgrader commands on it: release, feedback.

The course directory is where ``nbgrader_config.py`` lives (the repository root): ``solutions/``,
``exercises/``, and nbgrader's ``submitted/``, ``autograded/``, ``feedback/`` and
``gradebook.db``. The chapters (one nbgrader assignment each, ``ch01``, ``ch02``, ...) are listed
by that config file under ``SelfattnCourse.assignments``.

nbgrader runs in a subprocess, the way an instructor runs it
(:func:`~selfattn_course.grading.autograde.nbgrader_command.run_nbgrader`). Grading a folder of
submissions is :mod:`.pipeline`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfattn_course.grading.autograde.nbgrader_command import NbgraderCommand, run_nbgrader

# Control characters, C0 and C1 (DEL included), but for newline and tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab shown as U+FFFD.

    What the grader prints or writes can hold a learner's words (a folder name, an error message,
    nbgrader's log of their notebook): an escape sequence there would drive the instructor's
    terminal (colours, cursor moves, an OSC 8 link, a changed window title). With its ESC (or
    C1 introducer) replaced, the rest of a sequence is plain, harmless text.
    """
    return _CONTROL.sub("\ufffd", text)


CONFIG_FILE = "nbgrader_config.py"
CHAPTER = re.compile(r"^ch\d\d$")
ALL_CHAPTERS_GLOB = "ch[0-9][0-9]"


@dataclass(frozen=True)
class Submission:
    """One learner's notebook for one chapter, at
    ``<submissions>/<student>/<chapter>/<chapter>.ipynb``."""

    student: str
    chapter: str
    path: Path


def find_course_dir(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding
    ``nbgrader_config.py`` and ``solutions/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file() and (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(
        f"no course directory ({CONFIG_FILE} next to solutions/) at or above {here}"
    )


def load_config(course_dir: str | Path):
    """The traitlets ``Config`` of the course's ``nbgrader_config.py`` (it runs the file)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config()


def chapters(course_dir: str | Path) -> list[str]:
    """The course's assignments, ``["ch01", "ch02", ...]``, as its ``nbgrader_config.py``
    lists them."""
    config = load_config(course_dir)
    listed = config.SelfattnCourse.get("assignments")
    if listed is None:
        raise ValueError(
            f"{Path(course_dir) / CONFIG_FILE} does not set c.SelfattnCourse.assignments"
        )
    return list(listed)


def select_chapters(course_dir: str | Path, requested: Iterable[str] | None) -> list[str]:
    """``requested`` (all chapters when None or empty), each checked to be one of the course's."""
    known = chapters(course_dir)
    requested = list(requested or known)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ValueError(
            f"unknown chapter(s) {', '.join(unknown)}; the course has {', '.join(known) or 'none'}"
        )
    return requested


def _assignment_globs(course_dir: str | Path, selected: Sequence[str]) -> list[str]:
    """One glob for all chapters (one nbgrader call), else each chapter's own name."""
    if sorted(selected) == sorted(chapters(course_dir)):
        return [ALL_CHAPTERS_GLOB]
    return list(selected)


# --- release --------------------------------------------------------------------------------------


def release(course_dir: str | Path, selected: Iterable[str] | None = None) -> list[NbgraderCommand]:
    """``nbgrader generate_assignment`` for the chapters (default all): writes ``exercises/chNN``
    and records each chapter's cells in the gradebook."""
    selected = select_chapters(course_dir, selected)
    return [
        run_nbgrader(course_dir, ["generate_assignment", pattern, "--force"])
        for pattern in _assignment_globs(course_dir, selected)
    ]


def released_chapters(course_dir: str | Path) -> set[str]:
    """Chapters the gradebook knows, with their notebooks (what autograde needs)."""
    if not (Path(course_dir) / "gradebook.db").exists():
        return set()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{Path(course_dir) / 'gradebook.db'}") as gradebook:
        return {assignment.name for assignment in gradebook.assignments if assignment.notebooks}


def release_missing(course_dir: str | Path, wanted: Iterable[str]) -> list[str]:
    """Release those of the ``wanted`` chapters the gradebook lacks (grading needs them there);
    returns them.

    Raises:
        RuntimeError: nbgrader could not release one (its log is in the message).
    """
    missing = sorted(set(wanted) - released_chapters(course_dir))
    if missing:
        failed = [command for command in release(course_dir, missing) if not command.ok]
        if failed:
            raise RuntimeError(
                f"could not release {', '.join(missing)} in {course_dir}:\n"
                + "\n".join(command.log for command in failed)
            )
    return missing


# --- feedback -------------------------------------------------------------------------------------


def feedback(
    course_dir: str | Path, selected: Iterable[str] | None = None
) -> list[NbgraderCommand]:
    """``nbgrader generate_feedback`` for the chapters (default all): HTML in ``feedback/``."""
    selected = select_chapters(course_dir, selected)
    return [
        run_nbgrader(course_dir, ["generate_feedback", pattern, "--force"])
        for pattern in _assignment_globs(course_dir, selected)
    ]
