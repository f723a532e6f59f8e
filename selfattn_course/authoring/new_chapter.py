"""``selfattn-course new-chapter NN SLUG``: every file a new chapter needs, and its registration.

:func:`create` writes, from the templates in ``selfattn_course/authoring/templates/``:

- ``book/chNN-<slug>.md``, the page, with the seed's question ``NN`` quoted in Chinese and one
  item (with its label) in "What the Q&A gets wrong" for each row of ERRATA.md about question
  ``NN``;
- ``solutions/chNN/chNN.md``, the exercise notebook's source, and
  ``selfattn_course/grading/tasks/chNN.py``, its graded tasks, one block each;
- ``tests/grading_bank/chNN.py`` (wrong submissions) and ``tests/tasks/test_chNN.py`` (the
  chapter's own tests);

and registers the chapter: its entry in ``_toc.yml`` under the caption of its part
(:data:`~selfattn_course.authoring.layout.PARTS`), its link in the Chapter column of the table
in ``book/intro.md``, and its rows in ``book/errata.yml``.

What the author must still write is marked ``TODO``; the template check
(:mod:`selfattn_course.authoring.template`) lists every ``TODO`` left, so a fresh chapter fails
it until it is written, and passes it once it is, with no other file edited by hand.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from selfattn_course.authoring import errata, layout, seed, template

TEMPLATE_PACKAGE = "selfattn_course.authoring"
_FIELD = re.compile(r"\{\{(?P<name>[a-z_]+)\}\}")


def read_template(name: str) -> str:
    """The text of ``templates/<name>``."""
    return resources.files(TEMPLATE_PACKAGE).joinpath("templates", name).read_text("utf-8")


def render(name: str, **values: str) -> str:
    """``templates/<name>`` with every ``{{field}}`` replaced by ``values[field]``.

    ``KeyError`` if the template uses a field not given.
    """
    text = read_template(name)
    used = {match["name"] for match in _FIELD.finditer(text)}
    if missing := used - values.keys():
        raise KeyError(f"template {name} needs {sorted(missing)}")
    return _FIELD.sub(lambda match: values[match["name"]], text)


def _check_new(course_dir: Path, number: int, slug: str) -> layout.ChapterFiles:
    """The chapter's files, after checking that ``number`` and ``slug`` are valid and new."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"the chapter number must be an integer, got {number!r}")
    if not layout.FIRST_CHAPTER <= number <= layout.LAST_CHAPTER:
        raise ValueError(
            f"the chapter number must be {layout.FIRST_CHAPTER}..{layout.LAST_CHAPTER} "
            f"(one chapter per question of the seed), got {number}"
        )
    if not isinstance(slug, str) or not layout.SLUG.match(slug):
        raise ValueError(
            f"the slug must be lower-case words of a-z and 0-9 joined by dashes, "
            f"like 'cnn-weaknesses', got {slug!r}"
        )
    chapter = layout.ChapterFiles(number, slug)
    existing = [
        page.relative_to(course_dir).as_posix()
        for page in layout.chapter_pages(course_dir)
        if layout.chapter_of_page(page).number == number
    ]
    existing += [
        path.as_posix()
        for path in [*chapter.all()[1:], chapter.solution_source.parent]
        if (course_dir / path).exists()
    ]
    if existing:
        raise ValueError(f"chapter {number} exists already: {', '.join(sorted(set(existing)))}")
    return chapter


def create(course_dir: Path, number: int, slug: str) -> list[Path]:
    """Create chapter ``number`` with page ``book/chNN-<slug>.md`` in the course at ``course_dir``.

    The seed is read from ``<course_dir>/../shared/seed/``. Returns the paths written: the new
    files (page first), then the registration files it updated (``_toc.yml``,
    ``book/intro.md``, ``book/errata.yml``).

    Raises:
        ValueError: ``number`` is not 1..30, ``slug`` is not lower-case words joined by dashes,
            or the chapter exists already (any of its files, under any slug).
    """
    course_dir = Path(course_dir)
    chapter = _check_new(course_dir, number, slug)
    question = seed.questions_of(course_dir)[number]
    answers = errata.new_answers(course_dir, number)
    rows = {errata.row_key(row): row for row in seed.errata_of(course_dir)}
    values = {"chapter": chapter.id, "number": str(number)}
    files = {
        chapter.page: render(
            "chapter.md",
            **values,
            question_title=question.title,
            question_prompt=question.prompt,
            errata_section=_errata_section(answers, rows),
        ),
        chapter.solution_source: render("solution.md", **values),
        chapter.tasks_module: render("tasks.py.template", **values),
        chapter.bank: render("bank.py.template", **values),
        chapter.tests: render("test_tasks.py.template", **values),
    }
    written = []
    for path, text in files.items():
        (course_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (course_dir / path).write_text(text, encoding="utf-8")
        written.append(course_dir / path)
    register_in_toc(course_dir, chapter)
    register_in_intro(course_dir, chapter)
    errata.write_map(course_dir, errata.read_map(course_dir) + answers)
    return written + [
        course_dir / layout.TOC,
        course_dir / layout.INTRO,
        course_dir / errata.MAP_FILE,
    ]


def _errata_section(answers: list[errata.Answer], rows) -> str:
    """The section "What the Q&A gets wrong" of a new page: one item per row, or nothing."""
    if not answers:
        return ""
    items = [
        render(
            "errata_item.md",
            label=answer.label,
            claim=answer.claim,
            line=str(rows[answer.row_key].line),
        ).rstrip("\n")
        for answer in answers
    ]
    return render("errata_section.md", items="\n".join(items)).rstrip("\n") + "\n"


def register_in_toc(course_dir: Path, chapter: layout.ChapterFiles) -> None:
    """Add the chapter to ``_toc.yml`` under the caption of its part, in chapter order.

    The parts are kept in the order of :data:`~selfattn_course.authoring.layout.PARTS`, and a
    part is listed once it has a chapter. The file's leading comment is kept.
    """
    path = Path(course_dir) / layout.TOC
    text = path.read_text(encoding="utf-8")
    toc = yaml.safe_load(text)
    parts = {part["caption"]: part for part in toc.get("parts", [])}
    caption = layout.part_of(chapter.number).caption
    part = parts.setdefault(caption, {"caption": caption, "chapters": []})
    part["chapters"].append({"file": chapter.docname})
    part["chapters"].sort(key=lambda entry: entry["file"])
    order = [part.caption for part in layout.PARTS]
    toc["parts"] = sorted(parts.values(), key=lambda part: order.index(part["caption"]))
    body = yaml.safe_dump(toc, sort_keys=False, allow_unicode=True)
    path.write_text(errata.leading_comment(text) + body, encoding="utf-8")


def register_in_intro(course_dir: Path, chapter: layout.ChapterFiles) -> None:
    """Link the chapter in the Chapter column of its question's row of ``book/intro.md``."""
    path = Path(course_dir) / layout.INTRO
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = template.INTRO_ROW.match(line)
        if match and int(match["number"]) == chapter.number:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            cells[-1] = template.chapter_link(chapter)
            lines[index] = "| " + " | ".join(cells) + " |\n"
            path.write_text("".join(lines), encoding="utf-8")
            return
    raise ValueError(f"{layout.INTRO} has no row for question {chapter.number} in its table")
