"""Specification of selfattn_course.display.markdown_table.

References: tables written out by hand, and a parser that splits a GFM table row on the pipes
that are not escaped: every row must give back exactly the cells that went in.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattn_course.display import markdown_table


def parse_row(line: str) -> list[str]:
    """The cells of one GFM table line, split on unescaped ``|``, unescaped and stripped."""
    assert line.startswith("| ") and line.endswith(" |")
    cells = re.split(r"(?<!\\)\|", line[1:-1])
    return [cell.strip().replace("\\|", "|") for cell in cells]


def test_markdown_table_by_hand():
    expected = "| n | FLOPs |\n|---|---|\n| 16 | 1024 |\n| 32 | 4096 |"
    assert markdown_table(["n", "FLOPs"], [[16, 1024], [32, 4096]]) == expected


def test_markdown_table_escapes_a_pipe_inside_a_cell():
    table = markdown_table(["a|b"], [["x | y"]])
    assert table.splitlines() == ["| a\\|b |", "|---|", "| x \\| y |"]


def test_markdown_table_with_an_escaped_pipe_keeps_one_cell_per_column():
    lines = markdown_table(["left", "right"], [["|", "a|b|c"]]).splitlines()
    assert parse_row(lines[2]) == ["|", "a|b|c"]


def test_markdown_table_replaces_a_newline_in_a_cell_by_a_space():
    assert markdown_table(["x"], [["two\nlines"]]).split("\n")[2] == "| two lines |"


@pytest.mark.parametrize("text", ["two\r\nlines", "two\rlines"])
def test_markdown_table_replaces_a_carriage_return_in_a_cell_by_a_space(text):
    # CommonMark ends a line at \r too, so a cell holding one would split its row in two.
    assert markdown_table(["x"], [[text]]).split("\n")[2] == "| two lines |"


def test_markdown_table_writes_cells_with_str():
    assert markdown_table([1, None], [[1.5, True]]).splitlines() == [
        "| 1 | None |",
        "|---|---|",
        "| 1.5 | True |",
    ]


def test_markdown_table_keeps_maths_for_myst():
    assert "| $O(n^2 d)$ |" in markdown_table(["cost"], [["$O(n^2 d)$"]])


def test_markdown_table_without_rows_is_the_header_and_the_rule():
    assert markdown_table(["a", "b"], []) == "| a | b |\n|---|---|"


def test_markdown_table_takes_rows_from_a_generator():
    table = markdown_table(("n", "n²"), ((n, n * n) for n in range(3)))
    assert table.splitlines()[2:] == ["| 0 | 0 |", "| 1 | 1 |", "| 2 | 4 |"]


@pytest.mark.parametrize("row", [[1], [1, 2, 3], []])
def test_markdown_table_rejects_a_row_of_the_wrong_length(row):
    with pytest.raises(ValueError) as info:
        markdown_table(["a", "b"], [[0, 0], row])
    assert f"row 1 has {len(row)} cells, the header 2" in str(info.value)


def test_markdown_table_rejects_an_empty_header():
    with pytest.raises(ValueError, match="the header names no column"):
        markdown_table([], [])


cell_text = st.text(st.characters(blacklist_characters="\\"), max_size=8)


@settings(max_examples=25)
@given(
    st.integers(1, 4).flatmap(
        lambda width: st.lists(
            st.lists(cell_text, min_size=width, max_size=width), min_size=1, max_size=4
        )
    )
)
def test_markdown_table_parses_back_to_its_cells(table_cells):
    header, *rows = table_cells
    lines = markdown_table(header, rows).split("\n")
    assert len(lines) == len(rows) + 2 and not any("\r" in line for line in lines)
    assert lines[1] == "|---" * len(header) + "|"
    for line, cells in zip([lines[0], *lines[2:]], [header, *rows], strict=True):
        expected = [re.sub(r"\r\n|\r|\n", " ", cell).strip() for cell in cells]
        assert parse_row(line) == expected
