"""What a submission's folder may hold: plain files and folders, nothing that points elsewhere.

Copying a folder as the grader does follows a symbolic link to whatever it names, the course's
solutions included, so a submission that holds one is never run: the intake rejects it
(:mod:`selfattn_course.grading.classroom.intake`), and so does
:class:`~selfattn_course.grading.autograde.execute.GradingExecute` when plain ``nbgrader
autograde`` meets one in ``submitted/``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def unsafe_entries(folder: str | Path) -> list[str]:
    """What in ``folder`` (recursively) is not a plain file or folder: symbolic links, FIFOs,
    sockets, devices; each as ``"a symbolic link (data.txt)"``."""
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
