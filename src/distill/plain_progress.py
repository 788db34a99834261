"""Progress for output that is not a terminal: a plain line now and then, never a bar.

A rich bar redraws one line with control codes. Written to a log file or a CI job it shows
nothing until the end (rich draws a non-terminal bar once, when it stops), so a run of
hours looks hung. Where the output is not a terminal, the long commands print instead a
line such as `gen: 640/2000 (32%), 812.4 tok/s, 95s elapsed, ETA 202s` at most every
`every` seconds, and one when the work ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class PlainProgress:
    """`update(done)` prints a line when `every` seconds have passed since the last one."""

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.every, self.clock = label, total, every, clock
        self.stream = stream or sys.stderr
        self.started = self.last = clock()

    def update(self, done: int, detail: str = "", final: bool = False) -> None:
        now = self.clock()
        if not final and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        parts = [f"{done}/{self.total} ({done / max(self.total, 1):.0%})"]
        if detail:
            parts.append(detail)
        parts.append(f"{elapsed:.0f}s elapsed")
        if not final and 0 < done < self.total:
            parts.append(f"ETA {elapsed / done * (self.total - done):.0f}s")
        print(f"{self.label}: {', '.join(parts)}", file=self.stream, flush=True)
