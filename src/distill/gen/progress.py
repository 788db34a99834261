"""Progress for gen and score: samples done and tokens per second.

On a terminal, a rich bar; otherwise plain periodic lines (`distill.plain_progress`).
Both go to stderr, where the CLI writes its messages, so stdout stays for results.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from distill.plain_progress import PlainProgress, is_terminal


class GenProgress:
    def __init__(
        self,
        total: int,
        enabled: bool = True,
        label: str = "gen",
        stream: TextIO | None = None,
        every: float = 30.0,
    ) -> None:
        self.total, self.enabled, self.label, self.every = total, enabled, label, every
        self.stream = stream
        self.done = self.tokens = 0
        self.started = time.perf_counter()
        self._progress: Progress | None = None
        self._lines: PlainProgress | None = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __enter__(self) -> GenProgress:
        self.started = time.perf_counter()
        stream = self.stream or sys.stderr
        if self.enabled and is_terminal(stream):
            self._progress = Progress(
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8.1f} tok/s"),
                TimeRemainingColumn(),
                console=Console(file=stream),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, rate=0.0)
        elif self.enabled:
            self._lines = PlainProgress(self.label, self.total, stream, self.every)
        return self

    def _rate(self) -> float:
        return self.tokens / max(self.elapsed, 1e-9)

    def set_total(self, total: int) -> None:
        """A new total (a streamed input learns as it goes how many samples are done)."""
        if total == self.total:
            return
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)
        if self._lines is not None:
            self._lines.total = total

    def advance(self, samples: int, tokens: int) -> None:
        self.done += samples
        self.tokens += tokens
        if self._progress is not None:
            self._progress.update(self._task, advance=samples, rate=self._rate())
        if self._lines is not None:
            self._lines.update(self.done, f"{self._rate():.1f} tok/s")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._lines is not None:
            self._lines.update(self.done, f"{self._rate():.1f} tok/s", final=True)
