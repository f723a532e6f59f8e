"""The chapter template, checked: what every chapter page ``book/chNN-<slug>.md`` must have.

A chapter page is a MyST Markdown notebook. After its label ``(chNN)=`` and its title
``# N. <title>`` it has these sections (``##``), in this order and no others:

1. ``The question``: the seed's question ``N`` in Chinese, quoted exactly as the seed writes it
   (heading as bold text, then the ``**题目：**`` line), followed by an English translation in
   italics;
2. ``Short answer``, 3. ``Explanation``, 4. ``In code``;
5. ``What the Q&A gets wrong``: required when ``ERRATA.md`` has rows for question ``N``; it holds an
   ``{admonition} What the Q&A gets wrong`` with ``:class: warning`` (the labels that answer each
   row are checked by :mod:`selfattn_course.authoring.errata`);
6. ``Exercises``: an ``{exercise-list} chNN`` block for its own chapter
   (:mod:`selfattn_course.authoring.exercise_directive`), which the build replaces by the
   registry's tasks with their points; points are never written by hand on the page;
7. ``Key takeaways`` (a bullet list), 8. ``References`` (the ``{bibliography}`` block filtered
   to the page).

The page has at least one code cell and draws at least one figure in code, and no placeholder of
the template (a ``TODO``) is left. :func:`check_chapter` checks one page, :func:`check_course`
what ties the pages to the rest of the course (``_toc.yml``, the intro's table, the chapter's
other files). Both return a list of problems, each naming the file and what is wrong; an empty
list means the page follows the template.

This module only reads text (and ``_toc.yml`` with PyYAML); it imports nothing of Jupyter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from selfattn_course.authoring import layout, seed

QUESTION = "The question"
ERRATA_SECTION = "What the Q&A gets wrong"
EXERCISES = "Exercises"
SECTIONS = (
    QUESTION,
    "Short answer",
    "Explanation",
    "In code",
    ERRATA_SECTION,
    EXERCISES,
    "Key takeaways",
    "References",
)
PLACEHOLDER = "TODO"
# The task of the templates of a new chapter's task module, notebook, bank and tests.
EXAMPLE_TASK = "center_rows"
EXERCISE_LIST = "{exercise-list}"
# A figure drawn in code: a call of matplotlib or of the course's plotting helpers.
PLOTTING_CALL = re.compile(
    r"\b(?:plt\.\w+|new_figure|heatmap|loglog|subplots)\s*\("
    r"|\.(?:plot|hist|imshow|matshow|scatter|bar|semilogx|semilogy|loglog|pcolormesh)\s*\("
)
POINTS_BY_HAND = re.compile(r"\b\d+(?:\.\d+)?\s+points?\b")
TARGET = re.compile(r"^\s*(?:[-*+]\s+|\d+\.\s+)?\((?P<label>[A-Za-z0-9_.:-]+)\)=\s*$")
FENCE = re.compile(r"^\s*(?P<marks>`{3,}|~{3,})\s*(?P<info>.*?)\s*$")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@dataclass
class Fence:
    """A fenced block: ``info`` is what follows the backticks (``{code-cell} ipython3``)."""

    info: str
    line: int  # 1-based line of the opening fence
    body: list[str] = field(default_factory=list)

    @property
    def is_code_cell(self) -> bool:
        return self.info.startswith("{code-cell}")

    @property
    def options(self) -> dict[str, str]:
        """The directive's ``:name: value`` lines at the top of the body."""
        options = {}
        for line in self.body:
            match = re.match(r"^:(?P<name>[\w-]+):\s*(?P<value>.*)$", line.strip())
            if match is None:
                break
            options[match["name"]] = match["value"]
        return options


@dataclass
class Section:
    """A ``##`` section: its ``title``, its first line and its lines (fences included)."""

    title: str
    line: int
    lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, text)
    fences: list[Fence] = field(default_factory=list)

    def prose(self) -> list[tuple[int, str]]:
        """The section's lines outside fences, without blank lines, targets and ``%`` comments."""
        inside = {number for fence in self.fences for number in fence_lines(fence)}
        return [
            (number, text)
            for number, text in self.lines
            if number not in inside
            and text.strip()
            and not TARGET.match(text)
            and not text.lstrip().startswith("%")
        ]

    def targets(self) -> set[str]:
        """The labels ``(label)=`` in the section, inside directives such as admonitions too."""
        code = {
            number for fence in self.fences if fence.is_code_cell for number in fence_lines(fence)
        }
        return {
            match["label"]
            for number, text in self.lines
            if number not in code and (match := TARGET.match(text))
        }


def fence_lines(fence: Fence) -> range:
    """The line numbers of a fence, from its opening to its closing line."""
    return range(fence.line, fence.line + len(fence.body) + 2)


@dataclass
class Page:
    """A chapter page split into its front matter, title, sections and fences."""

    front_matter: str
    title: tuple[int, str] | None  # (line, text after "# ")
    label_before_title: str | None
    h1_count: int
    sections: list[Section]
    fences: list[Fence]
    lines: list[str]

    def section(self, title: str) -> Section | None:
        return next((section for section in self.sections if section.title == title), None)


def parse(text: str) -> Page:
    """Split a MyST page into front matter, ``#`` title, ``##`` sections and fenced blocks.

    Headings inside fences (code cells, directives) are not headings. The front matter is the
    block between the first two ``---`` lines, when the page starts with one.
    """
    lines = text.splitlines()
    front_matter, start = "", 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            front_matter, start = "\n".join(lines[1:end]), end + 1
    title, label_before_title, h1_count = None, None, 0
    sections: list[Section] = []
    fences: list[Fence] = []
    open_fence: Fence | None = None
    open_marks = ""
    previous = ""
    for index in range(start, len(lines)):
        number, text = index + 1, lines[index]
        fence = FENCE.match(text)
        if open_fence is None and text.startswith("## "):
            sections.append(Section(text[3:].strip(), number))
            continue
        if sections:
            sections[-1].lines.append((number, text))
        if open_fence is not None:
            closes = fence and not fence["info"] and fence["marks"][0] == open_marks[0]
            if closes and len(fence["marks"]) >= len(open_marks):
                open_fence = None
            else:
                open_fence.body.append(text)
            continue
        if fence:
            open_fence, open_marks = Fence(fence["info"], number), fence["marks"]
            fences.append(open_fence)
            if sections:
                sections[-1].fences.append(open_fence)
        elif text.startswith("# "):
            h1_count += 1
            if title is None:
                title = (number, text[2:].strip())
                target = TARGET.match(previous)
                label_before_title = target["label"] if target else None
        if text.strip():
            previous = text
    return Page(front_matter, title, label_before_title, h1_count, sections, fences, lines)


def _expected_sections(present: list[str], has_errata: bool) -> list[str]:
    """The section titles the page must have, in order: the errata section only when required
    (ERRATA.md has rows for the question) or when the page has it."""
    return [
        title
        for title in SECTIONS
        if title != ERRATA_SECTION or has_errata or ERRATA_SECTION in present
    ]


def check_chapter(page: Path, course_dir: Path | None = None) -> list[str]:
    """The problems of one chapter page against the template; ``[]`` when it follows it.

    ``course_dir`` is the course the page belongs to (default: the folder above ``book/``); the
    seed is read from ``<course_dir>/../shared/seed/``.
    """
    page = Path(page)
    course_dir = Path(course_dir) if course_dir is not None else page.resolve().parents[1]
    name = page.resolve().relative_to(course_dir.resolve()).as_posix()
    chapter = layout.chapter_of_page(page)
    if chapter is None:
        return [f"{name}: a chapter page is named chNN-<slug>.md (slug: a-z, 0-9 and dashes)"]
    if not layout.FIRST_CHAPTER <= chapter.number <= layout.LAST_CHAPTER:
        return [f"{name}: chapter numbers run from 1 to 30, not {chapter.number}"]
    questions = seed.questions_of(course_dir)
    rows = [row for row in seed.errata_of(course_dir) if chapter.number in row.questions]
    parsed = parse(page.read_text(encoding="utf-8"))
    problems: list[str] = []

    def problem(message: str, line: int | None = None) -> None:
        problems.append(f"{name}:{line}: {message}" if line else f"{name}: {message}")

    if "format_name: myst" not in parsed.front_matter or "kernelspec:" not in parsed.front_matter:
        problem("the front matter must make the page a MyST notebook (jupytext myst, kernelspec)")
    _check_title(parsed, chapter, problem)
    present = [section.title for section in parsed.sections]
    expected = _expected_sections(present, bool(rows))
    if present != expected:
        problem(
            "the sections (##) must be, in order: "
            + ", ".join(expected)
            + "; the page has: "
            + (", ".join(present) or "none")
            + (f" (ERRATA.md has {len(rows)} row(s) for question {chapter.number})" if rows else "")
        )
    question = parsed.section(QUESTION)
    if question is not None:
        _check_question(question, questions.get(chapter.number), chapter.number, problem)
    for title in ("Short answer", "Explanation", "In code", "Key takeaways"):
        section = parsed.section(title)
        if section is not None and not section.prose():
            problem(f"the section '{title}' has no text", section.line)
    takeaways = parsed.section("Key takeaways")
    if takeaways is not None and not any(
        text.lstrip().startswith(("- ", "* ")) for _, text in takeaways.prose()
    ):
        problem("the key takeaways are a bullet list", takeaways.line)
    errata = parsed.section(ERRATA_SECTION)
    if errata is not None:
        _check_errata_callout(errata, problem)
    exercises = parsed.section(EXERCISES)
    if exercises is not None:
        _check_exercises(exercises, chapter, course_dir, problem)
    references = parsed.section("References")
    if references is not None:
        _check_references(references, problem)
    code_cells = [fence for fence in parsed.fences if fence.is_code_cell]
    if not code_cells:
        problem("the chapter has no code cell ({code-cell} ipython3)")
    elif not any(PLOTTING_CALL.search("\n".join(cell.body)) for cell in code_cells):
        problem("no code cell draws a figure (a matplotlib or selfattn_course.plotting call)")
    for index, text in enumerate(parsed.lines, start=1):
        if PLACEHOLDER in text:
            problem(f"placeholder of the template left: {text.strip()}", index)
    return problems


def _check_title(parsed: Page, chapter: layout.ChapterFiles, problem) -> None:
    if parsed.title is None:
        problem(f"no title: the page starts with '({chapter.id})=' and '# {chapter.number}. ...'")
        return
    line, title = parsed.title
    if not re.match(rf"^{chapter.number}\. \S", title):
        problem(f"the title must read '# {chapter.number}. <title>', not '# {title}'", line)
    if parsed.label_before_title != chapter.id:
        problem(f"the title must be preceded by the label '({chapter.id})='", line)
    if parsed.h1_count != 1:
        problem(f"the page has {parsed.h1_count} '#' headings; only the title is one", line)


def _check_question(section: Section, question, number: int, problem) -> None:
    if question is None:
        problem(f"the seed has no question {number}", section.line)
        return
    quoted = [
        seed.normalise(text.lstrip()[1:])
        for _, text in section.prose()
        if text.lstrip().startswith(">")
    ]
    heading = f"**{number}. {question.title}**"
    prompt = f"{seed.PROMPT_PREFIX} {question.prompt}"
    if heading not in quoted:
        problem(f"the question must quote the seed's heading as '> {heading}'", section.line)
    if prompt not in quoted:
        problem(f"the question must quote the seed's prompt as '> {prompt}'", section.line)
    english = [text for _, text in section.prose() if not text.lstrip().startswith(">")]
    translation = seed.normalise(" ".join(english))
    is_italic = len(translation) > 2 and translation[0] == "*" and translation[-1] == "*"
    if not english or not is_italic or CJK.search(translation) or len(translation.split()) < 3:
        problem(
            "after the quote comes the question in English, in italics (*...*), "
            "as one paragraph with no Chinese",
            section.line,
        )


def _check_errata_callout(section: Section, problem) -> None:
    callouts = [
        fence
        for fence in section.fences
        if seed.normalise(fence.info) == f"{{admonition}} {ERRATA_SECTION}"
    ]
    if not callouts:
        problem(f"the section holds an ```{{admonition}} {ERRATA_SECTION}``` block", section.line)
    elif callouts[0].options.get("class") != "warning":
        problem("the admonition What the Q&A gets wrong has ':class: warning'", callouts[0].line)


def _check_exercises(section: Section, chapter: layout.ChapterFiles, course_dir, problem) -> None:
    lists = [fence for fence in section.fences if fence.info.startswith(EXERCISE_LIST)]
    wanted = f"```{EXERCISE_LIST} {chapter.id}```"
    if len(lists) != 1:
        problem(
            f"the exercises are listed by one {wanted} block "
            f"(selfattn_course.authoring.exercise_directive), found {len(lists)}",
            section.line,
        )
    for fence in lists:
        if fence.info.split() != [EXERCISE_LIST, chapter.id]:
            problem(
                f"the exercise list is the chapter's own: {wanted}, not {fence.info}", fence.line
            )
        elif any(line.strip() for line in fence.body):
            problem(f"the {EXERCISE_LIST} block has no content: the specs give it", fence.line)
    for line, text in section.prose():
        if POINTS_BY_HAND.search(text):
            problem(
                "points are stated once, in the task spec; the exercise list shows them: "
                + text.strip(),
                line,
            )
    if not (course_dir / chapter.tasks_module).is_file():
        problem(f"the chapter has no tasks module {chapter.tasks_module.as_posix()}", section.line)


def _check_references(section: Section, problem) -> None:
    bibliography = [fence for fence in section.fences if fence.info == "{bibliography}"]
    if not bibliography or bibliography[0].options.get("filter") != "docname in docnames":
        problem(
            "the references are a ```{bibliography}``` block with ':filter: docname in docnames'",
            section.line,
        )


def check_course(course_dir: Path) -> list[str]:
    """What ties the chapter pages to the course: the table of contents, the intro, the files.

    - ``_toc.yml`` lists every chapter page once, under the caption of its part
      (:data:`~selfattn_course.authoring.layout.PARTS`), in chapter order, and lists only
      pages that exist;
    - ``book/intro.md``'s table links each written chapter in the row of its question, and
      only those;
    - each chapter has all its files (:class:`~selfattn_course.authoring.layout.ChapterFiles`),
      with no placeholder of the template left in them, nor its example task.
    """
    course_dir = Path(course_dir)
    problems: list[str] = []
    chapters = [layout.chapter_of_page(page) for page in layout.chapter_pages(course_dir)]
    numbers = [chapter.number for chapter in chapters]
    for number in sorted({n for n in numbers if numbers.count(n) > 1}):
        problems.append(f"book/: more than one page for chapter {number}")
    by_docname = {chapter.docname: chapter for chapter in chapters}
    listed: list[str] = []
    for caption, docnames in layout.read_toc(course_dir):
        for docname in docnames:
            listed.append(docname)
            if not (course_dir / f"{docname}.md").is_file():
                problems.append(f"{layout.TOC}: lists {docname}, which does not exist")
                continue
            chapter = by_docname.get(docname)
            if chapter is not None and layout.part_of(chapter.number).caption != caption:
                right = layout.part_of(chapter.number).caption
                problems.append(f"{layout.TOC}: {docname} belongs under '{right}', not '{caption}'")
    for chapter in chapters:
        if listed.count(chapter.docname) != 1:
            times = listed.count(chapter.docname)
            problems.append(f"{layout.TOC}: lists {chapter.docname} {times} times, not once")
    listed_chapters = [by_docname[d].number for d in listed if d in by_docname]
    if listed_chapters != sorted(listed_chapters):
        problems.append(f"{layout.TOC}: the chapters are not in order: {listed_chapters}")
    problems += _check_intro_table(course_dir, {chapter.number: chapter for chapter in chapters})
    for chapter in chapters:
        for path in chapter.all()[1:]:
            if not (course_dir / path).is_file():
                problems.append(f"{chapter.page.as_posix()}: the chapter has no {path.as_posix()}")
                continue
            text = (course_dir / path).read_text(encoding="utf-8")
            if PLACEHOLDER in text:
                problems.append(
                    f"{path.as_posix()}: placeholder of the template ({PLACEHOLDER}) left"
                )
            if re.search(rf"\b{EXAMPLE_TASK}\b", text):
                problems.append(
                    f"{path.as_posix()}: the template's example task ({EXAMPLE_TASK}) is left"
                )
    return problems


INTRO_ROW = re.compile(r"^\|\s*(?P<number>\d+)\s*\|")


def intro_rows(intro_text: str) -> dict[int, list[str]]:
    """The rows of the intro's table of the 30 questions, ``number -> cells``."""
    rows = {}
    for line in intro_text.splitlines():
        match = INTRO_ROW.match(line)
        if match:
            rows[int(match["number"])] = [
                cell.strip() for cell in line.strip().strip("|").split("|")
            ]
    return rows


def chapter_link(chapter: layout.ChapterFiles) -> str:
    """How the intro's table links a chapter: ``[Chapter 7](ch07-cnn-weaknesses.md)``."""
    return f"[Chapter {chapter.number}]({chapter.page.name})"


def _check_intro_table(course_dir: Path, chapters: dict[int, layout.ChapterFiles]) -> list[str]:
    rows = intro_rows((course_dir / layout.INTRO).read_text(encoding="utf-8"))
    problems = []
    for number in range(layout.FIRST_CHAPTER, layout.LAST_CHAPTER + 1):
        if number not in rows:
            problems.append(f"{layout.INTRO}: the table has no row for question {number}")
            continue
        link = rows[number][-1]
        wanted = chapter_link(chapters[number]) if number in chapters else ""
        if link != wanted:
            problems.append(
                f"{layout.INTRO}: the Chapter column of row {number} must be "
                f"{wanted or 'empty (no chapter yet)'}, not {link or 'empty'}"
            )
    return problems
