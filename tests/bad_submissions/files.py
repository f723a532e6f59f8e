"""Submissions whose files are wrong: each writes one learner's chapter folder.

Every entry is ``write(folder, chapter, notebook_text, course_dir)``, where ``folder`` is
``<submissions>/<student>/<chapter>`` (not yet created), ``notebook_text`` a correct solution
notebook as JSON text and ``course_dir`` the course; ``graded`` says whether the chapter is graded
(the right notebook is there) and ``reason`` what the table and the CSV must show. A chapter that
is not graded scores an explicit 0 on every task.
"""

import os
from pathlib import Path


def malformed_json(folder: Path, chapter: str, text: str, course_dir: Path) -> None:
    """A notebook saved halfway: the first half of its JSON."""
    folder.mkdir(parents=True)
    (folder / f"{chapter}.ipynb").write_text(text[: len(text) // 2])


def wrong_file_name(folder: Path, chapter: str, text: str, course_dir: Path) -> None:
    """The right notebook under the name Jupyter gives a copy."""
    folder.mkdir(parents=True)
    (folder / f"{chapter}-Copy1.ipynb").write_text(text)


def missing_notebook(folder: Path, chapter: str, text: str, course_dir: Path) -> None:
    """A chapter folder with notes but no notebook."""
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("I will hand it in tomorrow\n")


def extra_notebook(folder: Path, chapter: str, text: str, course_dir: Path) -> None:
    """The right notebook and a scratch notebook beside it."""
    folder.mkdir(parents=True)
    (folder / f"{chapter}.ipynb").write_text(text)
    (folder / "scratch.ipynb").write_text(text)


def link_to_solutions(folder: Path, chapter: str, text: str, course_dir: Path) -> None:
    """The right notebook and a symbolic link to the instructor's solution, hoping the grader
    copies what it points at to where the kernel can read it."""
    folder.mkdir(parents=True)
    (folder / f"{chapter}.ipynb").write_text(text)
    os.symlink(course_dir / "solutions" / chapter / f"{chapter}.ipynb", folder / "data.txt")


FILES = {
    "malformed_json": {
        "write": malformed_json,
        "graded": False,
        "reason": "is not a valid notebook: bad JSON at line",
    },
    "wrong_file_name": {
        "write": wrong_file_name,
        "graded": False,
        "reason": "-Copy1.ipynb): name it",
    },
    "missing_notebook": {"write": missing_notebook, "graded": False, "reason": "no ch"},
    "extra_notebook": {
        "write": extra_notebook,
        "graded": True,
        "reason": "not graded: scratch.ipynb",
    },
    "link_to_solutions": {
        "write": link_to_solutions,
        "graded": False,
        "reason": "holds a symbolic link (data.txt)",
    },
}
