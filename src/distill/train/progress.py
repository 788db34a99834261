"""Training progress: a live bar on a terminal, plain periodic lines anywhere else.

`TrainProgress` is a `TrainerCallback`. On a terminal it draws a rich bar with the step,
steps/s, the last logged loss and an ETA. When the output is a file or a pipe (a job log,
CI) a bar would be a mess of control codes, so it writes one line every ~10 % of the steps
or every `every_s` seconds, whichever comes first, plus the first and last step.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback


def progress_line(step: int, total: int, steps_per_s: float, loss: float | None) -> str:
    """One plain progress line: `train: step 30/150 (20%), 2.10 steps/s, loss 5.1234, ETA 57s`."""
    left = (total - step) / steps_per_s if steps_per_s > 0 else float("nan")
    eta = f"{left:.0f}s" if left == left else "?"
    shown = "-" if loss is None else f"{loss:.4f}"
    return (
        f"train: step {step}/{total} ({100 * step // max(total, 1)}%), "
        f"{steps_per_s:.2f} steps/s, loss {shown}, ETA {eta}"
    )


class TrainProgress(TrainerCallback):
    """A bar (terminal) or periodic lines (`stream`, default stderr) while the Trainer runs."""

    def __init__(self, stream: IO[str] | None = None, every_s: float = 30.0):
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.console = Console(file=self.stream)
        self.bar: Progress | None = None
        self.loss: float | None = None
        self.pending, self.rate = False, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.total, self.first = state.max_steps, state.global_step
        self.started = self.last_line = time.perf_counter()
        self.every_steps = max(1, self.total // 10)
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} steps/s  loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.bar.add_task(
                "train", total=self.total, completed=self.first, rate="-", loss="-"
            )
            self.bar.start()
        elif self.first:
            print(f"train: resuming at step {self.first}/{self.total}", file=self.stream)

    def on_step_end(self, args, state, control, **kwargs):
        step, now = state.global_step, time.perf_counter()
        self.rate = (step - self.first) / max(now - self.started, 1e-9)
        if self.bar is not None:
            loss = "-" if self.loss is None else f"{self.loss:.4f}"
            self.bar.update(self.task, completed=step, rate=f"{self.rate:.2f}", loss=loss)
        else:
            periodic = step % self.every_steps == 0 or now - self.last_line >= self.every_s
            self.pending = self.pending or periodic or step in (self.first + 1, self.total)

    def on_log(self, args, state, control, logs=None, **kwargs):
        # The Trainer logs a step's loss after its on_step_end: a due line waits for it.
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            self._line(state.global_step)

    def _line(self, step: int) -> None:
        if self.pending:
            self.pending, self.last_line = False, time.perf_counter()
            print(
                progress_line(step, self.total, self.rate, self.loss), file=self.stream, flush=True
            )

    def on_train_end(self, args, state, control, **kwargs):
        self._line(state.global_step)
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
