"""Held-out KL to the teacher: KD student against SFT student, same data, steps, seed, lr.

    python bench/kd_vs_sft.py DEMO_DIR [--steps 150 300] [--lrs 1e-3 3e-3]

DEMO_DIR is what `distill demo --out DEMO_DIR` wrote. Two held-out sets: the training
run's own split of the curated rows, and up to 300 curated-away rows (teacher text the
students never saw; exact duplicates excluded), which gives ~20x more tokens. Prints
each KL and the ratio KD / SFT (below 1: KD is closer to the teacher).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pyarrow.compute as pc
from transformers import AutoModelForCausalLM

from distill.store import read_table
from distill.train import heldout_metrics, train_student


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", default=[150, 300])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--heldout-fraction", type=float, default=0.25)
    args = parser.parse_args()

    rejected = read_table(args.demo_dir / "curated" / "rejected")
    unseen = rejected.filter(pc.not_equal(rejected["reject_reason"], "exact_duplicate"))
    unseen = unseen.slice(0, 300)
    print(
        f"{'steps':>5s} {'lr':>7s} {'split KL sft':>12s} {'split KL kd':>11s} {'ratio':>6s} "
        f"{'unseen KL sft':>13s} {'unseen KL kd':>12s} {'ratio':>6s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            for lr in args.lrs:
                split, other = {}, {}
                for mode in ("sft", "kd"):
                    out = Path(tmp) / f"{mode}-{steps}-{lr}"
                    result = train_student(
                        args.demo_dir / "curated",
                        out,
                        mode=mode,
                        max_steps=steps,
                        learning_rate=lr,
                        heldout_fraction=args.heldout_fraction,
                    )
                    split[mode] = result.heldout["kl"]
                    model = AutoModelForCausalLM.from_pretrained(out / "model")
                    other[mode] = heldout_metrics(model, unseen)["kl"]
                print(
                    f"{steps:5d} {lr:7.0e} {split['sft']:12.4f} {split['kd']:11.4f} "
                    f"{split['kd'] / split['sft']:6.3f} {other['sft']:13.4f} "
                    f"{other['kd']:12.4f} {other['kd'] / other['sft']:6.3f}"
                )
    print(f"unseen set: {unseen.num_rows} rows; split: heldout_fraction={args.heldout_fraction}")


if __name__ == "__main__":
    main()
