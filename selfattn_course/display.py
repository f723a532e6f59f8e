"""Tables for the chapters' outputs: a result printed as Markdown renders as a table in the book.

Show one with ``IPython.display.Markdown(markdown_table(header, rows))``; the book parses a
Markdown output as MyST, so ``$...$`` maths in a cell of the table is typeset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown (GFM) table: ``header`` names the columns, each row gives one cell a column.

    Cells are written with ``str()``; a ``|`` inside a cell is escaped and a line break becomes a
    space. ``ValueError`` if a row has another number of cells than the header.

    Example::

        >>> print(markdown_table(["n", "FLOPs"], [[16, 1024], [32, 4096]]))
        | n | FLOPs |
        |---|---|
        | 16 | 1024 |
        | 32 | 4096 |
    """
    header = [_cell(name) for name in header]
    if not header:
        raise ValueError("markdown_table: the header names no column")
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for number, row in enumerate(rows):
        cells = [_cell(value) for value in row]
        if len(cells) != len(header):
            raise ValueError(
                f"markdown_table: row {number} has {len(cells)} cells, the header {len(header)}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    # A line break (\n, \r\n or a lone \r, all line endings to CommonMark) would end the row.
    text = str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return text.replace("|", "\\|")
