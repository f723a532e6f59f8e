"""The formatter and linter (ruff, configured in pyproject.toml) over the Python sources and over
the code cells of the chapters and solution sources, and the cell reader that makes the latter
possible (selfattn_course/authoring/cells.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from selfattn_course.authoring import cells

REPO = Path(__file__).resolve().parents[1]
PY_SOURCES = ["selfattn_course", "tests", "benchmarks", "nbgrader_config.py"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True
    )


def test_python_sources_are_formatted():
    checked = ruff("format", "--check", *PY_SOURCES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_python_sources_pass_the_linter():
    checked = ruff("check", "--output-format", "concise", *PY_SOURCES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_chapter_and_solution_code_cells_are_formatted_and_pass_the_linter():
    problems = cells.lint([REPO / "book", REPO / "solutions"])
    assert problems == [], "\n".join(problems) + "\n(run `make format`, then fix the rest)"


PAGE = """\
# A page

```{code-cell} ipython3
x = [1,2]
```

Quoted code is not a cell:

```python
y = [3,4]
```

```{code-cell} ipython3
---
mystnb:
  markdown_format: gfm
---
import os
```

```{code-cell} ipython3
:tags: [seed-code]
z = [5,6]
```
"""


def test_code_cells_are_found_with_either_form_of_options_and_their_first_line():
    found = cells.code_cells(PAGE)
    assert [cell.source for cell in found] == ["x = [1,2]\n", "import os\n", "z = [5,6]\n"]
    assert [cell.first_line for cell in found] == [4, 18, 23]
    assert [cell.verbatim for cell in found] == [False, False, True]


def test_findings_are_reported_at_the_page_line_and_verbatim_cells_are_skipped(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    problems = cells.lint([page])
    assert f"{page}: code cells are not formatted (run `make format`)" in problems
    assert any(p.startswith(f"{page}:18:8: F401") for p in problems), problems  # unused `os`
    assert not any(":23:" in p for p in problems)  # the seed-code cell


def test_fix_formats_the_cells_in_place_and_leaves_the_rest(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    cells.lint([page], fix=True)
    text = page.read_text()
    assert "x = [1, 2]\n" in text  # a cell, formatted
    assert "y = [3,4]\n" in text and "z = [5,6]\n" in text  # quoted code and the seed's cell
    assert "import os" not in text  # ruff's safe fix for an unused import
    assert cells.lint([page]) == []


@pytest.mark.parametrize("argv, code", [(["--fix"], 0), ([], 1)])
def test_the_command_exits_1_on_problems_and_0_once_fixed(tmp_path, argv, code, capsys):
    page = tmp_path / "page.md"
    page.write_text("```{code-cell} ipython3\nx = [1,2]\n```\n")
    assert cells.main([*argv, str(page)]) == code
