"""`distill train`: students from datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from distill.cli.app import at_least_one, check_options, console, fail, flag_errors
from distill.model_specs import require_extra, resolve_checkpoint
from distill.store.shards import MANIFEST_NAME


# Long only by its signature: typer declares each flag as a parameter; the body is short.
def train(
    dataset: Annotated[Path, typer.Argument(help="a curated (or generated) dataset")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="run directory: the student in OUT/model, held-out scores in OUT/metrics.json",
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="sft (hard labels) | kd (top-k soft targets) | gkd (on-policy, live teacher)"
        ),
    ],
    student: Annotated[
        str | None,
        typer.Option(
            metavar="SPEC",
            help="hf:PATH (or a bare PATH) | hf:embedded | a Hub id transformers can fetch; "
            "default: a small random model on the teacher's tokenizer",
        ),
    ] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", help="optimiser steps")] = 60,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="rows per micro-batch (per device)")
    ] = 8,
    learning_rate: Annotated[
        float,
        typer.Option(
            "--learning-rate",
            help="peak learning rate; the default suits the tiny random student, lower it for "
            "a pretrained one",
        ),
    ] = 1e-3,
    temperature: Annotated[float, typer.Option(help="KD temperature")] = 1.0,
    alpha: Annotated[
        float,
        typer.Option(
            help="KD: weighs the KD term, not cross-entropy: loss = alpha*T^2*KL + "
            "(1-alpha)*CE (KL: the --divergence), so 1 is pure KD and 0 plain SFT. The "
            "textbook L = a*CE + (1-a)*T^2*KL weighs CE with a: its a is 1-alpha here"
        ),
    ] = 0.5,
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
    seed: Annotated[
        int, typer.Option(help="seed of the init, the held-out split and the data order")
    ] = 0,
    lora_r: Annotated[
        int | None,
        typer.Option(
            "--lora-r", help="train LoRA adapters of this rank (needs peft); saved merged"
        ),
    ] = None,
    dtype: Annotated[str, typer.Option(help="student weights: float32 | bfloat16")] = "float32",
    teacher: Annotated[
        str | None,
        typer.Option(
            metavar="SPEC",
            help="gkd: live teacher, hf:PATH (or a bare PATH) | hf:embedded; default: hf:embedded",
        ),
    ] = None,
    lmbda: Annotated[float, typer.Option(help="gkd: fraction of on-policy steps")] = 0.5,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="gkd: length of on-policy samples")
    ] = 128,
    heldout_max_rows: Annotated[
        int,
        typer.Option(
            "--heldout-max-rows",
            help="cap on the held-out rows (whole prompts in hash order; those past it train)",
        ),
    ] = 512,
    heldout_max_tokens: Annotated[
        int,
        typer.Option("--heldout-max-tokens", help="cap on the held-out rows' response tokens"),
    ] = 65536,
    cross_tokenizer: Annotated[
        str | None,
        typer.Option(
            "--cross-tokenizer",
            help="sft and kd with a --student on another tokenizer than the teacher's: "
            "re-tokenise the teacher's text for it and align the top-k by bytes; the KD loss "
            "is uld (sorted-probability Wasserstein) or hybrid (exact KL on tokens whose bytes "
            "match one-to-one, ULD on the rest). Opt-in, not automatic: a differing tokenizer "
            "is refused unless asked for, as it is more often a wrong --student than a plan",
        ),
    ] = None,
    teacher_tokenizer: Annotated[
        Path | None,
        typer.Option(
            "--teacher-tokenizer",
            help="--cross-tokenizer: the teacher's tokenizer dir, to decode its ids; default: "
            "the embedded teacher's, for its datasets",
        ),
    ] = None,
    save_steps: Annotated[
        int | None,
        typer.Option(
            "--save-steps",
            help="checkpoint every N steps under OUT/trainer; the same command again resumes "
            "from the last complete checkpoint",
        ),
    ] = None,
) -> None:
    """Train a student with TRL: SFT on the teacher's tokens, KD on its top-k, or on-policy GKD."""
    if mode not in ("sft", "kd", "gkd"):
        fail(f"--mode {mode!r}: use sft, kd or gkd")
    student_dir, teacher_dir = _checked_inputs(dataset, student, teacher, lora_r)
    check_options(
        at_least_one("--max-steps", max_steps),
        at_least_one("--batch-size", batch_size),
        (learning_rate > 0, f"--learning-rate {learning_rate}: must be above 0"),
    )
    # torch and transformers load only now: a bad option above fails in a moment
    from distill.train import (
        GKDOptions,
        KDLossConfig,
        LoraOptions,
        StudentMismatch,
        TrainConfig,
        train_student,
    )
    from distill.train.progress import TrainProgress

    try:
        # Each section from its flags only in the mode that reads it, as the flags' help says.
        config = TrainConfig(
            mode=mode,  # type: ignore[arg-type]
            student=student_dir,
            max_steps=max_steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            dtype=dtype,  # type: ignore[arg-type]
            save_steps=save_steps,
            heldout_max_rows=heldout_max_rows,
            heldout_max_tokens=heldout_max_tokens,
            kd=KDLossConfig(
                temperature=temperature,
                alpha=alpha,
                divergence=divergence,  # type: ignore[arg-type]
                beta=beta,
                alpha_schedule=alpha_schedule,  # type: ignore[arg-type]
                alpha_end=alpha_end,
                taid_t_start=taid_t_start,
            )
            if mode == "kd"
            else KDLossConfig(),
            gkd=GKDOptions(
                teacher=teacher_dir,
                lmbda=lmbda,
                beta=beta,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
            )
            if mode == "gkd"
            else GKDOptions(),
            lora=None if lora_r is None else LoraOptions(r=lora_r, alpha=2.0 * lora_r),
            # A dict, not the model: its errors are then named by the flags (`flag_errors`).
            cross_tokenizer=None
            if cross_tokenizer is None
            else {"loss": cross_tokenizer, "teacher_tokenizer": teacher_tokenizer},
        )
    except ValidationError as err:
        fail(flag_errors(err))
        return
    try:
        result = train_student(dataset, out, config, callbacks=[TrainProgress()])
    except (StudentMismatch, OSError, ValueError, ImportError) as err:
        fail(str(err))
        return
    if result.resumed_from_step is not None:
        console.print(f"resumed from the checkpoint of step {result.resumed_from_step}")
    heldout = result.heldout
    scores = (
        f"held-out KL {heldout['kl']:.4f}, NLL {heldout['nll']:.4f}"
        if "kl" in heldout  # a student on another tokenizer is scored per byte of text
        else f"held-out NLL {heldout['nll_per_byte']:.4f} nats/byte, ULD {heldout['uld']:.4f}"
    )
    console.print(f"{mode}: {result.steps} steps, {scores} -> {result.model_dir}")


def _checked_inputs(
    dataset: Path, student: str | None, teacher: str | None, lora_r: int | None
) -> tuple[Path | None, Path | None]:
    """The dataset is one, --lora-r has peft, and the model specs name checkpoints that can
    be loaded (the student's and the live teacher's dirs): before anything loads."""
    manifest = dataset / MANIFEST_NAME
    check_options(
        (manifest.is_file(), f"{dataset}: no {MANIFEST_NAME}; is this a distill dataset?"),
        at_least_one("--lora-r", lora_r),
    )
    try:
        if lora_r is not None:
            require_extra("peft", "lora", "--lora-r")
        return (
            None if student is None else resolve_checkpoint(student, "--student"),
            None if teacher is None else resolve_checkpoint(teacher, "--teacher", hub=False),
        )
    except (ValueError, ImportError) as err:
        fail(str(err))
        raise  # unreachable: fail exits
