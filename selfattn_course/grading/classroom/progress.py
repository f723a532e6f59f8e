"""A one-line progress bar for long grading runs, on stderr.

On a terminal it redraws one line (``grading [#######.......] 7/16 alice ch02``); in a log file or
a pipe it writes one plain line per step instead, so CI logs stay readable.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    """``advance(note)`` once per step of ``total``; ``close()`` at the end."""

    def __init__(
        self, total: int, *, label: str = "grading", stream: TextIO | None = None, width: int = 24
    ):
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

    def advance(self, note: str = "") -> None:
        self.done = min(self.done + 1, self.total)
        if self.interactive:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(
                f"\r{self.label} [{bar}] {self.done}/{self.total} {note}".ljust(79)[:79]
            )
        else:
            self.stream.write(f"{self.label} {self.done}/{self.total} {note}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
