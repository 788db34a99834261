"""`train` progress: plain periodic lines when the output is not a terminal."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

from distill.train import TrainConfig, train_student
from distill.train.progress import TrainProgress, progress_line

LINE = re.compile(
    r"^train: step (\d+)/(\d+) \((\d+)%\), (\d+\.\d\d) steps/s, loss (\d+\.\d{4}), ETA (\d+)s$"
)


def test_progress_line():
    assert progress_line(30, 150, 2.0, 5.12345) == (
        "train: step 30/150 (20%), 2.00 steps/s, loss 5.1235, ETA 60s"
    )
    assert progress_line(0, 10, 0.0, None).endswith("0.00 steps/s, loss -, ETA ?")


def drive(progress: TrainProgress, total: int, first: int = 0) -> None:
    """The Trainer's call order: on_step_end, then on_log with that step's loss."""
    state = SimpleNamespace(max_steps=total, global_step=first)
    progress.on_train_begin(None, state, None)
    for step in range(first + 1, total + 1):
        state.global_step = step
        progress.on_step_end(None, state, None)
        progress.on_log(None, state, None, logs={"loss": 10.0 - step / 10})
    progress.on_train_end(None, state, None)


def test_lines_every_tenth_of_the_run_with_that_steps_loss():
    stream = io.StringIO()
    drive(TrainProgress(stream=stream, every_s=1e9), total=40)
    lines = stream.getvalue().splitlines()
    steps = [int(LINE.match(line).group(1)) for line in lines]
    assert steps == [1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    for line, step in zip(lines, steps, strict=True):
        assert float(LINE.match(line).group(5)) == round(10.0 - step / 10, 4)


def test_lines_every_few_seconds_and_on_resume():
    stream = io.StringIO()
    drive(TrainProgress(stream=stream, every_s=0.0), total=12, first=8)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "train: resuming at step 8/12"
    assert [int(LINE.match(line).group(1)) for line in lines[1:]] == [9, 10, 11, 12]


def test_a_real_run_prints_each_steps_logged_loss(real_vocab_dataset, tiny_student, tmp_path):
    stream = io.StringIO()
    config = TrainConfig(mode="sft", student=tiny_student, max_steps=10, batch_size=2)
    result = train_student(
        real_vocab_dataset, tmp_path, config, callbacks=[TrainProgress(stream=stream, every_s=1e9)]
    )
    matches = [LINE.match(line) for line in stream.getvalue().splitlines()]
    assert all(matches) and [int(m.group(1)) for m in matches] == list(range(1, 11))
    losses = dict(result.loss_curve)
    for m in matches:
        assert float(m.group(5)) == round(losses[int(m.group(1))], 4)
        assert int(m.group(2)) == 10 and float(m.group(4)) > 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_not_lines():
    stream = Terminal()
    drive(TrainProgress(stream=stream), total=40)
    text = stream.getvalue()
    assert "40/40" in text and "steps/s" in text and "ETA" in text
    assert not any(LINE.match(line) for line in text.splitlines())
