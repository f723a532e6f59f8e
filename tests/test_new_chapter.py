"""`selfattn-course new-chapter` (selfattn_course/authoring/new_chapter.py), on a scratch course.

The scratch course holds copies of what `create` reads and writes, for the template chapters 1-5
only: _toc.yml, book/ (pages, intro, errata map), the chapters' other files (solution sources,
task modules, banks, tests), with the seed next to it in ../shared/seed as in CI.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from selfattn_course.authoring import errata, layout, new_chapter, seed, template
from selfattn_course.authoring.notebooks import solution_notebook

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"
NEW = [(7, "cnn-weaknesses"), (16, "question-answering")]  # with and without ERRATA rows


#: The scratch course holds the template chapters only, so that the chapters the tests create
#: (6, 7, 12, 16) are new in it however many chapters the repository has.
TEMPLATE_CHAPTERS = range(1, 6)


@pytest.fixture
def course(tmp_path) -> Path:
    course = tmp_path / "course"
    course.mkdir()
    shutil.copytree(
        ROOT / "book", course / "book", ignore=shutil.ignore_patterns("*.bib", "ch*.md")
    )
    shutil.copy(ROOT / layout.TOC, course / layout.TOC)
    kept = []
    for page in layout.chapter_pages(ROOT):
        chapter = layout.chapter_of_page(page)
        if chapter.number not in TEMPLATE_CHAPTERS:
            continue
        kept.append(chapter)
        for path in chapter.all():
            if (ROOT / path).is_file():
                (course / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / path, course / path)
    _keep_only(course, kept)
    shutil.copytree(seed.seed_dir(ROOT), tmp_path / "shared" / "seed")
    return course


def _keep_only(course: Path, chapters: list[layout.ChapterFiles]) -> None:
    """The scratch course's toc, intro table and errata map list only ``chapters``."""
    toc_path = course / layout.TOC
    text = toc_path.read_text(encoding="utf-8")
    toc = yaml.safe_load(text)
    docnames = {chapter.docname for chapter in chapters}
    parts = []
    for part in toc.get("parts", []):
        kept = [entry for entry in part["chapters"] if entry["file"] in docnames]
        if kept:
            parts.append({**part, "chapters": kept})
    toc["parts"] = parts
    body = yaml.safe_dump(toc, sort_keys=False, allow_unicode=True)
    toc_path.write_text(errata.leading_comment(text) + body, encoding="utf-8")
    numbers = {chapter.number for chapter in chapters}
    intro = course / layout.INTRO
    lines = intro.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        match = template.INTRO_ROW.match(line)
        if match and int(match["number"]) not in numbers:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            lines[index] = "| " + " | ".join([*cells[:-1], ""]) + " |\n"
    intro.write_text("".join(lines), encoding="utf-8")
    ids = {chapter.id for chapter in chapters}
    answers = [answer for answer in errata.read_map(course) if answer.chapter in ids]
    errata.write_map(course, answers)


def test_create_writes_every_file_of_the_chapter_and_says_what_it_changed(course):
    written = new_chapter.create(course, 7, "cnn-weaknesses")
    chapter = layout.ChapterFiles(7, "cnn-weaknesses")
    assert written == [course / path for path in chapter.all()] + [
        course / layout.TOC,
        course / layout.INTRO,
        course / errata.MAP_FILE,
    ]
    assert all(path.is_file() for path in written)
    page = (course / chapter.page).read_text(encoding="utf-8")
    question = seed.questions_of(course)[7]
    assert f"> **7. {question.title}**" in page
    assert f"> **题目：** {question.prompt}" in page
    assert "```{exercise-list} ch07\n```" in page


def test_the_chapter_is_registered_in_the_toc_the_intro_and_the_errata_map(course):
    new_chapter.create(course, 7, "cnn-weaknesses")
    toc = dict(layout.read_toc(course))
    assert toc["Compared with CNNs, RNNs and GNNs"] == ["book/ch07-cnn-weaknesses"]
    row = template.intro_rows((course / layout.INTRO).read_text(encoding="utf-8"))[7]
    assert row[-1] == "[Chapter 7](ch07-cnn-weaknesses.md)"
    rows_of_7 = [row for row in seed.errata_of(course) if 7 in row.questions]
    mapped = [answer for answer in errata.read_map(course) if answer.chapter == "ch07"]
    assert [answer.row_key for answer in mapped] == [errata.row_key(row) for row in rows_of_7]
    assert errata.check_map(course) == []  # each label is a target of the fresh page


def test_the_toc_keeps_the_parts_in_order_and_each_parts_chapters_sorted(course):
    for number, slug in [(12, "position"), (7, "cnn-weaknesses"), (6, "cnn-strengths")]:
        new_chapter.create(course, number, slug)
    toc = layout.read_toc(course)
    assert [caption for caption, _ in toc] == [
        "Foundations",
        "Compared with CNNs, RNNs and GNNs",
        "Applications",
    ]
    assert toc[1][1] == ["book/ch06-cnn-strengths", "book/ch07-cnn-weaknesses"]
    header = (ROOT / layout.TOC).read_text(encoding="utf-8").split("format:")[0]
    assert (course / layout.TOC).read_text(encoding="utf-8").startswith(header)
    assert not [p for p in template.check_course(course) if p.startswith(layout.TOC)]


def snapshot(course: Path) -> dict[str, str]:
    return {
        path.relative_to(course).as_posix(): path.read_text(encoding="utf-8")
        for path in course.rglob("*")
        if path.is_file()
    }


def test_an_existing_chapter_is_refused_and_nothing_is_written(course):
    new_chapter.create(course, 7, "cnn-weaknesses")
    before = snapshot(course)
    with pytest.raises(ValueError, match="chapter 7 exists already: book/ch07-cnn-weaknesses.md"):
        new_chapter.create(course, 7, "cnn-weaknesses")
    with pytest.raises(ValueError, match="chapter 7 exists already"):
        new_chapter.create(course, 7, "another-slug")
    with pytest.raises(ValueError, match="chapter 2 exists already: book/ch02-computation.md"):
        new_chapter.create(course, 2, "computation-again")
    assert snapshot(course) == before


def test_a_chapter_whose_other_files_exist_is_refused(course):
    (course / "solutions" / "ch08").mkdir(parents=True)
    with pytest.raises(ValueError, match="chapter 8 exists already: solutions/ch08"):
        new_chapter.create(course, 8, "rnn-strengths")


@pytest.mark.parametrize("number", [0, 31, -1, True, "7", 7.0])
def test_a_bad_number_is_refused(course, number):
    with pytest.raises(ValueError, match="chapter number"):
        new_chapter.create(course, number, "fine-slug")


@pytest.mark.parametrize(
    "slug", ["", "Capital", "under_score", "-lead", "trail-", "two--dashes", "a b"]
)
def test_a_bad_slug_is_refused(course, slug):
    with pytest.raises(ValueError, match="the slug must be lower-case words"):
        new_chapter.create(course, 7, slug)


@pytest.mark.parametrize(("number", "slug"), NEW)
def test_the_template_check_reports_the_placeholders_of_the_fresh_page(course, number, slug):
    new_chapter.create(course, number, slug)
    page = course / layout.ChapterFiles(number, slug).page
    problems = template.check_chapter(page)
    assert problems
    assert all("placeholder of the template left: " in problem for problem in problems)
    for placeholder in [
        f"# {number}. TODO: the chapter's title",  # the title
        "*TODO: the question in English, in italics.*",  # the translation
        "TODO: the answer in one paragraph",  # the short answer
        "- TODO: three to six takeaways",  # the key takeaways
    ]:
        assert any(problem.endswith(placeholder) or placeholder in problem for problem in problems)
    has_rows = any(number in row.questions for row in seed.errata_of(course))
    assert ("What the Q&A gets wrong" in page.read_text(encoding="utf-8")) == has_rows


def fill(text: str) -> str:
    """Write every placeholder as an author would, mechanically: delete the TODO lines that are
    comments or instructions, keep the text of the others without the TODO, and give the
    template's example task a name of the chapter's own."""
    kept = [line for line in text.splitlines(keepends=True) if not _instruction(line)]
    written = re.sub(r"TODO:? ?", "", "".join(kept))
    return written.replace("center_rows", "row_deviations").replace("CENTER_ROWS", "DEVIATIONS")


def _instruction(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(("% TODO", "# TODO"))


@pytest.mark.parametrize(("number", "slug"), NEW)
def test_once_written_the_chapter_passes_the_template_check(course, number, slug):
    before = set(template.check_course(course))
    written = new_chapter.create(course, number, slug)
    chapter = layout.ChapterFiles(number, slug)
    new_problems = set(template.check_course(course)) - before
    others = chapter.all()[1:]
    assert new_problems == {
        f"{path.as_posix()}: placeholder of the template (TODO) left" for path in others
    } | {f"{path.as_posix()}: the template's example task (center_rows) is left" for path in others}
    for path in written[:5]:
        path.write_text(fill(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert template.check_chapter(course / chapter.page) == []
    assert set(template.check_course(course)) == before
    assert errata.check_map(course) == []


@pytest.mark.parametrize(("number", "slug"), NEW)
def test_the_generated_python_is_formatted_and_lint_clean(course, number, slug):
    written = new_chapter.create(course, number, slug)
    python = [str(path) for path in written if path.suffix == ".py"]
    assert len(python) == 3
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["format", "--check", "--diff"], ["check"]):
        result = subprocess.run(
            [str(RUFF), *command, *config, *python], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def load(path: Path, name: str, monkeypatch):
    """Import ``path`` as module ``name`` for this test only. ``from package import name`` reads
    the package's attribute first, so the attribute is swapped too (the real module of that name,
    when the repository has one, may be imported already)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        monkeypatch.setattr(sys.modules[parent], child, module, raising=False)
    spec.loader.exec_module(module)
    return module


def test_the_generated_tasks_build_the_notebook_and_pass_their_tests(course, monkeypatch):
    new_chapter.create(course, 7, "cnn-weaknesses")
    chapter = layout.ChapterFiles(7, "cnn-weaknesses")
    tasks = load(course / chapter.tasks_module, "selfattn_course.grading.tasks.ch07", monkeypatch)
    assert [task.id for task in tasks.TASKS] == ["ch07.center_rows"]
    assert sum(task.points for task in tasks.TASKS) == 10
    source = (course / chapter.solution_source).read_text(encoding="utf-8")
    notebook = solution_notebook("ch07", source, tasks.TASKS)
    cell_ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells]
    assert {"center_rows-solution", "center_rows"} <= set(cell_ids)
    bank = load(course / chapter.bank, "grading_bank_ch07", monkeypatch)
    (entry,) = bank.BANK.values()
    ((name, words),) = entry["mistakes"].items()
    (mistake,) = [m for m in tasks.CENTER_ROWS.mistakes if words in m.description and m.source]
    assert name == "center_rows"
    wrong = mistake.bound("center_rows").wrong
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert not torch.equal(wrong(x), tasks.center_rows(x))
    tests = load(course / chapter.tests, "test_ch07_generated", monkeypatch)
    test_functions = [getattr(tests, name) for name in dir(tests) if name.startswith("test_")]
    assert test_functions
    for test in test_functions:
        test()
