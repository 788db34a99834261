"""A rich progress bar for generation that shows prompts done and tokens per second."""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class GenProgress:
    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.enabled = total, enabled
        self.tokens = 0
        self.started = time.perf_counter()
        self._progress: Progress | None = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __enter__(self) -> GenProgress:
        self.started = time.perf_counter()
        if self.enabled:
            self._progress = Progress(
                TextColumn("gen"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8.1f} tok/s"),
                TimeRemainingColumn(),
            )
            self._progress.start()
            self._task = self._progress.add_task("gen", total=self.total, rate=0.0)
        return self

    def advance(self, samples: int, tokens: int) -> None:
        self.tokens += tokens
        if self._progress is not None:
            rate = self.tokens / max(self.elapsed, 1e-9)
            self._progress.update(self._task, advance=samples, rate=rate)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
