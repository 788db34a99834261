"""KD against SFT through the real trainers on a GPU: `train_student` end to end (record
collator, TRL trainer loop, optimizer) at a 1B-class student shape, bf16.

    python -m bench.trainer_gpu [--vocab 128256] [--hidden 2048] [--layers 16] [--steps 12]

The loss-only figure is `bench/kd_step_gpu.py`. This one adds what a user pays per step
in `distill train`: turning Parquet top-k columns into padded tensors on the CPU, moving
them to the GPU, the student's forward and backward, and AdamW. Per-step time is the
median over the steps after the first two, timed by a callback between the trainer's
step hooks with the GPU synchronised. Peak GPU memory is over the whole run. The ratio is
KD over SFT from the same run, same data, seed and batches.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from tests.factories import (
    make_record,
    teacher_for_tokenizer,
    write_fake_dataset,
    write_toy_checkpoint,
)
from transformers import TrainerCallback

from distill.train import TrainConfig, build_random_student, train_student


def build(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    template = write_toy_checkpoint(work / "template", args.vocab)
    student = build_random_student(
        template, work / "student", hidden_size=args.hidden, num_layers=args.layers,
        heads=args.hidden // 64, intermediate=4 * args.hidden, seed=0,
    )  # fmt: skip
    teacher = teacher_for_tokenizer(template, top_k=args.k, vocab_size=args.vocab)
    records = [
        make_record(row=i, n_tokens=args.tokens, teacher=teacher, top_k=args.k)
        for i in range(args.rows)
    ]
    write_fake_dataset(work / "data", records)
    return student, work / "data"


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (data, forward, backward, AdamW), GPU synced."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.start = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        self._sync()
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self._sync()
        self.seconds.append(time.perf_counter() - self.start)


def timed_run(data: Path, student: Path, out: Path, mode: str, steps: int, batch: int) -> tuple:
    """(median step seconds after the first 2, peak GPU GiB) of one training run."""
    gpu = torch.cuda.is_available()  # the CPU path is only for a smoke run of this script
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer()
    config = TrainConfig(
        mode=mode, student=student, max_steps=steps, batch_size=batch, dtype="bfloat16",
        heldout_fraction=0.05, learning_rate=1e-4, seed=0,
    )  # fmt: skip
    train_student(data, out, config, callbacks=[timer])
    steady = sorted(timer.seconds[2:])  # the first steps pay for kernel selection
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0
    return steady[len(steady) // 2], peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=256, help="response tokens per row")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        student, data = build(work, args)
        print(
            f"student: V = {args.vocab}, H = {args.hidden}, {args.layers} layers, bf16; "
            f"{args.rows} rows x {args.tokens} response tokens, batch {args.batch}, k = {args.k}"
        )
        per_step = {}
        for mode in ("sft", "kd"):
            seconds, peak = timed_run(data, student, work / mode, mode, args.steps, args.batch)
            per_step[mode] = seconds
            print(f"  {mode}: {seconds * 1e3:8.1f} ms/step (median), peak GPU {peak:.1f} GiB")
        print(f"  KD / SFT per step: {per_step['kd'] / per_step['sft']:.3f}")


if __name__ == "__main__":
    main()
