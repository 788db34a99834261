"""`distill train --save-steps` survives kill -9: the same command resumes and ends where an
uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.train import TrainConfig, train_student
from distill.train.checkpoints import MARKER, last_complete_checkpoint

STEPS, SAVE_EVERY = 16, 4
# Same init, data order, seed and RNG state restored from the checkpoint: on CPU the resumed
# run repeats the same float operations, so the losses agree to float32 rounding. 1e-5
# relative leaves room for a different summation order, and is far below a changed batch
# or a lost optimiser state (the loss moves by > 1e-2 between steps here).
LOSS_RTOL = 1e-5


def command(dataset: Path, student: Path, out: Path) -> list[str]:
    return [
        "train", str(dataset), "--out", str(out), "--mode", "kd", "--student", str(student),
        "--max-steps", str(STEPS), "--batch-size", "2", "--save-steps", str(SAVE_EVERY),
        "--learning-rate", "3e-3",
    ]  # fmt: skip


def run_cli(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_last_complete_checkpoint_skips_a_half_written_one(tmp_path):
    for step, complete in ((4, True), (8, True), (12, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        if complete:
            (folder / MARKER).write_text(f"{step}\n")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-8"
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_kill_9_then_the_same_command_resumes(real_vocab_dataset, tiny_student, tmp_path):
    args = command(real_vocab_dataset, tiny_student, tmp_path / "killed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    trainer_dir = tmp_path / "killed" / "trainer"
    deadline = time.monotonic() + 240
    while last_complete_checkpoint(trainer_dir) is None and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    killed_at = last_complete_checkpoint(trainer_dir)
    assert killed_at is not None and not (tmp_path / "killed" / "metrics.json").exists()
    # A kill mid-save leaves a folder without the marker: the resume must not pick it.
    (trainer_dir / "checkpoint-999").mkdir()
    (trainer_dir / "checkpoint-999" / "trainer_state.json").write_text("{")

    output = run_cli(args)
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    start = int(killed_at.name.split("-")[1])
    assert f"resumed from the checkpoint of step {start}" in output
    assert resumed["resumed_from_step"] == start < STEPS
    assert not (trainer_dir / "checkpoint-999").exists()

    run_cli(command(real_vocab_dataset, tiny_student, tmp_path / "whole"))
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert whole["resumed_from_step"] is None
    assert resumed["steps"] == whole["steps"] == STEPS
    assert [s for s, _ in resumed["loss_curve"]] == list(range(1, STEPS + 1))
    for (_, got), (_, want) in zip(resumed["loss_curve"], whole["loss_curve"], strict=True):
        assert got == pytest.approx(want, rel=LOSS_RTOL)
    assert resumed["heldout_initial"] == whole["heldout_initial"]
    assert resumed["heldout"]["kl"] == pytest.approx(whole["heldout"]["kl"], rel=LOSS_RTOL)


def test_a_different_run_in_the_same_out_is_refused(real_vocab_dataset, tiny_student, tmp_path):
    common = {"mode": "kd", "student": tiny_student, "batch_size": 2, "save_steps": 2}
    first = train_student(real_vocab_dataset, tmp_path, TrainConfig(max_steps=2, **common))
    with pytest.raises(ValueError, match=r"different run \(differs in max_steps\)"):
        train_student(real_vocab_dataset, tmp_path, TrainConfig(max_steps=3, **common))
    # Killed after the last checkpoint: the rerun loads it and takes no step past max_steps.
    (tmp_path / "metrics.json").unlink()
    again = train_student(real_vocab_dataset, tmp_path, TrainConfig(max_steps=2, **common))
    assert again.resumed_from_step == 2 and again.steps == 2
    assert again.loss_curve == first.loss_curve and again.heldout == first.heldout
