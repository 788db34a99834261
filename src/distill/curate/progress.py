"""Progress for `distill curate`: which step runs, and each step's rows in and out.

The runner only calls `progress(step, None)` before a step and `progress(step, stats)`
after it; this display is the CLI's. On a terminal, a rich bar over the steps with each
finished step printed above it; otherwise plain lines, one as a step starts (a step on a
large input can run for minutes) and one as it ends:

    curate 2/5 near_dedup: started on 120000 rows
    curate 2/5 near_dedup: 120000 in, 118640 kept, dropped near_duplicate 1360, 41.2s
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distill.curate.base import Step
from distill.curate.runner import StepStats
from distill.plain_progress import is_terminal


def finished_line(index: int, total: int, stats: StepStats) -> str:
    dropped = ", ".join(f"{reason} {n}" for reason, n in stats.dropped.items()) or "nothing"
    return (
        f"curate {index}/{total} {stats.step}: {stats.input} in, {stats.kept} kept, "
        f"dropped {dropped}, {stats.seconds:.1f}s"
    )


class CurateProgress:
    """A display for `curate_dataset(..., progress=display)`, used as a context manager."""

    def __init__(self, total_steps: int, stream: TextIO | None = None) -> None:
        self.total, self.stream = total_steps, stream or sys.stderr
        self.index = 0
        self.rows: int | None = None  # rows entering the next step, once known
        self._progress: Progress | None = None

    def __enter__(self) -> CurateProgress:
        if is_terminal(self.stream):
            self._progress = Progress(
                TextColumn("curate"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def __call__(self, step: Step, stats: StepStats | None) -> None:
        if stats is None:
            self.index += 1
            rows = "" if self.rows is None else f" on {self.rows} rows"
            if self._progress is not None:
                self._progress.update(self._task, description=f"{step.name}{rows}")
            else:
                self._print(f"curate {self.index}/{self.total} {step.name}: started{rows}")
            return
        self.rows = stats.kept
        line = finished_line(self.index, self.total, stats)
        if self._progress is not None:
            self._progress.console.print(line)
            self._progress.update(self._task, advance=1)
        else:
            self._print(line)

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
