"""Format and lint the code cells of MyST Markdown notebooks (chapters, solution sources) with ruff.

Ruff formats and lints Jupyter notebooks cell by cell, but not the MyST Markdown the course writes
its chapters in. So each ``.md`` page's ```` ```{code-cell} ```` blocks are copied, one notebook
cell per block, into a scratch ``.ipynb`` that ruff checks with the project's settings
(``[tool.ruff]`` in ``pyproject.toml``); its findings are reported at the page's own line numbers,
and ``fix=True`` writes ruff's formatting and safe fixes back into the page. Fenced
```` ```python ```` blocks are not code cells and are left alone, and so is a code cell tagged
``seed-code`` (``:tags: [seed-code]``): someone else's code run as it was written, such as the
seed Q&A's.

Command line (``make lint`` / ``make format``)::

    python -m selfattn_course.authoring.cells book solutions          # report, exit 1 if any
    python -m selfattn_course.authoring.cells --fix book solutions    # format the cells in place
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeCell", "code_cells", "lint", "main"]

# ```{code-cell} ipython3            the opening fence, with the kernel name
# :tags: [remove-input]              options: ":key: value" lines, or a YAML block between
# <code>                             two "---" lines
# ```
_CELL = re.compile(
    r"^```\{code-cell\}[^\n]*\n(---\n.*?^---\n|(?::[^\n]*\n)*)(.*?)^```[ \t]*$", re.M | re.S
)
_FMT_OFF = "# fmt: off\n"
PROJECT_CONFIG = Path(__file__).resolve().parents[2] / "pyproject.toml"
# ruff's notebook locations: "ch02.ipynb:cell 3:5:1: F401 ..." or, in a diff, "cell 3".
_FINDING = re.compile(
    r"^(?P<file>[^:\n]+\.ipynb):cell (?P<cell>\d+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$"
)


@dataclass(frozen=True)
class CodeCell:
    """One ```` ```{code-cell} ```` block: where its code starts in the page (1-based line), the
    character span of the code in the page text, and the code itself."""

    first_line: int
    span: tuple[int, int]
    source: str
    options: str = ""

    @property
    def verbatim(self) -> bool:
        """Tagged ``seed-code``: someone else's code shown as it is (the seed Q&A's), not linted."""
        return "seed-code" in self.options


def code_cells(text: str) -> list[CodeCell]:
    """The code cells of a MyST Markdown notebook, in order."""
    cells = []
    for match in _CELL.finditer(text):
        start, stop = match.span(2)
        first_line = text.count("\n", 0, start) + 1
        cells.append(CodeCell(first_line, (start, stop), match.group(2), match.group(1)))
    return cells


def _notebook(cells: list[CodeCell]) -> dict:
    """A scratch notebook of the cells; a verbatim cell is kept (later cells may use its names)
    but marked ``# fmt: off`` so that ruff leaves it as it is."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": (_FMT_OFF if cell.verbatim else "") + cell.source.rstrip("\n"),
            }
            for cell in cells
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 4,
    }


def _ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=cwd, capture_output=True, text=True
    )


def pages(paths: list[str | Path]) -> list[Path]:
    """Every ``.md`` file named, or found below the folders named."""
    found = []
    for path in map(Path, paths):
        found += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return found


def lint(
    paths: list[str | Path], *, fix: bool = False, config: str | Path | None = None
) -> list[str]:
    """Ruff's format check and lint over the code cells of ``paths``; the problems, one a line,
    as ``page.md:LINE:COL: CODE message``. With ``fix``, ruff's safe fixes (sorted imports, unused
    imports) and its formatting are written back first; what is left is reported.

    ``config``: the ``pyproject.toml`` with the ``[tool.ruff]`` settings (default: the course's).
    """
    config = Path(config) if config else PROJECT_CONFIG
    problems = []
    for page in pages(paths):
        text = page.read_text(encoding="utf-8")
        cells = code_cells(text)
        if not cells:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            notebook = folder / f"{page.stem}.ipynb"
            notebook.write_text(json.dumps(_notebook(cells)), encoding="utf-8")
            settings = ["--config", str(config.resolve())]
            if fix:
                _ruff("check", "--fix", "--no-cache", *settings, notebook.name, cwd=folder)
                _ruff("format", *settings, notebook.name, cwd=folder)
                formatted = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
                text = _write_back(text, cells, formatted)
                page.write_text(text, encoding="utf-8")
                cells = code_cells(text)
            else:
                checked = _ruff("format", "--check", *settings, notebook.name, cwd=folder)
                if checked.returncode != 0:
                    problems.append(f"{page}: code cells are not formatted (run `make format`)")
            linted = _ruff(
                "check",
                "--output-format",
                "concise",
                "--no-cache",
                *settings,
                notebook.name,
                cwd=folder,
            )
            problems += _findings(page, cells, linted.stdout)
    return problems


def _source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _write_back(text: str, cells: list[CodeCell], formatted: list[dict]) -> str:
    pieces, position = [], 0
    for cell, new in zip(cells, formatted, strict=True):
        if cell.verbatim:
            continue
        start, stop = cell.span
        pieces += [text[position:start], _source(new).rstrip("\n") + "\n"]
        position = stop
    return "".join(pieces) + text[position:]


def _findings(page: Path, cells: list[CodeCell], output: str) -> list[str]:
    found = []
    for line in output.splitlines():
        match = _FINDING.match(line.strip())
        if match is None:
            continue
        cell = cells[int(match["cell"]) - 1]
        if cell.verbatim:
            continue
        page_line = cell.first_line + int(match["line"]) - 1
        found.append(f"{page}:{page_line}:{match['col']}: {match['rest']}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fix = "--fix" in args
    paths = [arg for arg in args if arg != "--fix"] or ["book", "solutions"]
    problems = lint(paths, fix=fix)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
