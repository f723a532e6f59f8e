"""Running nbgrader as an instructor does: ``python -m nbgrader ...`` in a subprocess.

:func:`run_nbgrader` runs one command in a course folder and returns an :class:`NbgraderCommand`
(its arguments, exit code and log). The subprocess gets :func:`tool_env`: this interpreter's
``bin/`` first on ``PATH`` (nbgrader shells out to ``alembic``, and the ``python3`` kernel it
starts is found on ``PATH``), plus whatever variables the caller passes, such as
:data:`UNSAFE_ENVIRONMENT_VARIABLE`. Nothing here changes this process's own environment, so
threads may run nbgrader side by side.

:func:`students_not_graded` reads nbgrader's log for the submissions it could not grade.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: ``SELFATTN_UNSAFE_NO_SANDBOX=1`` in nbgrader's environment grades without a sandbox where none
#: can be made (``nbgrader_config.py`` reads it; ``selfattn-course grade --unsafe-no-sandbox``
#: sets it for the nbgrader it starts).
UNSAFE_ENVIRONMENT_VARIABLE = "SELFATTN_UNSAFE_NO_SANDBOX"

# nbgrader 0.9 closes a run with one such line per submission it could not grade.
_NOT_GRADED = re.compile(
    r"There was an error processing assignment '(?P<chapter>[^']*)' "
    r"for student '(?P<student>[^']*)'"
)


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for nbgrader and kernels: this process's, with this interpreter's
    ``bin/`` first on ``PATH``, and ``extra`` on top."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


@dataclass
class NbgraderCommand:
    """One finished nbgrader command: its arguments, exit code and log (stdout and stderr)."""

    args: list[str]
    returncode: int
    log: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        """``"nbgrader autograde ch01"``."""
        return " ".join(["nbgrader", *self.args])


def run_nbgrader(
    course_dir: str | Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> NbgraderCommand:
    """Run ``python -m nbgrader *args`` in ``course_dir`` with :func:`tool_env` (and ``env`` on
    top); ``on_line`` sees each log line as it comes. Past ``timeout`` seconds the process is
    killed (its sandboxed kernels die with it) and the result says ``timed_out``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=str(course_dir),
        env=tool_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        process.kill()

    timer = threading.Timer(timeout, kill) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    lines = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        returncode = process.wait()
    finally:
        if timer is not None:
            timer.cancel()
    return NbgraderCommand(list(args), returncode, "".join(lines), timed_out=expired.is_set())


def students_not_graded(log: str) -> list[tuple[str, str]]:
    """``(student, chapter)`` of each submission nbgrader's log says it could not grade.

    For reports only (the benchmarks print it): a learner's output can reach nbgrader's log, so
    the grader decides whether a unit was graded from the folder nbgrader leaves
    (:func:`selfattn_course.grading.classroom.units.grade_units`), never from this text."""
    return [(found["student"], found["chapter"]) for found in _NOT_GRADED.finditer(log)]
