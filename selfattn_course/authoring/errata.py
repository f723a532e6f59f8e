"""Every error of the seed answered: which chapter corrects each row of ERRATA.md, and where.

``book/errata.yml`` says, chapter by chapter, which rows of ``../shared/seed/ERRATA.md`` the
chapter answers and where: the label of a MyST target ``(label)=`` inside the chapter's section
"What the Q&A gets wrong". A row is named by its Q cell and its claim, as ERRATA.md writes them
(runs of whitespace aside)::

    ch02:
    - questions: [2]
      claim: '"Output = Value · AttentionWeight"'
      label: ch02-qa-output-order

A row whose Q cell lists several questions (``3, 7, 9``) is answered in each of their chapters.
:func:`check_map` checks that every row of each written chapter's question is answered there,
that each label is a target in that section, and that the map names no row ERRATA.md lacks.
:func:`new_answers` gives a new chapter's rows fresh labels (``selfattn-course new-chapter``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from selfattn_course.authoring import layout, seed, template

MAP_FILE = Path("book") / "errata.yml"
STOP_WORDS = frozenset("a an and as at by for from in is it its of on or the to with".split())


@dataclass(frozen=True)
class Answer:
    """Chapter ``chapter`` answers the ERRATA row ``(questions, claim)`` at target ``label``."""

    chapter: str
    questions: tuple[int, ...]
    claim: str
    label: str

    @property
    def row_key(self) -> tuple[tuple[int, ...], str]:
        return self.questions, seed.normalise(self.claim)


def row_key(row: seed.ErrataRow) -> tuple[tuple[int, ...], str]:
    return row.questions, row.claim


def read_map(course_dir: Path) -> list[Answer]:
    """The answers listed in ``book/errata.yml``, chapter by chapter (``[]`` if it is empty)."""
    data = yaml.safe_load((Path(course_dir) / MAP_FILE).read_text(encoding="utf-8")) or {}
    return [
        Answer(chapter, tuple(entry["questions"]), entry["claim"], entry["label"])
        for chapter, entries in data.items()
        for entry in entries
    ]


def check_map(course_dir: Path) -> list[str]:
    """The problems of ``book/errata.yml`` against ERRATA.md and the pages; ``[]`` if none."""
    course_dir = Path(course_dir)
    name = MAP_FILE.as_posix()
    rows = {row_key(row): row for row in seed.errata_of(course_dir)}
    pages = {layout.chapter_of_page(page).id: page for page in layout.chapter_pages(course_dir)}
    answers = read_map(course_dir)
    problems: list[str] = []
    targets: dict[str, set[str]] = {}
    for chapter, page in pages.items():
        section = template.parse(page.read_text(encoding="utf-8")).section(template.ERRATA_SECTION)
        targets[chapter] = section.targets() if section is not None else set()
    seen: set[tuple[str, tuple[tuple[int, ...], str]]] = set()
    labels: dict[str, Answer] = {}
    for answer in answers:
        described = f"{answer.chapter} (Q {', '.join(map(str, answer.questions))}: {answer.claim})"
        row = rows.get(answer.row_key)
        if row is None:
            problems.append(f"{name}: {described} is not a row of ERRATA.md (Q and claim)")
        elif answer.chapter not in {layout.chapter_id(number) for number in row.questions}:
            problems.append(f"{name}: {described}: the row is not about question {answer.chapter}")
        if (answer.chapter, answer.row_key) in seen:
            problems.append(f"{name}: {described} is listed twice")
        seen.add((answer.chapter, answer.row_key))
        if answer.label in labels:
            problems.append(f"{name}: the label {answer.label} answers two rows")
        labels[answer.label] = answer
        if answer.chapter not in pages:
            problems.append(f"{name}: {described}: the chapter has no page in book/")
        elif answer.label not in targets[answer.chapter]:
            problems.append(
                f"{name}: {described}: {pages[answer.chapter].name} has no target "
                f"({answer.label})= in its section '{template.ERRATA_SECTION}'"
            )
    for key, row in rows.items():
        for number in row.questions:
            chapter = layout.chapter_id(number)
            if chapter in pages and (chapter, key) not in seen:
                problems.append(
                    f"ERRATA.md:{row.line} (Q {row.questions_text}: {row.claim}) is not answered "
                    f"in {chapter}: list it in {name} with the label of the target that answers it"
                )
    return problems


def label_for(chapter: str, claim: str, taken: set[str]) -> str:
    """A label for the answer to ``claim`` in ``chapter``: ``ch07-qa-`` and up to four of the
    claim's English words (``ch07-qa-gradient-vanishing-listed-weakness``), made unique."""
    words = [w for w in re.findall(r"[a-z0-9]+", claim.lower()) if w not in STOP_WORDS]
    stem = f"{chapter}-qa-" + ("-".join(words[:4]) or "row")
    label, count = stem, 1
    while label in taken:
        count += 1
        label = f"{stem}-{count}"
    return label


def new_answers(course_dir: Path, number: int) -> list[Answer]:
    """The answers a new chapter ``number`` needs: one for each ERRATA row about question
    ``number`` that the map does not list for it yet, each with a fresh label."""
    course_dir = Path(course_dir)
    chapter = layout.chapter_id(number)
    answers = read_map(course_dir)
    taken = {answer.label for answer in answers}
    listed = {answer.row_key for answer in answers if answer.chapter == chapter}
    added = []
    for row in seed.errata_of(course_dir):
        if number in row.questions and row_key(row) not in listed:
            label = label_for(chapter, row.claim, taken)
            taken.add(label)
            added.append(Answer(chapter, row.questions, row.claim, label))
    return added


def leading_comment(text: str) -> str:
    """The comment lines (``#``) at the top of a YAML file, each ending in a newline."""
    header = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line if line.endswith("\n") else line + "\n")
    return "".join(header)


def write_map(course_dir: Path, answers: list[Answer]) -> None:
    """Write ``book/errata.yml``: its leading comment kept, then the answers by chapter."""
    path = Path(course_dir) / MAP_FILE
    header = leading_comment(path.read_text(encoding="utf-8")) if path.exists() else ""
    by_chapter: dict[str, list[dict]] = {}
    for answer in sorted(answers, key=lambda answer: answer.chapter):
        by_chapter.setdefault(answer.chapter, []).append(
            {"questions": list(answer.questions), "claim": answer.claim, "label": answer.label}
        )
    body = yaml.safe_dump(
        by_chapter, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None
    )
    path.write_text(header + body, encoding="utf-8")
