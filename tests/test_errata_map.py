"""book/errata.yml: every row of ../shared/seed/ERRATA.md is answered in the chapters it concerns.

The map and its check live in selfattn_course/authoring/errata.py. The seed is read from
../shared/seed relative to the repository root, where CI checks it out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from selfattn_course.authoring import errata, seed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def seed_is_checked_out():
    if not (seed.seed_dir(ROOT) / seed.ERRATA_FILE).is_file():
        pytest.fail(f"the seed is not checked out at {seed.seed_dir(ROOT)} (CI puts it there)")


def test_every_row_of_a_written_chapter_is_answered_at_a_label_of_its_errata_section():
    problems = errata.check_map(ROOT)
    assert not problems, "\n".join(problems)


def test_the_map_answers_rows_of_several_questions_in_each_written_chapter():
    answered = {(answer.chapter, answer.row_key) for answer in errata.read_map(ROOT)}
    shared = [row for row in seed.errata_of(ROOT) if 3 in row.questions and len(row.questions) > 1]
    assert shared, "ERRATA.md has rows for questions 3, 7, 9"
    for row in shared:
        assert ("ch03", errata.row_key(row)) in answered


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A copy of the book's pages and map, with the seed next to it as in CI."""
    course = tmp_path / "course"
    (course / "book").mkdir(parents=True)
    for page in (ROOT / "book").glob("ch*.md"):
        shutil.copy(page, course / "book" / page.name)
    shutil.copy(ROOT / errata.MAP_FILE, course / errata.MAP_FILE)
    shutil.copytree(seed.seed_dir(ROOT), tmp_path / "shared" / "seed")
    assert errata.check_map(course) == []
    return course


def edit_map(course: Path, change) -> None:
    path = course / errata.MAP_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_row_left_out_of_the_map_is_reported_with_its_line_in_errata(scratch):
    edit_map(scratch, lambda data: data["ch02"].pop(1))  # "Output = Value · AttentionWeight"
    (problem,) = errata.check_map(scratch)
    row = next(r for r in seed.errata_of(scratch) if "AttentionWeight" in r.claim)
    assert problem.startswith(f"ERRATA.md:{row.line} (Q 2: ")
    assert "is not answered in ch02" in problem


def test_a_label_missing_from_the_page_is_reported(scratch):
    page = scratch / "book" / "ch02-computation.md"
    page.write_text(page.read_text().replace("(ch02-qa-scale)=", "(ch02-qa-scaling)="))
    (problem,) = errata.check_map(scratch)
    assert "has no target (ch02-qa-scale)=" in problem


def test_a_label_outside_the_errata_section_does_not_count(scratch):
    page = scratch / "book" / "ch01-concept.md"
    text = page.read_text().replace("- (ch01-qa-information-loss)=\n  ", "- ")
    text = text.replace("## Short answer\n", "## Short answer\n\n(ch01-qa-information-loss)=\n")
    page.write_text(text)
    (problem,) = errata.check_map(scratch)
    assert "has no target (ch01-qa-information-loss)=" in problem


def test_a_claim_that_errata_does_not_have_is_reported(scratch):
    def invent(data):
        data["ch01"].append({"questions": [1], "claim": "attention is magic", "label": "x"})

    edit_map(scratch, invent)
    problems = errata.check_map(scratch)
    assert any("attention is magic) is not a row of ERRATA.md" in p for p in problems)


def test_a_row_mapped_to_a_chapter_it_is_not_about_is_reported(scratch):
    edit_map(scratch, lambda data: data.setdefault("ch04", []).append(dict(data["ch01"][0])))
    problems = errata.check_map(scratch)
    assert any("the row is not about question ch04" in p for p in problems)


def test_claims_are_matched_whatever_their_whitespace(scratch):
    def rewrap(data):
        claim = data["ch02"][2]["claim"]
        data["ch02"][2]["claim"] = claim.replace(" ", "\n  ", 3)

    edit_map(scratch, rewrap)
    assert errata.check_map(scratch) == []


def test_labels_are_made_of_the_claims_english_words_and_are_unique():
    claim = '"gradient vanishing" listed as a weakness of self-attention'
    assert errata.label_for("ch07", claim, set()) == "ch07-qa-gradient-vanishing-listed-weakness"
    taken = {"ch07-qa-gradient-vanishing-listed-weakness"}
    assert errata.label_for("ch07", claim, taken) == "ch07-qa-gradient-vanishing-listed-weakness-2"
    assert errata.label_for("ch07", "带缓冲的自注意力层", set()) == "ch07-qa-row"
