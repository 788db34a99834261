"""`distill eval`: teacher, baseline and students compared on held-out MCQ questions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from distill.cli.app import at_least_one, check_options, console, fail
from distill.input_rows import PromptError


# Long only by its signature: typer declares each flag as a parameter; the body is short.
def eval_(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="MODEL",
            help="models to compare: hf:embedded, hf:PATH, or a `distill train` run dir (its "
            "student and, as the baseline, the weights it started from); LABEL=SPEC names one",
        ),
    ],
    questions: Annotated[Path, typer.Option("--questions", help="MMLU-format JSONL")],
    out: Annotated[Path, typer.Option("--out", help="JSON results file")] = Path("eval.json"),
    limit: Annotated[int | None, typer.Option(help="use only the first N questions")] = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="longest generated answer, in tokens")
    ] = 64,
    batch_size: Annotated[int, typer.Option("--batch-size", help="prompts decoded at a time")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the option permutations and bootstrap")] = 0,
    rewordings: Annotated[
        int, typer.Option("--rewordings", help="reworded forms asked per question (0-4)")
    ] = 2,
    categories: Annotated[
        Path | None,
        typer.Option(
            "--categories", help="a JSON/YAML file mapping subject to category; default MMLU's four"
        ),
    ] = None,
    skip_trained: Annotated[
        bool,
        typer.Option("--skip-trained", help="leave out questions a given run trained on"),
    ] = False,
    force_trained: Annotated[
        bool,
        typer.Option(
            "--force-trained", help="evaluate questions a run trained on anyway (labelled)"
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto (a GPU when present) | cpu | cuda:N")] = "auto",
    dtype: Annotated[
        str, typer.Option(help="float32 | bfloat16 | float16 (bfloat16 for large models)")
    ] = "float32",
    subjects: Annotated[
        bool, typer.Option("--subjects", help="also print accuracy per subject")
    ] = False,
) -> None:
    """Compare models on MCQ: accuracy per MMLU category and subject, answer extraction and
    consistency under permuted and reworded questions, with bootstrap intervals; only on
    questions no given run trained on (refused otherwise)."""
    from distill.eval.answers import DecodeOptions
    from distill.eval.heldout_check import TrainedPromptsError
    from distill.eval.mcq import EvalConfig, evaluate_mcq
    from distill.eval.table import comparison_table, subject_table

    if skip_trained and force_trained:
        fail("--skip-trained and --force-trained: choose one")
    _check_inputs(models, questions, limit, max_new_tokens, batch_size)
    policy = "skip" if skip_trained else "force" if force_trained else "refuse"
    try:
        config = EvalConfig(
            limit=limit,
            seed=seed,
            rewordings_per_question=rewordings,
            trained=policy,  # type: ignore[arg-type]
            categories=categories,
            decode=DecodeOptions(
                max_new_tokens=max_new_tokens, batch_size=batch_size, device=device,
                dtype=dtype,  # type: ignore[arg-type]
            ),
        )  # fmt: skip
    except ValidationError as err:
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()))
        return
    try:
        result = evaluate_mcq(models, questions, config, out)
    except (TrainedPromptsError, PromptError, FileNotFoundError, ValueError) as err:
        fail(str(err))
        return
    Console().print(comparison_table(result))
    if subjects:
        Console().print(subject_table(result))
    if result.skipped_trained:
        console.print(f"left out {result.skipped_trained} questions a run trained on")
    console.print(f"eval -> {out}")


def _check_inputs(
    models: list[str], questions: Path, limit: int | None, max_new_tokens: int, batch_size: int
) -> None:
    """Options, the questions file and every model spec, before any model loads."""
    from distill.eval.models import resolve_models

    check_options(
        (questions.is_file(), f"--questions {questions}: no such file"),
        at_least_one("--limit", limit),
        at_least_one("--max-new-tokens", max_new_tokens),
        at_least_one("--batch-size", batch_size),
    )
    for spec in models:
        try:
            resolve_models([spec])  # reads specs and lineage files only
        except (FileNotFoundError, ValueError) as err:
            fail(f"MODEL {spec!r}: {str(err).removeprefix(f'{spec}: ')}")
