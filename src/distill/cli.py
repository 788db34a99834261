"""The `distill` command: one verb per job, each a thin call into a library function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from distill.gen.prompts import PromptError

app = typer.Typer(
    help="Distillation data: generate with top-k, curate, train, report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


def teacher_options(items: list[str] | None) -> dict[str, str]:
    """`--teacher-opt KEY=VALUE`, repeated, as a dict the backend's config validates."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--teacher-opt {item!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


@app.command()
def gen(
    prompts: Annotated[Path, typer.Argument(help="prompt file (JSONL, Parquet, CSV, HF dir)")],
    out: Annotated[Path, typer.Option("--out", help="output dataset directory")],
    format: Annotated[str | None, typer.Option(help="mmlu|jsonl|parquet|csv|hf")] = None,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            help="hf:PATH | hf:embedded | vllm:MODEL_DIR | openai:MODEL@BASE_URL; repeat it "
            "to run several teachers into one dataset, one after the other (default: "
            "hf:embedded)"
        ),
    ] = None,
    teacher_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--teacher-opt",
            help="backend option KEY=VALUE, repeatable (vllm: dtype, max_model_len, "
            "enforce_eager...; openai: concurrency, timeout_s, max_retries, tokenizer...)",
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="name of the environment variable holding the API key (openai: teachers)",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k")] = 20,
    n: Annotated[int, typer.Option("--n", help="samples per prompt")] = 1,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 256,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    seed: Annotated[int, typer.Option()] = 0,
    limit: Annotated[int | None, typer.Option(help="use only the first N prompts")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="write bad rows to a rejects file")
    ] = False,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    prompt_field: Annotated[str, typer.Option("--prompt-field")] = "prompt",
    messages_field: Annotated[str | None, typer.Option("--messages-field")] = None,
    id_field: Annotated[str | None, typer.Option("--id-field")] = None,
    domain_field: Annotated[str | None, typer.Option("--domain-field")] = "domain",
    reference_field: Annotated[str | None, typer.Option("--reference-field")] = "reference",
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    shard_size: Annotated[int, typer.Option("--shard-size", help="records per shard")] = 64,
    codec: Annotated[
        str, typer.Option(help="top-k storage: plain (schema 1) | packed (schema 2, ~3x smaller)")
    ] = "plain",
    targets: Annotated[
        str,
        typer.Option(
            help="topk (k most likely ids) | sampled (k draws with weights; hf teacher only)"
        ),
    ] = "topk",
    price_input: Annotated[
        float | None,
        typer.Option("--price-input", help="USD per 1M prompt tokens (API cost in the manifest)"),
    ] = None,
    price_output: Annotated[
        float | None,
        typer.Option("--price-output", help="USD per 1M completion tokens"),
    ] = None,
) -> None:
    """Generate responses with the teacher's top-k log-probs; re-run to resume."""
    from distill.gen.backend import TeacherUnavailableError
    from distill.gen.prompts import FieldMapping
    from distill.gen.runner import generate_dataset
    from distill.schemas import SamplingParams

    try:
        sampling = SamplingParams(
            temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, n=n
        )
        mapping = FieldMapping(
            prompt=prompt_field,
            messages=messages_field,
            id=id_field,
            domain=domain_field,
            reference=reference_field,
        )
        options = teacher_options(teacher_opt)
        results = [
            generate_dataset(
                prompts,
                out,
                fmt=format,
                teacher=spec,
                teacher_options=options,
                api_key_env=api_key_env,
                top_k=top_k,
                sampling=sampling,  # type: ignore[arg-type]
                limit=limit,
                skip_invalid=skip_invalid,
                mapping=mapping,
                system_prompt=system_prompt,
                batch_size=batch_size,
                shard_size=shard_size,
                codec=codec,
                targets=targets,
                price_input=price_input,
                price_output=price_output,
            )
            for spec in teacher or ["hf:embedded"]
        ]
    except (
        PromptError,
        FileNotFoundError,
        ValueError,
        NotImplementedError,
        TeacherUnavailableError,
    ) as err:
        _fail(str(err))
        return
    for spec, result in zip(teacher or ["hf:embedded"], results, strict=True):
        console.print(
            f"{spec}: wrote {result.records_written} records ({result.records_skipped_existing} "
            f"already there), {result.tokens_generated} tokens in {result.seconds:.1f}s "
            f"-> {result.out_dir}"
        )
        _print_gen_summary(result)
    if result.invalid_prompts:
        console.print(
            f"[yellow]{result.invalid_prompts} invalid prompt rows[/yellow] -> "
            f"{result.out_dir / 'invalid_prompts.jsonl'}"
        )


def _print_gen_summary(result) -> None:
    """One teacher's run: written, failed by kind, retries, token usage and cost."""
    from rich.table import Table

    shown = ("written", "failed", "retries", "skipped_existing", "unmapped_topk_entries")
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in result.counts.items():
        if key in shown or key.startswith(("failed_", "usage_")):
            table.add_row(key, str(value))
    if "cost_usd" in result.stats:
        table.add_row("cost_usd", f"{result.stats['cost_usd']:.6f}")
    console.print(table)
    if result.failed:
        console.print(
            f"[yellow]{result.failed} rows failed[/yellow] (reasons in {result.failed_path}); "
            "run the same command again to retry them"
        )


@app.command()
def score(
    source: Annotated[
        Path, typer.Argument(help="prompt file with a response column, or a distill dataset")
    ],
    out: Annotated[Path, typer.Option("--out", help="output dataset directory")],
    teacher: Annotated[
        str, typer.Option(help="hf:PATH | hf:embedded | vllm:MODEL_DIR")
    ] = "hf:embedded",
    teacher_opt: Annotated[
        list[str] | None,
        typer.Option("--teacher-opt", help="backend option KEY=VALUE, repeatable (as in gen)"),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k")] = 20,
    format: Annotated[str | None, typer.Option(help="jsonl|parquet|csv|hf")] = None,
    prompt_field: Annotated[str, typer.Option("--prompt-field")] = "prompt",
    messages_field: Annotated[str | None, typer.Option("--messages-field")] = None,
    response_field: Annotated[str, typer.Option("--response-field")] = "response",
    id_field: Annotated[str | None, typer.Option("--id-field")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
) -> None:
    """Teacher-forced top-k for existing responses (SFT data -> KD data); re-run to resume."""
    from distill.gen.score import ScoreMapping, score_dataset

    try:
        mapping = ScoreMapping(
            prompt=prompt_field, messages=messages_field, response=response_field, id=id_field
        )
        options = teacher_options(teacher_opt)
        result = score_dataset(
            source,
            out,
            teacher=teacher,
            teacher_options=options,
            top_k=top_k,
            fmt=format,  # type: ignore[arg-type]
            mapping=mapping,
            batch_size=batch_size,
        )
    except (PromptError, FileNotFoundError, ValueError, NotImplementedError) as err:
        _fail(str(err))
        return
    console.print(
        f"scored {result.records_written} records ({result.records_skipped_existing} already "
        f"there), {result.tokens_generated} tokens in {result.seconds:.1f}s -> {result.out_dir}"
    )


@app.command()
def curate(
    dataset: Annotated[Path, typer.Argument(help="a dataset written by distill gen")],
    out: Annotated[Path, typer.Option("--out", help="kept rows; rejected rows go to OUT/rejected")],
    recipe: Annotated[Path | None, typer.Option(help="YAML or TOML recipe")] = None,
) -> None:
    """Keep or drop rows with a recipe of steps; every drop is kept with its reason."""
    from distill.curate import curate_dataset, load_recipe
    from distill.report.render import print_curation

    try:
        result = curate_dataset(dataset, out, load_recipe(recipe) if recipe else None)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
        return
    print_curation(result, Console())
    console.print(f"kept -> {result.kept_dir}; rejected -> {result.rejected_dir}")


@app.command()
def pack(
    dataset: Annotated[Path, typer.Argument(help="a distill dataset (any kind)")],
    out: Annotated[Path, typer.Option("--out", help="the rewritten dataset")],
    codec: Annotated[str, typer.Option(help="packed (schema 2) | plain (schema 1)")] = "packed",
) -> None:
    """Rewrite a dataset's top-k with another codec; same rows, SRC recorded as parent."""
    from distill.codec import pack_dataset

    try:
        result = pack_dataset(dataset, out, codec)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
        return
    console.print(
        f"{result.rows} rows, {result.bytes_before} -> {result.bytes_after} bytes "
        f"({result.codec}) -> {result.out_dir}"
    )


@app.command()
def train(
    dataset: Annotated[Path, typer.Argument(help="a curated (or generated) dataset")],
    out: Annotated[Path, typer.Option("--out")],
    mode: Annotated[
        str,
        typer.Option(
            help="sft (hard labels) | kd (top-k soft targets) | gkd (on-policy, live teacher)"
        ),
    ],
    student: Annotated[
        Path | None,
        typer.Option(
            help="student checkpoint dir; default: a small random model on the teacher's tokenizer"
        ),
    ] = None,
    max_steps: Annotated[int, typer.Option("--max-steps")] = 60,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 1e-3,
    temperature: Annotated[float, typer.Option(help="KD temperature")] = 1.0,
    alpha: Annotated[float, typer.Option(help="KD weight; 1-alpha goes to cross-entropy")] = 0.5,
    divergence: Annotated[
        str | None,
        typer.Option(
            help="KD: forward_kl | reverse_kl | jsd | sampled_ce; default forward_kl, "
            "sampled_ce on a dataset generated with --targets sampled"
        ),
    ] = None,
    beta: Annotated[float, typer.Option(help="KD jsd: mixture weight (TRL's convention)")] = 0.5,
    alpha_schedule: Annotated[
        str,
        typer.Option(
            "--alpha-schedule", help="KD: constant | linear | taid | taid_adaptive (TAID's t)"
        ),
    ] = "constant",
    alpha_end: Annotated[
        float | None, typer.Option("--alpha-end", help="KD linear schedule: final alpha")
    ] = None,
    taid_t_start: Annotated[
        float, typer.Option("--taid-t-start", help="KD taid schedules: t at the first step")
    ] = 0.4,
    seed: Annotated[int, typer.Option()] = 0,
    lora_r: Annotated[
        int | None,
        typer.Option(
            "--lora-r", help="train LoRA adapters of this rank (needs peft); saved merged"
        ),
    ] = None,
    dtype: Annotated[str, typer.Option(help="student weights: float32 | bfloat16")] = "float32",
    teacher: Annotated[
        Path | None, typer.Option(help="gkd: live teacher model dir; default: embedded teacher")
    ] = None,
    lmbda: Annotated[float, typer.Option(help="gkd: fraction of on-policy steps")] = 0.5,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="gkd: length of on-policy samples")
    ] = 128,
) -> None:
    """Train a student with TRL: SFT on the teacher's tokens, KD on its top-k, or on-policy GKD."""
    from distill.train import StudentMismatch, train_student

    if mode not in ("sft", "kd", "gkd"):
        _fail(f"--mode {mode!r}: use sft, kd or gkd")
    try:
        result = train_student(
            dataset,
            out,
            mode=mode,
            student=student,  # type: ignore[arg-type]
            max_steps=max_steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            temperature=temperature,
            alpha=alpha,
            seed=seed,
            kd_options={
                **({"divergence": divergence} if divergence is not None else {}),
                "beta": beta,
                "alpha_schedule": alpha_schedule,
                "alpha_end": alpha_end,
                "taid_lambda_start": taid_t_start,
            }
            if mode == "kd"
            else None,
            lora=None if lora_r is None else {"r": lora_r, "alpha": 2.0 * lora_r},
            dtype=dtype,  # type: ignore[arg-type]
            teacher=teacher,
            gkd_options={"lmbda": lmbda, "beta": beta, "max_new_tokens": max_new_tokens}
            if mode == "gkd"
            else None,
        )
    except (StudentMismatch, FileNotFoundError, ValueError, ImportError) as err:
        _fail(str(err))
        return
    console.print(
        f"{mode}: {result.steps} steps, held-out KL {result.heldout['kl']:.4f}, "
        f"NLL {result.heldout['nll']:.4f} -> {result.model_dir}"
    )


@app.command(name="eval")
def eval_(
    models: Annotated[list[Path], typer.Argument(help="local Hugging Face model dirs")],
    questions: Annotated[Path, typer.Option("--questions", help="MMLU-format JSONL")],
    out: Annotated[Path, typer.Option("--out", help="JSON results file")] = Path("eval.json"),
    limit: Annotated[int | None, typer.Option(help="use only the first N questions")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 16,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the option permutations")] = 0,
) -> None:
    """MCQ accuracy per domain, models side by side, and agreement under permuted options."""
    from distill.train.eval_mcq import evaluate_mcq, mcq_table

    try:
        result = evaluate_mcq(
            models,
            questions,
            out,
            limit=limit,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
        )
    except (PromptError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
        return
    Console().print(mcq_table(result))
    console.print(f"eval -> {out}")


@app.command()
def report(
    dirs: Annotated[list[Path], typer.Argument(help="datasets, training runs, or a demo dir")],
    html: Annotated[
        Path | None, typer.Option("--html", help="default: FIRST_DIR/report.html")
    ] = None,
) -> None:
    """Counts per step, domains, teacher accuracy, loss curves, held-out KL."""
    from distill.report import collect_report, print_report, write_report

    try:
        collected = collect_report(dirs)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
        return
    print_report(collected, Console())
    html_path, json_path = write_report(collected, html or dirs[0] / "report.html")
    console.print(f"report -> {html_path} (figures: {json_path})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out")] = Path("distill-demo"),
    questions_per_topic: Annotated[int, typer.Option("--per-topic")] = 25,
    max_steps: Annotated[int, typer.Option("--max-steps")] = 150,
) -> None:
    """The main job: MMLU -> embedded teacher with top-k -> curate -> SFT and KD -> report."""
    from distill.demo import run_demo

    run_demo(out, per_topic=questions_per_topic, max_steps=max_steps, console=console)


if __name__ == "__main__":
    app()
