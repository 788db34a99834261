"""Checkpoints that survive `kill -9`, and resuming from the last complete one by itself.

With `save_steps`, the Trainer writes `OUT/trainer/checkpoint-N` every N steps (and at the
last step). It writes a checkpoint file by file, so a kill can leave one half-written;
`CheckpointMarker` adds `distill-complete` once the Trainer has finished the whole folder
(its `on_save` runs after the last file), and only marked folders are resumed from.

Before training starts the runner writes `OUT/run_start.json`: the run's settings and the
held-out metrics of the initial student. Running the same command again finds the last
marked checkpoint, checks the settings match (a different run in the same `--out` is
refused, not silently continued) and hands the checkpoint to `Trainer.train`, which
restores weights, optimiser, schedule, RNG and data position. The held-out curve up to
the checkpoint is kept in the checkpoint itself (`heldout_curve.json`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from transformers import Trainer, TrainerCallback, TrainerState
from transformers.trainer import TRAINER_STATE_NAME

from distill.store import write_json

MARKER = "distill-complete"
CURVE_FILE = "heldout_curve.json"
RUN_FILE = "run_start.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_args(save_steps: int | None) -> dict[str, Any]:
    """The Trainer arguments for checkpoints every `save_steps` steps (None: no checkpoints).

    Two checkpoints are kept: the newest may be the one a kill interrupted.
    """
    if save_steps is None:
        return {"save_strategy": "no"}
    if save_steps < 1:
        raise ValueError(f"save_steps must be >= 1, got {save_steps}")
    return {"save_strategy": "steps", "save_steps": save_steps, "save_total_limit": 2}


def _checkpoints(trainer_dir: Path) -> list[tuple[int, Path]]:
    if not trainer_dir.is_dir():
        return []
    found = [(_CHECKPOINT.match(p.name), p) for p in trainer_dir.iterdir() if p.is_dir()]
    return sorted((int(m.group(1)), p) for m, p in found if m)


def last_complete_checkpoint(trainer_dir: Path) -> Path | None:
    """The highest-step `checkpoint-N` under `trainer_dir` that carries the completion marker."""
    complete = [p for _, p in _checkpoints(trainer_dir) if (p / MARKER).is_file()]
    return complete[-1] if complete else None


def _normalised(run: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(run, default=str))


def _flat(run: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (`kd.alpha`), so a refusal names the setting itself."""
    flat: dict[str, Any] = {}
    for key, value in run.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class Resume(BaseModel):
    """Where a rerun picks up: the checkpoint, and what was measured before it."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    checkpoint: Path | None = None
    heldout_initial: dict[str, Any] | None = None
    heldout_curve: list[dict[str, Any]] = []

    @property
    def step(self) -> int | None:
        return None if self.checkpoint is None else int(self.checkpoint.name.split("-")[1])


def find_resume(out_dir: Path, run: dict[str, Any]) -> Resume:
    """The last complete checkpoint in `out_dir` for this `run`, or an empty `Resume`.

    Incomplete checkpoint folders (a kill mid-save) are removed. A complete checkpoint of a
    run with other settings is refused with the settings that differ.
    """
    trainer_dir = out_dir / "trainer"
    checkpoint = last_complete_checkpoint(trainer_dir)
    if checkpoint is None:
        return Resume()
    start_file = out_dir / RUN_FILE
    try:
        start = json.loads(start_file.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{start_file}: unreadable ({exc}); {checkpoint} cannot be resumed safely, "
            f"delete {trainer_dir} to start over"
        ) from None
    wanted = _normalised(run)
    if start.get("run") != wanted:
        held, want = _flat(start.get("run") or {}), _flat(wanted)
        differ = sorted(k for k in set(held) | set(want) if held.get(k) != want.get(k))
        raise ValueError(
            f"{out_dir} holds checkpoints of a different run (differs in {', '.join(differ)}); "
            f"use another --out, or delete {trainer_dir} to start over"
        )
    for _step, path in _checkpoints(trainer_dir):
        if not (path / MARKER).is_file():
            shutil.rmtree(path)  # a save cut short by a kill
    curve = json.loads((checkpoint / CURVE_FILE).read_text())
    return Resume(
        checkpoint=checkpoint, heldout_initial=start["heldout_initial"], heldout_curve=curve
    )


def record_run_start(out_dir: Path, run: dict[str, Any], heldout_initial: dict) -> None:
    """What a rerun needs before its first step: the settings and the initial metrics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RUN_FILE, {"run": _normalised(run), "heldout_initial": heldout_initial})


def train_or_resume(trainer: Trainer, resume: Resume) -> None:
    """`trainer.train()`, from `resume.checkpoint` when there is one.

    A checkpoint at the last step means training had ended (the kill came while the model
    or metrics were written): its weights and state are loaded instead, since `train`
    would take one step past `max_steps` from there.
    """
    if resume.checkpoint is None:
        trainer.train()
    elif resume.step is not None and resume.step >= trainer.args.max_steps:
        trainer._load_from_checkpoint(str(resume.checkpoint))
        trainer.state = TrainerState.load_from_json(str(resume.checkpoint / TRAINER_STATE_NAME))
    else:
        trainer.train(resume_from_checkpoint=str(resume.checkpoint))


class CheckpointMarker(TrainerCallback):
    """After each complete save: the held-out curve so far, then the completion marker."""

    def __init__(self, curve_points: list[dict[str, Any]]):
        self.curve_points = curve_points

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_json(folder / CURVE_FILE, self.curve_points)
            (folder / MARKER).write_text(f"{state.global_step}\n")
