"""A one-line progress bar for long grading runs, on stderr.

On a terminal it redraws one line (``grading [#######.......] 7/16 alice ch02``); in a log file or
a pipe it writes one plain line per step instead, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
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


class RateProgress:
    """A :class:`ProgressBar` whose note also gives the rate and the time left:
    ``autograding 7/16 0.52 nb/s ETA 00:00:17 alice ch02``."""

    def __init__(self, total: int, *, label: str = "autograding", stream: TextIO | None = None):
        self.bar = ProgressBar(total, label=label, stream=stream)
        self.total = total
        self.started = time.perf_counter()

    def advance(self, note: str = "") -> None:
        done = self.bar.done + 1
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime(left))
        self.bar.advance(f"{rate:.2f} nb/s ETA {eta} {note}")

    def close(self) -> None:
        self.bar.close()
