"""Held-out KL to the teacher: KD on sampled targets against KD on top-k, same bytes per token.

    python bench/sampled_vs_topk.py PROMPTS.jsonl [--limit 40] [--k 20] [--steps 60] [--seeds 0]

Generates the prompts twice with the embedded teacher (same seed, so the same responses and
record ids): once storing the top-k, once k sampled ids with importance weights
(`--targets sampled`, Anshumann et al., 2025). The same k gives the same bytes per token.
Trains one KD student on each (same steps, seed, lr) and judges both on the *top-k*
dataset's held-out rows (the same record ids in both datasets, never trained on) with the
sparse KL(teacher || student) over k + 1 buckets, tail included. Ratio < 1: sampled is closer.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from transformers import AutoModelForCausalLM

from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import read_table
from distill.train import heldout_metrics, train_student
from distill.train.evaluate import split_heldout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompts", type=Path)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--heldout-fraction", type=float, default=0.25)
    args = parser.parse_args()
    sampling = SamplingParams(temperature=1.0, max_new_tokens=args.max_new_tokens, n=args.n, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for targets in ("topk", "sampled"):
            data[targets] = Path(tmp) / f"gen-{targets}"
            generate_dataset(
                args.prompts, data[targets], fmt="mmlu", top_k=args.k, sampling=sampling,
                limit=args.limit, progress=False, targets=targets,
            )  # fmt: skip
        print(f"{'seed':>4s} {'KL topk':>8s} {'KL sampled':>10s} {'ratio':>6s} {'init':>7s}")
        for seed in args.seeds:
            table = read_table(data["topk"])
            _, heldout = split_heldout(table, fraction=args.heldout_fraction, seed=seed)
            kl = {}
            for targets, path in data.items():
                out = Path(tmp) / f"kd-{targets}-{seed}"
                result = train_student(
                    path, out, mode="kd", max_steps=args.steps, learning_rate=args.lr,
                    seed=seed, heldout_fraction=args.heldout_fraction,
                )  # fmt: skip
                model = AutoModelForCausalLM.from_pretrained(out / "model")
                kl[targets] = heldout_metrics(model, heldout)["kl"]
                if targets == "topk":  # the same split; the sampled run's KL is vs its draws
                    initial = result.heldout_initial["kl"]
            print(
                f"{seed:4d} {kl['topk']:8.4f} {kl['sampled']:10.4f} "
                f"{kl['sampled'] / kl['topk']:6.3f} {initial:7.3f}"
            )
        print(f"held-out rows: {heldout.num_rows}, train steps {args.steps}, lr {args.lr}")


if __name__ == "__main__":
    main()
