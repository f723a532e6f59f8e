"""Where a chapter's files live, and which part of the book each chapter belongs to.

Chapter ``N`` (1 to 30) answers question ``N`` of the seed Q&A. Its id is ``chNN`` (``ch07``) and
its slug names its page: ``book/ch07-cnn-weaknesses.md``. The files of one chapter:

=====================================  ==========================================================
``book/chNN-<slug>.md``                the chapter page, a MyST Markdown notebook
``solutions/chNN/chNN.md``             the exercise notebook's source: statements and solutions
``selfattn_course/grading/tasks/       the graded tasks, one block each
chNN.py``
``tests/grading_bank/chNN.py``         realistic wrong submissions and the hints they must get
``tests/tasks/test_chNN.py``           the chapter's own tests of its references
=====================================  ==========================================================

The book's parts are defined here, once (:data:`PARTS`): ``_toc.yml`` lists each chapter under the
caption of its part, and only parts that have a chapter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

FIRST_CHAPTER, LAST_CHAPTER = 1, 30
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PAGE_NAME = re.compile(r"^ch(?P<number>\d\d)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
TOC = "_toc.yml"
INTRO = "book/intro.md"


@dataclass(frozen=True)
class Part:
    """A part of the book: its ``caption`` in ``_toc.yml`` and its chapters ``first..last``."""

    caption: str
    first: int
    last: int


PARTS = (
    Part("Foundations", 1, 5),
    Part("Compared with CNNs, RNNs and GNNs", 6, 11),
    Part("Applications", 12, 23),
    Part("Engineering", 24, 30),
)


def chapter_id(number: int) -> str:
    """``7 -> "ch07"``."""
    return f"ch{number:02d}"


def part_of(number: int) -> Part:
    """The part chapter ``number`` belongs to; ``ValueError`` outside 1..30."""
    for part in PARTS:
        if part.first <= number <= part.last:
            return part
    raise ValueError(f"chapter number must be {FIRST_CHAPTER}..{LAST_CHAPTER}, got {number}")


@dataclass(frozen=True)
class ChapterFiles:
    """The paths of one chapter's files, relative to the course directory."""

    number: int
    slug: str

    @property
    def id(self) -> str:
        return chapter_id(self.number)

    @property
    def page(self) -> Path:
        return Path("book") / f"{self.id}-{self.slug}.md"

    @property
    def docname(self) -> str:
        """The page as ``_toc.yml`` names it: ``book/ch07-cnn-weaknesses``."""
        return self.page.with_suffix("").as_posix()

    @property
    def solution_source(self) -> Path:
        return Path("solutions") / self.id / f"{self.id}.md"

    @property
    def tasks_module(self) -> Path:
        return Path("selfattn_course") / "grading" / "tasks" / f"{self.id}.py"

    @property
    def bank(self) -> Path:
        return Path("tests") / "grading_bank" / f"{self.id}.py"

    @property
    def tests(self) -> Path:
        return Path("tests") / "tasks" / f"test_{self.id}.py"

    def all(self) -> list[Path]:
        """Every file of the chapter, page first."""
        return [self.page, self.solution_source, self.tasks_module, self.bank, self.tests]


def chapter_of_page(page: Path) -> ChapterFiles | None:
    """``book/ch07-cnn-weaknesses.md -> ChapterFiles(7, "cnn-weaknesses")``, else None."""
    match = PAGE_NAME.match(Path(page).name)
    if match is None:
        return None
    return ChapterFiles(int(match["number"]), match["slug"])


def chapter_pages(course_dir: Path) -> list[Path]:
    """The chapter pages in ``book/`` (files named ``chNN-<slug>.md``), in chapter order."""
    pages = [page for page in (Path(course_dir) / "book").glob("ch*.md")]
    return sorted(page for page in pages if chapter_of_page(page) is not None)


def read_toc(course_dir: Path) -> list[tuple[str, list[str]]]:
    """``_toc.yml``'s parts: ``[(caption, [docname, ...]), ...]``, in order."""
    toc = yaml.safe_load((Path(course_dir) / TOC).read_text(encoding="utf-8"))
    return [
        (part.get("caption", ""), [chapter["file"] for chapter in part.get("chapters", [])])
        for part in toc.get("parts", [])
    ]
