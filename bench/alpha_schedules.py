"""Top-k KD students under each `alpha_schedule`, judged like `bench/three_way.py`.

    python -m bench.alpha_schedules PROMPTS.jsonl --data DIR [--steps 60] [--seeds 0 1 2]
        [--schedules constant linear taid taid_adaptive]

Same data (three_way's cached top-k dataset), split, init, data order, steps and lr for
every schedule of a seed; only the KD loss's schedule differs:

  constant       alpha 0.5 throughout (the baseline; three_way's "kd top-k")
  linear         alpha from `--linear-from` to `--linear-to` (default 0 -> 1: the same mean
                 KD weight as constant, moved from the hard labels to the teacher)
  taid           alpha 0.5, KD target TAID's interpolation with t rising linearly from 0.4
  taid_adaptive  alpha 0.5, TAID's adaptive t, paper defaults (t_start 0.4, step 5e-4,
                 momentum 0.99)

Reported on the held-out rows against the live teacher (`three_way.LiveTeacherEval`): dense
KL, top-k bucket KL, NLL of the teacher's text, each schedule's per-seed ratio to constant,
the steps it needs to reach constant's final dense KL, and the trajectory of alpha / t.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from bench.three_way import experiment_parser, mean_sd, prepare, reach_cell, steps_to_reach
from distill.train import KDLossConfig, TrainConfig, train_student
from distill.train.schedules import ALPHA_SCHEDULES


def kd_loss(schedule: str, args: argparse.Namespace) -> KDLossConfig:
    """The KD loss spec of one schedule; TAID's knobs stay at their paper defaults."""
    if schedule == "linear":
        return KDLossConfig(
            alpha=args.linear_from, alpha_schedule="linear", alpha_end=args.linear_to
        )
    return KDLossConfig(alpha=args.alpha, alpha_schedule=schedule)


class Trajectory(TrainerCallback):
    """Records the logged `kd_alpha` and `taid_t` of each step (logging_steps is 1)."""

    def __init__(self) -> None:
        self.alpha: list[float] = []
        self.t: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "kd_alpha" in logs:
            self.alpha.append(float(logs["kd_alpha"]))
        if "taid_t" in logs:
            self.t.append(float(logs["taid_t"]))

    def describe(self) -> str:
        mid = len(self.t) // 2
        t = "t -"
        if self.t:  # first / middle / last step, and the mean over steps
            mean = sum(self.t) / len(self.t)
            t = f"t {self.t[0]:.3f}/{self.t[mid]:.3f}/{self.t[-1]:.3f} mean {mean:.4f}"
        return f"alpha {self.alpha[0]:.2f}->{self.alpha[-1]:.2f}, {t}" if self.alpha else t


def main() -> None:
    parser = experiment_parser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--linear-from", type=float, default=0.0)
    parser.add_argument("--linear-to", type=float, default=1.0)
    parser.add_argument(
        "--schedules", nargs="+", choices=ALPHA_SCHEDULES, default=list(ALPHA_SCHEDULES)
    )
    args = parser.parse_args()
    if args.schedules[0] != "constant":
        parser.error("the first schedule is the baseline of the ratios: put constant first")
    started = time.perf_counter()
    dirs, evaluate = prepare(args)
    keys = ("kl", "topk_kl", "nll")
    final = {s: {k: [] for k in keys} for s in args.schedules}
    reach: dict[str, list] = {s: [] for s in args.schedules}
    print(f"{'seed':>4s} {'schedule':>13s} {'dense KL':>8s} {'top-k KL':>8s} {'NLL':>7s} "
          f"{'/const':>7s} {'to const KL':>11s} {'s':>5s}  trajectory")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            baseline = None
            for schedule in args.schedules:
                trajectory = Trajectory()
                config = TrainConfig(
                    mode="kd", max_steps=args.steps, learning_rate=args.lr, seed=seed,
                    kd=kd_loss(schedule, args), heldout_fraction=args.heldout_fraction,
                    eval_every=args.eval_every,
                )  # fmt: skip
                result = train_student(
                    dirs["topk"], Path(tmp) / f"{schedule}-{seed}", config,
                    heldout_eval=evaluate, callbacks=[trajectory],
                )  # fmt: skip
                baseline = baseline or result.heldout
                for key in keys:
                    final[schedule][key].append(result.heldout[key])
                reach[schedule].append(steps_to_reach(result.heldout_curve, baseline["kl"]))
                value = reach[schedule][-1]
                cell = f"{value:.0f}" if isinstance(value, float) else value
                print(
                    f"{seed:4d} {schedule:>13s} {result.heldout['kl']:8.4f} "
                    f"{result.heldout['topk_kl']:8.4f} {result.heldout['nll']:7.4f} "
                    f"{result.heldout['kl'] / baseline['kl']:7.4f} {cell:>11s} "
                    f"{result.seconds:5.0f}  "
                    f"{trajectory.describe()}",
                    flush=True,
                )
    print(f"\n{len(args.seeds)} seeds, {args.steps} steps, lr {args.lr}, curve every "
          f"{args.eval_every} steps; mean ± sd over seeds\n")  # fmt: skip
    print(
        "| schedule | dense KL to teacher | / constant's (paired by seed) | top-k bucket KL | "
        "NLL of teacher text | / constant's | steps to constant's final dense KL |"
    )
    print("|---|---|---|---|---|---|---|")
    base = final["constant"]
    for schedule in args.schedules:
        own = final[schedule]
        cells = [
            mean_sd(own["kl"]),
            mean_sd([a / b for a, b in zip(own["kl"], base["kl"], strict=True)]),
            mean_sd(own["topk_kl"]),
            mean_sd(own["nll"]),
            mean_sd([a / b for a, b in zip(own["nll"], base["nll"], strict=True)]),
            reach_cell(reach[schedule], args.steps),
        ]
        print(f"| {schedule} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
