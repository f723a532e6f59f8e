"""Every chapter page follows the chapter template (selfattn_course/authoring/template.py).

The pages checked are those in _toc.yml and those in book/ (named chNN-<slug>.md), so a page
missing from either is still checked. The seed is read from ../shared/seed relative to the
repository root, where CI checks it out. The tests after the first two show that the check
finds each kind of problem, on a scratch copy of chapter 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfattn_course.authoring import book, layout, seed, template
from selfattn_course.authoring.notebooks import statement_markdown
from selfattn_course.grading.spec.registry import chapter_tasks

ROOT = Path(__file__).resolve().parents[1]
TOC_PAGES = {
    ROOT / f"{docname}.md"
    for _, docnames in layout.read_toc(ROOT)
    for docname in docnames
    if Path(docname).name.startswith("ch")
}
PAGES = sorted(TOC_PAGES | set(layout.chapter_pages(ROOT)))


@pytest.fixture(scope="module", autouse=True)
def seed_is_checked_out():
    if not (seed.seed_dir(ROOT) / seed.SEED_FILE).is_file():
        pytest.fail(f"the seed is not checked out at {seed.seed_dir(ROOT)} (CI puts it there)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_chapter_page_follows_the_template(page):
    assert page.is_file(), f"_toc.yml lists {page.relative_to(ROOT)}, which does not exist"
    problems = template.check_chapter(page, ROOT)
    assert not problems, "\n".join(problems)


def test_every_chapter_is_in_the_toc_under_its_part_in_the_intro_and_has_all_its_files():
    problems = template.check_course(ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", layout.chapter_pages(ROOT), ids=lambda page: page.stem)
def test_the_exercise_list_shows_every_task_of_the_chapter_with_its_points(page):
    chapter = layout.chapter_of_page(page).id
    tasks = list(chapter_tasks(chapter).values())
    listed = book.exercise_markdown(chapter)
    positions = [listed.index(statement_markdown(n, task)) for n, task in enumerate(tasks, 1)]
    assert positions == sorted(positions), "the tasks are listed in the order of TASKS"
    total = sum(task.points for task in tasks)
    assert f"{len(tasks)} tasks, {total:g} points in all" in listed
    assert f"selfattn-course check exercises/{chapter}/{chapter}.ipynb" in listed


# --- the check finds what is wrong --------------------------------------------------------------

CH02 = "ch02-computation.md"


@pytest.fixture
def scratch(tmp_path) -> Path:
    """Chapter 2's page and tasks module in a scratch course, with the seed next to it."""
    course = tmp_path / "course"
    (course / "book").mkdir(parents=True)
    shutil.copy(ROOT / "book" / CH02, course / "book" / CH02)
    tasks = layout.ChapterFiles(2, "computation").tasks_module
    (course / tasks).parent.mkdir(parents=True)
    shutil.copy(ROOT / tasks, course / tasks)
    shutil.copytree(seed.seed_dir(ROOT), tmp_path / "shared" / "seed")
    assert template.check_chapter(course / "book" / CH02) == []
    return course


def problems_after(course: Path, old: str, new: str) -> list[str]:
    page = course / "book" / CH02
    text = page.read_text(encoding="utf-8")
    assert old in text, old
    page.write_text(text.replace(old, new, 1), encoding="utf-8")
    return template.check_chapter(page)


def section_of(course: Path, title: str) -> str:
    """The text of a section, from its heading to the next one."""
    text = (course / "book" / CH02).read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    return text[start : text.index("\n## ", start) + 1]


def test_a_section_out_of_order_is_reported(scratch):
    short_answer = section_of(scratch, "Short answer")
    page = scratch / "book" / CH02
    text = page.read_text(encoding="utf-8").replace(short_answer, "")
    text = text.replace("## Key takeaways\n", short_answer + "## Key takeaways\n")
    page.write_text(text, encoding="utf-8")
    (problem,) = template.check_chapter(page)
    assert "the sections (##) must be, in order: The question, Short answer, Explanation" in problem
    assert "the page has: The question, Explanation" in problem


def test_an_extra_section_is_reported(scratch):
    (problem,) = problems_after(scratch, "## In code\n", "## More\n\nText.\n\n## In code\n")
    assert "the page has: The question, Short answer, Explanation, More, In code" in problem


def test_the_errata_section_is_required_when_errata_has_rows_for_the_question(scratch):
    errata = section_of(scratch, "What the Q&A gets wrong")
    (problem,) = problems_after(scratch, errata, "")
    assert "ERRATA.md has 5 row(s) for question 2" in problem


def test_a_question_that_is_not_the_seeds_is_reported(scratch):
    (problem,) = problems_after(scratch, "请详细描述自注意力层的计算过程。", "请描述自注意力层。")
    assert "the question must quote the seed's prompt as '> **题目：** 请详细描述" in problem


def test_the_seeds_heading_must_be_quoted_as_bold_text(scratch):
    problems = problems_after(
        scratch, "> **2. 自注意力层是如何计算的？**", "> ### 2. 自注意力层是如何计算的？"
    )
    assert any("the seed's heading as '> **2. 自注意力层是如何计算的？**'" in p for p in problems)


def test_the_english_translation_is_required(scratch):
    (problem,) = problems_after(
        scratch, "*How is a self-attention layer computed? Describe the computation in detail.*", ""
    )
    assert "after the quote comes the question in English, in italics" in problem


def test_the_exercise_list_must_be_the_chapters_own(scratch):
    (problem,) = problems_after(scratch, "{exercise-list} ch02", "{exercise-list} ch03")
    assert "the exercise list is the chapter's own: ```{exercise-list} ch02```" in problem


def test_a_hand_written_exercise_list_is_reported(scratch):
    problems = problems_after(
        scratch,
        "```{exercise-list} ch02\n```\n",
        "1. **Scores** (2 points): write `attention_scores`.\n",
    )
    assert any("points are stated once, in the task spec" in p for p in problems)
    assert any("listed by one ```{exercise-list} ch02``` block" in p for p in problems)


def test_a_chapter_without_a_tasks_module_is_reported(scratch):
    (scratch / layout.ChapterFiles(2, "computation").tasks_module).unlink()
    (problem,) = template.check_chapter(scratch / "book" / CH02)
    assert "the chapter has no tasks module selfattn_course/grading/tasks/ch02.py" in problem


def test_a_chapter_that_draws_no_figure_is_reported(scratch):
    page = scratch / "book" / CH02
    text = page.read_text(encoding="utf-8")
    for call in ("plt.show()", "new_figure(", "loglog(", ".hist(", ".plot("):
        text = text.replace(call, "print(")
    page.write_text(text, encoding="utf-8")
    assert template.check_chapter(page) == [
        "book/ch02-computation.md: no code cell draws a figure "
        "(a matplotlib or selfattn_course.plotting call)"
    ]


def test_a_placeholder_left_is_reported_with_its_line(scratch):
    (problem,) = problems_after(scratch, "## Key takeaways\n\n", "## Key takeaways\n\n- TODO\n")
    assert problem.startswith("book/ch02-computation.md:")
    assert problem.endswith("placeholder of the template left: - TODO")


def test_the_references_are_the_filtered_bibliography(scratch):
    (problem,) = problems_after(scratch, ":filter: docname in docnames\n", "")
    assert "':filter: docname in docnames'" in problem


def test_the_title_carries_the_chapters_number_and_label(scratch):
    problems = problems_after(scratch, "(ch02)=\n# 2. How", "# 3. How")
    assert any("the title must read '# 2. <title>'" in p for p in problems)
    assert any("preceded by the label '(ch02)='" in p for p in problems)


def test_headings_inside_code_cells_are_not_sections(scratch):
    assert problems_after(scratch, "pairs = 4000\n", "pairs = 4000\n## not a heading\n") == []
