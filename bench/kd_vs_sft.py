"""Held-out KL to the teacher: KD student against SFT student, same data, steps, seed, lr.

    python bench/kd_vs_sft.py DEMO_DIR [--steps 150 300] [--lrs 1e-3 3e-3] [--seeds 0 1 2]

DEMO_DIR is what `distill demo --out DEMO_DIR` wrote. Two held-out sets: the training
run's own split of the curated rows, and up to 300 curated-away rows (teacher text the
students never saw; exact duplicates excluded), which gives ~20x more tokens. Prints
each KL and the ratio KD / SFT (below 1: KD is closer to the teacher), the NLL of the
teacher's text under each student, and from the split's held-out curve (every
`--eval-every` steps) how many steps KD needed to reach SFT's final KL: steps_KD /
steps_SFT, interpolated linearly between evaluation points ("<first" when KD was already
there at the first evaluation, "never" when it did not get there).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pyarrow.compute as pc
from transformers import AutoModelForCausalLM

from distill.store import read_table
from distill.train import heldout_metrics, train_student


def steps_to_reach(curve: list[dict], target: float) -> float | str:
    """First step at which `curve`'s KL is <= `target`, linear between evaluations.

    "<first" when the first evaluation is already there, "never" when none is.
    """
    for i, point in enumerate(curve):
        if point["kl"] <= target:
            if i == 0:
                return "<first"
            prev = curve[i - 1]
            frac = (prev["kl"] - target) / (prev["kl"] - point["kl"])
            return prev["step"] + frac * (point["step"] - prev["step"])
    return "never"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("--steps", type=int, nargs="+", default=[150, 300])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--heldout-fraction", type=float, default=0.25)
    args = parser.parse_args()

    rejected = read_table(args.demo_dir / "curated" / "rejected")
    unseen = rejected.filter(pc.not_equal(rejected["reject_reason"], "exact_duplicate"))
    unseen = unseen.slice(0, 300)
    print(
        f"{'steps':>5s} {'lr':>7s} {'seed':>4s} {'split KL sft':>12s} {'kd':>7s} {'ratio':>6s} "
        f"{'unseen KL sft':>13s} {'kd':>7s} {'ratio':>6s} {'NLL sft':>7s} {'kd':>7s} "
        f"{'unseen NLL sft':>14s} {'kd':>7s} {'KD steps to SFT KL':>18s}"
    )
    ratios: dict[tuple[int, float], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            for lr in args.lrs:
                for seed in args.seeds:
                    result, other = {}, {}
                    for mode in ("sft", "kd"):
                        out = Path(tmp) / f"{mode}-{steps}-{lr}-{seed}"
                        result[mode] = train_student(
                            args.demo_dir / "curated",
                            out,
                            mode=mode,
                            max_steps=steps,
                            learning_rate=lr,
                            seed=seed,
                            heldout_fraction=args.heldout_fraction,
                            eval_every=args.eval_every,
                        )
                        model = AutoModelForCausalLM.from_pretrained(out / "model")
                        other[mode] = heldout_metrics(model, unseen)
                    split = {m: r.heldout for m, r in result.items()}
                    reach = steps_to_reach(result["kd"].heldout_curve, split["sft"]["kl"])
                    if isinstance(reach, float):
                        ratios.setdefault((steps, lr), []).append(reach / steps)
                        reach_text = f"{reach:.0f}/{steps} = {reach / steps:.2f}"
                    else:
                        reach_text = reach
                    print(
                        f"{steps:5d} {lr:7.0e} {seed:4d} {split['sft']['kl']:12.4f} "
                        f"{split['kd']['kl']:7.4f} {split['kd']['kl'] / split['sft']['kl']:6.3f} "
                        f"{other['sft']['kl']:13.4f} {other['kd']['kl']:7.4f} "
                        f"{other['kd']['kl'] / other['sft']['kl']:6.3f} "
                        f"{split['sft']['nll']:7.4f} {split['kd']['nll']:7.4f} "
                        f"{other['sft']['nll']:14.4f} {other['kd']['nll']:7.4f} {reach_text:>18s}",
                        flush=True,
                    )
    for (steps, lr), values in ratios.items():
        spread = f" (min {min(values):.2f}, max {max(values):.2f})" if len(values) > 1 else ""
        print(
            f"steps {steps} lr {lr:.0e}: KD reaches SFT's final split KL at "
            f"{statistics.mean(values):.2f} x SFT's steps, mean of {len(values)} seeds{spread}"
        )
    print(
        f"unseen set: {unseen.num_rows} rows; split: heldout_fraction={args.heldout_fraction}; "
        f"curve every {args.eval_every} steps"
    )


if __name__ == "__main__":
    main()
