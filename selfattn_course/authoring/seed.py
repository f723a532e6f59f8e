"""The seed Q&A the course follows, and its list of errors, read from ``../shared/seed/``.

The seed is a Chinese interview-style Q&A of 30 questions, ``000_6e6f04373e34c8dd.txt``; chapter
``N`` answers question ``N``. Each question starts like::

    ### 2. 自注意力层是如何计算的？

    **题目：** 请详细描述自注意力层的计算过程。

``ERRATA.md`` lists what the seed gets wrong, one table row per claim: ``| Q | claim | what is
true | how the chapter can show it |``, where ``Q`` is one question or several (``3, 7, 9``).
Cells are separated by `` | `` (a pipe between spaces), so a claim may write ``O(|E|·d)``.

Both files live next to the repository, in ``<course>/../shared/seed/``; CI checks them out there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED_FILE = "000_6e6f04373e34c8dd.txt"
ERRATA_FILE = "ERRATA.md"
PROMPT_PREFIX = "**题目：**"

_QUESTION_HEADING = re.compile(r"^### (?P<number>\d+)\. (?P<title>.+?)\s*$")
_ERRATA_ROW = re.compile(r"^\|\s*(?P<questions>\d+(?:\s*,\s*\d+)*)\s+\|\s")
_CELL_SEPARATOR = re.compile(r"\s\|\s")


def seed_dir(course_dir: Path) -> Path:
    """Where the seed lives for the course checked out at ``course_dir``."""
    return Path(course_dir).resolve().parent / "shared" / "seed"


def normalise(text: str) -> str:
    """``text`` with every run of whitespace turned into one space, and stripped."""
    return " ".join(text.split())


@dataclass(frozen=True)
class SeedQuestion:
    """One question of the seed: ``number``, its ``title`` (the heading) and its ``prompt``.

    ``title`` is the text after ``### N.``; ``prompt`` the text after ``**题目：**``.
    """

    number: int
    title: str
    prompt: str


@dataclass(frozen=True)
class ErrataRow:
    """One row of ERRATA.md: the ``questions`` it concerns and the seed's ``claim``.

    ``claim`` is whitespace-normalised, so that a row is named by ``(questions, claim)`` however
    the table is laid out. ``line`` is the row's line number in ERRATA.md (for messages).
    """

    questions: tuple[int, ...]
    claim: str
    truth: str
    line: int

    @property
    def questions_text(self) -> str:
        """The Q cell as ERRATA.md writes it, e.g. ``"3, 7, 9"``."""
        return ", ".join(str(number) for number in self.questions)


def read_questions(seed: Path) -> dict[int, SeedQuestion]:
    """Every question of the seed file ``seed``, ``number -> SeedQuestion``.

    ``ValueError`` if a question has no ``**题目：**`` line before the next question.
    """
    questions: dict[int, SeedQuestion] = {}
    number, title = None, None
    for line in Path(seed).read_text(encoding="utf-8").splitlines():
        heading = _QUESTION_HEADING.match(line)
        if heading:
            if number is not None:
                raise ValueError(f"{seed}: question {number} has no {PROMPT_PREFIX} line")
            number, title = int(heading["number"]), heading["title"]
        elif number is not None and line.startswith(PROMPT_PREFIX):
            prompt = normalise(line[len(PROMPT_PREFIX) :])
            questions[number] = SeedQuestion(number, normalise(title), prompt)
            number, title = None, None
    if number is not None:
        raise ValueError(f"{seed}: question {number} has no {PROMPT_PREFIX} line")
    return questions


def read_errata(errata: Path) -> list[ErrataRow]:
    """The rows of ERRATA.md's table(s), in order; the header and separator rows are skipped.

    ``ValueError`` for a row that does not have four cells.
    """
    rows = []
    lines = Path(errata).read_text(encoding="utf-8").splitlines()
    for line_number, line in enumerate(lines, start=1):
        start = _ERRATA_ROW.match(line)
        if start is None:
            continue
        cells = _CELL_SEPARATOR.split(line.strip().strip("|"))
        if len(cells) != 4:
            raise ValueError(
                f"{errata}:{line_number}: a row needs 4 cells separated by ' | ', "
                f"found {len(cells)}: {line}"
            )
        questions = tuple(int(number) for number in start["questions"].split(","))
        rows.append(ErrataRow(questions, normalise(cells[1]), normalise(cells[2]), line_number))
    return rows


def questions_of(course_dir: Path) -> dict[int, SeedQuestion]:
    """The seed's questions for the course at ``course_dir``."""
    return read_questions(seed_dir(course_dir) / SEED_FILE)


def errata_of(course_dir: Path) -> list[ErrataRow]:
    """The ERRATA rows for the course at ``course_dir``."""
    return read_errata(seed_dir(course_dir) / ERRATA_FILE)
