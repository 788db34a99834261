"""SFT, top-k KD and sampled KD on the same teacher text: held-out KL to the teacher's full
distribution, NLL of the teacher's text, and KD's steps to SFT's final value.

    python bench/three_way.py PROMPTS.jsonl [--limit 60] [--k 20] [--steps 60] [--seeds 0 1 2]

Data (cached in `--data`, reused when present): the embedded teacher generates the MMLU
prompts once with `--targets sampled` (k i.i.d. draws with importance weights, Anshumann et
al., 2025), then `distill score` teacher-forces those very responses for the top-k. Same
records, same token ids, same k, so the same bytes per token.

Each seed trains three students from the same random init (`train_student`'s default student,
same split, data order, steps, lr): SFT on the teacher's tokens, KD on the top-k (forward KL
with a tail bucket), KD on the sampled targets (`sampled_ce`). All three are judged on the
same held-out rows (never trained on) against the *live* teacher: its full 49k-token
distribution at every response position (one teacher forward, cached), so top-k and sampled
are measured on the tail as well as the head. Also the k + 1 bucket KL of the stored top-k
(what top-k KD optimises) and the NLL of the teacher's sampled tokens.

From the held-out curve (every `--eval-every` steps) it reports how many steps each KD needs
to reach SFT's final value: steps_KD / steps_SFT, linear between evaluations ("<first" when
KD is there at the first evaluation, "never" when it does not get there).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import torch

from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams
from distill.store import MANIFEST_NAME, read_table
from distill.teachers.embedded import embedded_teacher_dir
from distill.train import TrainConfig, train_student
from distill.train.collate import collate_rows, shifted_labels
from distill.train.losses import TeacherTargets, sparse_kl_per_token
from distill.train.student import logits_at

METHODS = {"sft": ("topk", "sft"), "kd top-k": ("topk", "kd"), "kd sampled": ("sampled", "kd")}


def teacher_data(prompts: Path, data: Path, limit: int, k: int, n: int, new_tokens: int) -> dict:
    """{"sampled": dir, "topk": dir}: generated once (sampled), then teacher-forced (top-k)."""
    dirs = {"sampled": data / "sampled", "topk": data / "topk"}
    sampling = SamplingParams(temperature=1.0, max_new_tokens=new_tokens, n=n, seed=0)
    if not (dirs["sampled"] / MANIFEST_NAME).is_file():
        generate_dataset(
            prompts, dirs["sampled"], fmt="mmlu", top_k=k, sampling=sampling, limit=limit,
            progress=False, targets="sampled",
        )  # fmt: skip
    if not (dirs["topk"] / MANIFEST_NAME).is_file():
        score_dataset(dirs["sampled"], dirs["topk"], top_k=k, progress=False)
    columns = ["record_id", "token_ids"]
    same = [read_table(d, columns=columns).sort_by("record_id") for d in dirs.values()]
    if not same[0].equals(same[1]):
        raise RuntimeError(f"{data}: the top-k and sampled datasets hold different responses")
    return dirs


class LiveTeacherEval:
    """`heldout_eval` for `train_student`: dense KL to the live teacher, top-k bucket KL, NLL.

    The teacher's log-probs at every response position are computed once per held-out row
    (float16 to halve the cache; a log-prob error of ~1e-3 moves the KL by far less than the
    differences measured here). Rows are looked up by record id in the *top-k* dataset, so a
    student trained on the sampled dataset is judged on exactly the same targets.
    """

    def __init__(self, teacher: torch.nn.Module, topk: pa.Table, batch_size: int = 8):
        self.teacher, self.topk, self.batch_size = teacher, topk, batch_size
        self.row_of = {r: i for i, r in enumerate(topk.column("record_id").to_pylist())}
        self.cache: dict[str, torch.Tensor] = {}

    def _rows(self, record_ids: list[str]) -> pa.Table:
        return self.topk.take([self.row_of[r] for r in record_ids])

    @torch.no_grad()
    def _fill(self, record_ids: list[str]) -> None:
        todo = [r for r in record_ids if r not in self.cache]
        for start in range(0, len(todo), self.batch_size):
            ids = todo[start : start + self.batch_size]
            batch = collate_rows(self._rows(ids), with_teacher=True)
            where = batch["target_mask"]
            logits = logits_at(self.teacher, batch["input_ids"], batch["attention_mask"], where)
            log_p = torch.log_softmax(logits.float(), dim=-1)
            # the stored top-k came from this very teacher: the live log-probs must agree
            stored = batch["teacher_logprobs"][where]
            live = log_p.gather(-1, batch["teacher_ids"][where])
            drift = (live - stored).masked_fill(~batch["teacher_topk_mask"][where], 0).abs()
            if float(drift.max()) > 1e-3:
                raise RuntimeError(f"live teacher differs from the stored top-k by {drift.max()}")
            for rid, part in zip(ids, log_p.split(where.sum(1).tolist()), strict=True):
                self.cache[rid] = part.half()

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, rows: pa.Table) -> dict:
        record_ids = rows.column("record_id").to_pylist()
        self._fill(record_ids)
        was_training = model.training
        model.eval()
        sums, tokens = {"kl": 0.0, "topk_kl": 0.0, "nll": 0.0}, 0
        try:
            for start in range(0, len(record_ids), self.batch_size):
                ids = record_ids[start : start + self.batch_size]
                batch = collate_rows(self._rows(ids), with_teacher=True)
                where = batch["target_mask"]
                logits = logits_at(model, batch["input_ids"], batch["attention_mask"], where)
                log_q = torch.log_softmax(logits.float(), dim=-1)
                log_p = torch.cat([self.cache[r] for r in ids]).float()
                sums["kl"] += float((log_p.exp() * (log_p - log_q)).sum())
                sums["topk_kl"] += float(
                    sparse_kl_per_token(
                        logits.float(), TeacherTargets.from_batch(batch).at(where)
                    ).sum()
                )
                targets = shifted_labels(batch["labels"])[where]
                sums["nll"] -= float(log_q.gather(-1, targets[:, None]).sum())
                tokens += int(where.sum())
        finally:
            model.train(was_training)
        return {**{k: v / max(tokens, 1) for k, v in sums.items()}, "tokens": tokens}


def steps_to_reach(curve: list[dict], target: float, key: str = "kl") -> float | str:
    """First step at which `curve[key]` is <= `target`, linear between evaluations.

    "<first" when the first evaluation is already there, "never" when none is.
    """
    for i, point in enumerate(curve):
        if point[key] <= target:
            if i == 0:
                return "<first"
            prev = curve[i - 1]
            frac = (prev[key] - target) / (prev[key] - point[key])
            return prev["step"] + frac * (point["step"] - prev["step"])
    return "never"


def mean_sd(values: list[float], digits: int = 3) -> str:
    """ "mean ± sample sd" (the sd over seeds; a bare value for one seed)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def reach_cell(values: list[float | str], steps: int) -> str:
    ratios = [v / steps for v in values if isinstance(v, float)]
    others = [v for v in values if isinstance(v, str)]
    if not ratios:
        return ", ".join(others)
    text = f"{mean_sd(ratios, 2)} (min {min(ratios):.2f}, max {max(ratios):.2f})"
    return text + (f"; {', '.join(others)}" if others else "")


def run_seed(dirs: dict, evaluate: Callable, seed: int, args: argparse.Namespace, tmp: Path):
    """{method: TrainResult} for the three students of one seed."""
    results = {}
    for method, (targets, mode) in METHODS.items():
        config = TrainConfig(
            mode=mode, max_steps=args.steps, learning_rate=args.lr, seed=seed,
            heldout_fraction=args.heldout_fraction, eval_every=args.eval_every,
        )  # fmt: skip
        results[method] = train_student(
            dirs[targets], tmp / f"{method.replace(' ', '-')}-{seed}", config,
            heldout_eval=evaluate,
        )  # fmt: skip
    return results


def experiment_parser() -> argparse.ArgumentParser:
    """The data and training settings this bench shares with `bench/alpha_schedules.py`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("prompts", type=Path, help="MMLU prompts (e.g. distill-demo/prompts.jsonl)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "three-way")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--heldout-fraction", type=float, default=0.25)
    return parser


def prepare(args: argparse.Namespace) -> tuple[dict[str, Path], LiveTeacherEval]:
    """The cached teacher datasets and the dense held-out evaluation against the live teacher."""
    started = time.perf_counter()
    dirs = teacher_data(args.prompts, args.data, args.limit, args.k, args.n, args.max_new_tokens)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {dirs}", flush=True)
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(embedded_teacher_dir()).eval()
    return dirs, LiveTeacherEval(teacher, read_table(dirs["topk"]))


def main() -> None:
    args = experiment_parser().parse_args()
    started = time.perf_counter()
    dirs, evaluate = prepare(args)
    keys = ("kl", "topk_kl", "nll")
    final: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in METHODS}
    reach: dict[str, dict[str, list]] = {m: {"kl": [], "nll": []} for m in METHODS if m != "sft"}
    print(f"{'seed':>4s} {'method':>10s} {'dense KL':>8s} {'top-k KL':>8s} {'NLL':>7s} "
          f"{'steps to SFT KL':>15s} {'to SFT NLL':>10s} {'rows':>9s} {'s':>5s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results = run_seed(dirs, evaluate, seed, args, Path(tmp))
            sft = results["sft"].heldout
            for method, result in results.items():
                cells = []
                for key in ("kl", "nll"):
                    final[method][key].append(result.heldout[key])
                    if method != "sft":
                        reach[method][key].append(
                            steps_to_reach(result.heldout_curve, sft[key], key)
                        )
                        value = reach[method][key][-1]
                        cells.append(f"{value:.0f}" if isinstance(value, float) else value)
                    else:
                        cells.append("-")
                final[method]["topk_kl"].append(result.heldout["topk_kl"])
                print(
                    f"{seed:4d} {method:>10s} {result.heldout['kl']:8.4f} "
                    f"{result.heldout['topk_kl']:8.4f} {result.heldout['nll']:7.4f} "
                    f"{cells[0]:>15s} {cells[1]:>10s} "
                    f"{result.train_rows:4d}/{result.heldout_rows:<4d} {result.seconds:5.0f}",
                    flush=True,
                )
    print(f"\n{len(args.seeds)} seeds, {args.steps} steps, lr {args.lr}, curve every "
          f"{args.eval_every} steps; mean ± sd over seeds\n")  # fmt: skip
    print(
        "| method | dense KL to teacher | / SFT's (paired by seed) | top-k bucket KL | "
        "NLL of teacher text | steps to SFT's final dense KL (x SFT's) | "
        "steps to SFT's final NLL (x SFT's) |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in METHODS:
        paired = [a / b for a, b in zip(final[method]["kl"], final["sft"]["kl"], strict=True)]
        cells = [mean_sd(final[method][k]) for k in keys]
        cells.insert(1, mean_sd(paired))
        if method == "sft":
            cells += ["1 (by definition)", "1 (by definition)"]
        else:
            cells += [reach_cell(reach[method][k], args.steps) for k in ("kl", "nll")]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
