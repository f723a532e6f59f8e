"""The course directory and the nbgrader runs on it: release, autograde, feedback.

The course directory is where ``nbgrader_config.py`` lives (the repository root): ``solutions/``,
``exercises/``, and nbgrader's ``submitted/``, ``autograded/``, ``feedback/`` and
``gradebook.db``. The chapters (one nbgrader assignment each, ``ch01``, ``ch02``, ...) are listed
by that config file under ``SelfattnCourse.assignments``.

nbgrader runs in a subprocess (``python -m nbgrader ...``), the way an instructor runs it, with the
virtual environment's ``bin/`` first on ``PATH``: nbgrader shells out to ``alembic``, and the
``python3`` kernel it starts is found on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = "nbgrader_config.py"
CHAPTER = re.compile(r"^ch\d\d$")
ALL_CHAPTERS_GLOB = "ch[0-9][0-9]"


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


def chapters(course_dir: str | Path) -> list[str]:
    """The course's assignments, ``["ch01", "ch02", ...]``, as its ``nbgrader_config.py`` lists them."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE, path=str(course_dir)).load_config()
    listed = config.SelfattnCourse.get("assignments")
    if listed is None:
        raise ValueError(
            f"{Path(course_dir) / CONFIG_FILE} does not set c.SelfattnCourse.assignments"
        )
    return list(listed)


def check_chapters(course_dir: str | Path, requested: Iterable[str] | None) -> list[str]:
    """``requested`` (all chapters when None or empty), each checked to be one of the course's."""
    known = chapters(course_dir)
    requested = list(requested or known)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ValueError(
            f"unknown chapter(s) {', '.join(unknown)}; the course has {', '.join(known) or 'none'}"
        )
    return requested


def tool_env() -> dict[str, str]:
    """The environment for nbgrader and kernels: this interpreter's ``bin/`` first on ``PATH``."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class NbgraderRun:
    """One nbgrader command: its arguments, exit code and log (stdout and stderr together)."""

    args: list[str]
    returncode: int
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_nbgrader(
    course_dir: str | Path, args: Sequence[str], *, on_line: Callable[[str], None] | None = None
) -> NbgraderRun:
    """Run ``python -m nbgrader *args`` in ``course_dir``; ``on_line`` sees each log line as it comes."""
    command = [sys.executable, "-m", "nbgrader", *args]
    process = subprocess.Popen(
        command,
        cwd=str(course_dir),
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if on_line is not None:
            on_line(line)
    return NbgraderRun(list(args), process.wait(), "".join(lines))


def _assignment_globs(course_dir: str | Path, selected: Sequence[str]) -> list[str]:
    """One glob for all chapters (one nbgrader call), else each chapter's own name."""
    if sorted(selected) == sorted(chapters(course_dir)):
        return [ALL_CHAPTERS_GLOB]
    return list(selected)


# --- release --------------------------------------------------------------------------------------


def release(course_dir: str | Path, selected: Iterable[str] | None = None) -> list[NbgraderRun]:
    """``nbgrader generate_assignment`` for the chapters (default all): writes ``exercises/chNN``
    and records each chapter's cells in the gradebook."""
    selected = check_chapters(course_dir, selected)
    return [
        run_nbgrader(course_dir, ["generate_assignment", pattern, "--force"])
        for pattern in _assignment_globs(course_dir, selected)
    ]


def released_copy(
    source: str | Path,
    course_dir: str | Path,
    chapters: Sequence[str],
    *,
    config_text: str | None = None,
    extra_config: str = "",
) -> Path:
    """A new course in ``course_dir``, released: ``source``'s config (or ``config_text``) with
    ``extra_config`` appended, and ``source``'s solutions of ``chapters``. A scratch course to
    grade in without touching ``source``'s gradebook (the tests and the benchmarks use it).

    Raises:
        RuntimeError: nbgrader could not release a chapter (its log is in the message).
    """
    course_dir = Path(course_dir)
    (course_dir / "solutions").mkdir(parents=True)
    if config_text is None:
        config_text = (Path(source) / CONFIG_FILE).read_text()
    (course_dir / CONFIG_FILE).write_text(config_text + extra_config)
    for chapter in chapters:
        shutil.copytree(Path(source) / "solutions" / chapter, course_dir / "solutions" / chapter)
    failed = [run for run in release(course_dir, chapters) if not run.ok]
    if failed:
        raise RuntimeError(
            f"could not release {', '.join(chapters)} in {course_dir}:\n"
            + "\n".join(run.log for run in failed)
        )
    return course_dir


def released_chapters(course_dir: str | Path) -> set[str]:
    """Chapters the gradebook knows, with their notebooks (what autograde needs)."""
    if not (Path(course_dir) / "gradebook.db").exists():
        return set()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{Path(course_dir) / 'gradebook.db'}") as gradebook:
        return {assignment.name for assignment in gradebook.assignments if assignment.notebooks}


# --- autograde ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One learner's notebook for one chapter: ``<submissions>/<student>/<chapter>/<chapter>.ipynb``."""

    student: str
    chapter: str
    path: Path


def find_submissions(submissions_dir: str | Path) -> list[Submission]:
    """Every ``<student>/<chNN>/<chNN>.ipynb`` under ``submissions_dir``, sorted."""
    found = []
    for path in sorted(Path(submissions_dir).glob("*/ch[0-9][0-9]/ch[0-9][0-9].ipynb")):
        if path.stem == path.parent.name:
            found.append(
                Submission(student=path.parent.parent.name, chapter=path.parent.name, path=path)
            )
    return found


@dataclass
class AutogradeRun:
    """What :func:`autograde` did: the submissions, the nbgrader runs, and the ones that failed."""

    submissions: list[Submission]
    runs: list[NbgraderRun] = field(default_factory=list)
    #: ``(student, chapter)`` pairs nbgrader could not grade (a broken notebook, a dead kernel).
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and all(run.ok for run in self.runs)


# The two lines of nbgrader's (0.9) log that autograde reads: a submission it could not grade,
# and a notebook it starts to run.
_FAILED = re.compile(
    r"There was an error processing assignment: .*[\\/](?P<student>[^\\/]+)[\\/](?P<chapter>ch\d\d)\s*$"
)
_STARTED = re.compile(
    r"Autograding .*[\\/](?P<student>[^\\/]+)[\\/](?P<chapter>ch\d\d)[\\/][^\\/]+\.ipynb\s*$"
)


def autograde(
    course_dir: str | Path,
    submissions_dir: str | Path | None = None,
    *,
    on_notebook: Callable[[str, str], None] | None = None,
) -> AutogradeRun:
    """Autograde every submission in ``submissions_dir`` (default: the course's ``submitted/``).

    Submissions from elsewhere are copied into the course's ``submitted/`` first. Each one's old
    ``autograded/`` copy is removed, then one ``nbgrader autograde`` call grades them all (nbgrader
    grades what has no autograded copy). Chapters missing from the gradebook are released first.
    ``on_notebook(student, chapter)`` is called as each notebook starts (for a progress bar).
    """
    course_dir = Path(course_dir).resolve()
    submitted_dir = course_dir / "submitted"
    source_dir = Path(submissions_dir).resolve() if submissions_dir is not None else submitted_dir
    submissions = find_submissions(source_dir)
    result = AutogradeRun(submissions)
    if not submissions:
        return result
    selected = check_chapters(course_dir, sorted({s.chapter for s in submissions}))

    if source_dir != submitted_dir:
        for submission in submissions:
            target = submitted_dir / submission.student / submission.chapter
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(submission.path.parent, target)
    for submission in submissions:
        shutil.rmtree(
            course_dir / "autograded" / submission.student / submission.chapter, ignore_errors=True
        )

    unreleased = [chapter for chapter in selected if chapter not in released_chapters(course_dir)]
    if unreleased:
        result.runs += release(course_dir, unreleased)

    def on_line(line: str) -> None:
        failed = _FAILED.search(line)
        if failed:
            result.failed.append((failed["student"], failed["chapter"]))
        started = _STARTED.search(line)
        if started and on_notebook is not None:
            on_notebook(started["student"], started["chapter"])

    for pattern in _assignment_globs(course_dir, selected):
        result.runs.append(run_nbgrader(course_dir, ["autograde", pattern], on_line=on_line))
    return result


# --- feedback -------------------------------------------------------------------------------------


def feedback(course_dir: str | Path, selected: Iterable[str] | None = None) -> list[NbgraderRun]:
    """``nbgrader generate_feedback`` for the chapters (default all): HTML in ``feedback/``."""
    selected = check_chapters(course_dir, selected)
    return [
        run_nbgrader(course_dir, ["generate_feedback", pattern, "--force"])
        for pattern in _assignment_globs(course_dir, selected)
    ]
