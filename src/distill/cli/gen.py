"""`distill gen` and `distill score`: teachers into datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from distill.cli.app import (
    at_least_one,
    check_options,
    console,
    exit_hard_after_vllm,
    fail,
    flag_errors,
    teacher_options,
)
from distill.cli.engine_options import EngineOption, RayAddressOption, engine_from_options
from distill.cli.licenses import (
    CompetingModels,
    PromptsLicense,
    TeacherLicense,
    TeacherTerms,
    license_options,
)
from distill.engine import EngineError
from distill.gen.prompts import PromptError

# Options gen and score share, declared once so their help reads the same in both.
TopK = Annotated[
    int, typer.Option("--top-k", help="teacher token ids and log-probs kept per position")
]
PromptField = Annotated[
    str, typer.Option("--prompt-field", help="column with the prompt text (a user turn)")
]
MessagesField = Annotated[
    str | None,
    typer.Option(
        "--messages-field",
        help="column with a chat (list of role/content turns); wins over --prompt-field",
    ),
]
IdField = Annotated[
    str | None,
    typer.Option(
        "--id-field",
        help="column with a unique row id (default: a hash of the prompt and its occurrence)",
    ),
]


# Long only by its signature: typer declares each flag as a parameter; the body is short.
@exit_hard_after_vllm
def gen(
    prompts: Annotated[
        Path,
        typer.Argument(
            help="prompt file (JSONL, Parquet, CSV); a folder or quoted glob of Parquet files "
            "(a Hub snapshot: data/*.parquet); or a saved `datasets` folder"
        ),
    ],
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
    top_k: TopK = 20,
    n: Annotated[int, typer.Option("--n", help="samples per prompt")] = 1,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="longest response, in teacher tokens")
    ] = 256,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 0.0,
    top_p: Annotated[
        float,
        typer.Option("--top-p", help="nucleus sampling mass (1 = off; with --temperature > 0)"),
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="base sampling seed; each row's seed comes from it and the row's id")
    ] = 0,
    limit: Annotated[int | None, typer.Option(help="use only the first N prompts")] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="write bad rows to a rejects file")
    ] = False,
    system_prompt: Annotated[
        str | None,
        typer.Option(
            "--system-prompt",
            help="system turn put before each prompt that has none (a row's own system field wins)",
        ),
    ] = None,
    prompt_field: PromptField = "prompt",
    messages_field: MessagesField = None,
    id_field: IdField = None,
    domain_field: Annotated[
        str | None,
        typer.Option("--domain-field", help="column with the row's domain (curation caps, report)"),
    ] = "domain",
    reference_field: Annotated[
        str | None,
        typer.Option("--reference-field", help="column with the reference answer (verify steps)"),
    ] = "reference",
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="prompts given to the teacher at a time")
    ] = 16,
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
    prompts_license: PromptsLicense = None,
    teacher_license: TeacherLicense = None,
    teacher_terms: TeacherTerms = None,
    terms_restrict_competing: CompetingModels = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Generate responses with the teacher's top-k log-probs; re-run to resume."""
    from distill.gen.prompts import FieldMapping
    from distill.gen.runner import generate_dataset
    from distill.schemas import SamplingParams
    from distill.teachers.backend import TeacherUnavailableError

    check_options(
        at_least_one("--top-k", top_k),
        at_least_one("--batch-size", batch_size),
        at_least_one("--shard-size", shard_size),
        at_least_one("--limit", limit),
        (format in (None, *PROMPT_FORMATS), f"--format {format!r}: use one of {PROMPT_FORMATS}"),
    )
    try:
        sampling = SamplingParams(
            temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, n=n
        )
    except ValidationError as err:
        fail(flag_errors(err))
        return
    _check_teachers(teacher or ["hf:embedded"], teacher_opt)
    try:
        mapping = FieldMapping(
            prompt=prompt_field,
            messages=messages_field,
            id=id_field,
            domain=domain_field,
            reference=reference_field,
        )
        options = teacher_options(teacher_opt)
        where = engine_from_options(engine, ray_address)
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
                licenses=license_options(
                    prompts_license, teacher_license, teacher_terms, terms_restrict_competing
                ),
                engine=where,
            )
            for spec in teacher or ["hf:embedded"]
        ]
    except (
        PromptError,
        OSError,
        ValueError,
        ImportError,
        NotImplementedError,
        TeacherUnavailableError,
        EngineError,
    ) as err:
        fail(str(err))
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


PROMPT_FORMATS = ("mmlu", "jsonl", "parquet", "csv", "hf")


def _check_teachers(specs: list[str], teacher_opt: list[str] | None) -> None:
    """Each --teacher spec as far as it can be checked without loading it (backend, extra
    installed, a local checkpoint, its --teacher-opt): before the prompts are read."""
    from distill.teachers.specs import check_teacher_spec

    for spec in specs:
        try:
            check_teacher_spec(spec, teacher_options(teacher_opt))
        except ValidationError as err:
            fail("; ".join(f"--teacher-opt {e['loc'][0]}: {e['msg']}" for e in err.errors()))
        except (ValueError, ImportError) as err:
            fail(str(err))


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


@exit_hard_after_vllm
def score(
    source: Annotated[
        Path,
        typer.Argument(
            help="prompt file with a response column (JSONL, Parquet, CSV; a folder or quoted "
            "glob of Parquet files), or a distill dataset"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="output dataset directory")],
    teacher: Annotated[
        str, typer.Option(help="hf:PATH | hf:embedded | vllm:MODEL_DIR")
    ] = "hf:embedded",
    teacher_opt: Annotated[
        list[str] | None,
        typer.Option("--teacher-opt", help="backend option KEY=VALUE, repeatable (as in gen)"),
    ] = None,
    top_k: TopK = 20,
    format: Annotated[str | None, typer.Option(help="jsonl|parquet|csv|hf")] = None,
    prompt_field: PromptField = "prompt",
    messages_field: MessagesField = None,
    response_field: Annotated[
        str, typer.Option("--response-field", help="column with the response text to score")
    ] = "response",
    id_field: IdField = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="responses scored by the teacher at a time")
    ] = 8,
    prompts_license: PromptsLicense = None,
    teacher_license: TeacherLicense = None,
    teacher_terms: TeacherTerms = None,
    terms_restrict_competing: CompetingModels = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Teacher-forced top-k for existing responses (SFT data -> KD data); re-run to resume."""
    from distill.gen.score import score_dataset
    from distill.gen.score_inputs import ScoreMapping

    check_options(
        at_least_one("--top-k", top_k),
        at_least_one("--batch-size", batch_size),
        (format in (None, *PROMPT_FORMATS[1:]), f"--format {format!r}: use jsonl|parquet|csv|hf"),
    )
    _check_teachers([teacher], teacher_opt)
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
            licenses=license_options(
                prompts_license, teacher_license, teacher_terms, terms_restrict_competing
            ),
            engine=engine_from_options(engine, ray_address),
        )
    except (PromptError, OSError, ValueError, ImportError, NotImplementedError, EngineError) as err:
        fail(str(err))
        return
    console.print(
        f"scored {result.records_written} records ({result.records_skipped_existing} already "
        f"there), {result.tokens_generated} tokens in {result.seconds:.1f}s -> {result.out_dir}"
    )
