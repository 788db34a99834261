"""`train_student`: one call from a dataset directory to a trained student and its metrics.

The thin runner around the trainers: spool, check, split, evaluate, train, evaluate, save.
SFT and KD share everything here (student init, split, seed, data order, optimiser and
schedule); only the trainer's loss differs. GKD (on-policy, a live teacher) and LoRA
students plug into the same path. What to train is a `TrainConfig` (`distill.train.config`).

The rows are never loaded whole: they are streamed once into a memory-mapped Arrow file in
the run dir (`distill.train.rows`, which also says how they are shuffled), the split is
computed from the prompt ids and response lengths alone, and the held-out set is capped
(`heldout_max_rows`, `heldout_max_tokens`), so evaluating costs the same on any dataset.
SFT and KD on the records path (the default) read batches straight from the mapped file;
TRL's own SFT (`sft_backend="trl"`) and GKD build a `datasets.Dataset` of the train rows'
token ids, which does hold those in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from pydantic import BaseModel, ConfigDict
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from distill.locking import locks_output
from distill.model_card import write_run_records
from distill.store import load_manifest, write_json
from distill.train.checkpoints import (
    CheckpointMarker,
    Resume,
    checkpoint_args,
    find_resume,
    record_run_start,
    train_or_resume,
)
from distill.train.collate import TOKEN_COLUMNS, sft_dataset
from distill.train.config import Mode, TrainConfig
from distill.train.cross_rows import CrossVocab, prepare_cross_rows
from distill.train.cross_trainer import CrossHeldoutEval, CrossKDTrainer
from distill.train.gkd import gkd_classes, gkd_dataset, load_live_teacher
from distill.train.heldout import (
    HeldoutCurve,
    HeldoutEval,
    RowSplit,
    heldout_metrics,
    response_lengths,
    split_rows,
)
from distill.train.kd_trainer import KDConfig, KDTrainer
from distill.train.lora import apply_lora, merged_for_saving, parameter_counts
from distill.train.record_trainer import HardLabelTrainer
from distill.train.rows import open_rows, spooled_rows, take_rows
from distill.train.student import build_random_student
from distill.train.student_check import check_student_compat

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class TrainResult(BaseModel):
    """What `metrics.json` holds, plus where the model was written."""

    model_config = ConfigDict(extra="forbid")
    mode: Mode
    steps: int
    loss_curve: list[tuple[int, float]]
    heldout: dict[str, float | int]
    heldout_initial: dict[str, float | int]
    heldout_curve: list[dict[str, float | int]]
    train_rows: int
    heldout_rows: int
    train_tokens: int
    heldout_tokens: int
    heldout_prompt_ids: list[str]
    heldout_cap: dict[str, int | None]
    resumed_from_step: int | None
    seconds: float
    config: dict[str, Any]
    model_dir: str


def _split(table: pa.Table, config: TrainConfig) -> RowSplit:
    """The config's held-out split of the spooled rows, read from two narrow columns."""
    return split_rows(
        table.column("prompt_id"), response_lengths(table), fraction=config.heldout_fraction,
        seed=config.seed, max_rows=config.heldout_max_rows, max_tokens=config.heldout_max_tokens,
    )  # fmt: skip


def _resolved(config: TrainConfig, out_dir: Path) -> TrainConfig:
    """`config` with the dirs it leaves to the run: the student (building the default random
    one) and GKD's live teacher (default: the embedded teacher)."""
    update: dict[str, Any] = {}
    if config.student is None:
        from distill.teachers.embedded import embedded_teacher_dir

        student_dir = out_dir / "student_init"
        update["student"] = build_random_student(
            embedded_teacher_dir(), student_dir, seed=config.seed
        )
    if config.mode == "gkd" and config.gkd.teacher is None:
        from distill.teachers.embedded import embedded_teacher_dir

        update["gkd"] = config.gkd.model_copy(update={"teacher": embedded_teacher_dir()})
    return config.model_copy(update=update)


def _start(
    out_dir: Path,
    run: dict[str, Any],
    save_steps: int | None,
    model: Any,
    heldout: pa.Table,
    heldout_eval: HeldoutEval,
) -> tuple[Resume, dict[str, Any]]:
    """Where training starts (a checkpoint of this same run, or none) and the initial
    student's held-out metrics (measured, or recorded when the run first started)."""
    resume = find_resume(out_dir, run) if save_steps else Resume()
    if resume.heldout_initial is not None:
        return resume, resume.heldout_initial
    heldout_initial = heldout_eval(model, heldout)
    if save_steps:
        record_run_start(out_dir, run, heldout_initial)
    return resume, heldout_initial


def _trainer_args(config: TrainConfig, out_dir: Path) -> dict[str, Any]:
    """The TRL config's arguments that every mode shares."""
    return {
        "output_dir": str(out_dir / "trainer"),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        **checkpoint_args(config.save_steps),
        "report_to": "none",
        # A GPU when there is one, as TRL does; `use_cpu` forces the CPU.
        "use_cpu": config.use_cpu or not torch.cuda.is_available(),
        "max_length": None,  # datasets are bounded by the teacher's max_new_tokens; never cut
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def _trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    rows: tuple[pa.Table, np.ndarray],
    args: dict[str, Any],
    callbacks: list[TrainerCallback],
    teacher_model: Any = None,
    cross: CrossVocab | None = None,
) -> SFTTrainer:
    """The mode's trainer on `rows` (the table, the train split's row numbers): KD, GKD,
    or SFT on the records path (or TRL's plain SFT); with `cross`, KD across tokenizers."""
    table, train_rows = rows
    common = {"processing_class": tokenizer, "callbacks": callbacks}
    if config.mode == "kd" and cross is not None and config.cross_tokenizer is not None:
        kd_args = KDConfig(**args, **config.kd.kd_config_fields())
        return CrossKDTrainer(
            model, kd_args, table, train_rows=train_rows, mapping=cross.mapping,
            loss=config.cross_tokenizer.loss, **common,
        )  # fmt: skip
    if config.mode == "kd":
        kd_args = KDConfig(**args, **config.kd.kd_config_fields())
        return KDTrainer(model, kd_args, table, train_rows=train_rows, **common)
    if config.sft_backend == "records" and config.mode == "sft":
        return HardLabelTrainer(model, SFTConfig(**args), table, train_rows=train_rows, **common)
    train = take_rows(table.select(TOKEN_COLUMNS), train_rows)  # their own Dataset: in memory
    if config.mode == "gkd":
        gkd_config_class, gkd_trainer_class = gkd_classes()
        gkd_args = gkd_config_class(**args, **config.gkd.trainer_fields())
        return gkd_trainer_class(
            model, teacher_model, args=gkd_args, train_dataset=gkd_dataset(train), **common
        )
    # Plain TRL SFT on the same ids, loss on the completion (response) tokens only.
    sft_args = SFTConfig(**args, completion_only_loss=True)
    return SFTTrainer(model, args=sft_args, train_dataset=sft_dataset(train), **common)


@locks_output("out_dir")  # one writer per run dir; spooling checks the shards' sha256
def train_student(
    dataset_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    *,
    callbacks: list[TrainerCallback] | None = None,
    heldout_eval: HeldoutEval | None = None,
) -> TrainResult:
    """Train a student on a distill dataset as `config` says: SFT (hard labels), KD (sparse
    top-k) or on-policy GKD, optionally as LoRA adapters (see `TrainConfig`'s fields).

    The student (default: a random tiny one on the embedded teacher's tokenizer) is checked
    against the dataset's manifest before step one (`student_check`). With
    `config.save_steps`, calling again with the same config resumes from the last complete
    checkpoint (`distill.train.checkpoints`). `callbacks` are extra transformers
    `TrainerCallback`s (logging, timing, early stop). `heldout_eval(model, heldout_rows) ->
    dict` scores the held-out rows before, during (`eval_every`) and after training;
    default `heldout_metrics` (sparse KL and NLL), or across tokenizers (`cross_tokenizer`)
    `CrossHeldoutEval` (NLL per byte, ULD, hybrid) on the re-tokenised rows. Writes
    `model/` (merged, with LoRA; the adapter alone in `adapter/`) and `metrics.json`. The
    rows are read through `OUT/.rows.arrow` (`distill.train.rows`), removed when the call
    returns or fails, but kept after a failure with `save_steps`, for the resume to reuse.
    """
    started = time.perf_counter()
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    manifest = load_manifest(dataset_dir)
    resumable = config.save_steps is not None
    with spooled_rows(dataset_dir, manifest, out_dir, keep_on_error=resumable) as spooled:
        table = open_rows(spooled.path)
        config = _resolved(config, out_dir)
        tokenizer = AutoTokenizer.from_pretrained(config.student)
        model = AutoModelForCausalLM.from_pretrained(config.student, dtype=DTYPES[config.dtype])
        rows, cross, alignment = table, None, None
        if config.cross_tokenizer is None:
            check_student_compat(
                manifest, tokenizer, model.config, need_topk=config.mode == "kd",
                table=spooled.stats,
            )  # fmt: skip
        else:  # the teacher's text re-tokenised for the student, its top-k aligned by bytes
            rows, cross, alignment = prepare_cross_rows(
                manifest, table, tokenizer, config.cross_tokenizer,
                need_topk=config.mode == "kd", stats=spooled.stats, out_dir=out_dir,
            )  # fmt: skip
        if heldout_eval is None:
            heldout_eval = heldout_metrics if cross is None else CrossHeldoutEval(cross.mapping)
        teacher_model = None
        if config.mode == "gkd":
            teacher_model = load_live_teacher(config.gkd.teacher, manifest, DTYPES[config.dtype])
        if config.lora is not None:
            model = apply_lora(model, config.lora)
        if config.mode == "kd":  # the loss for the dataset's targets (top-k or sampled)
            config = config.model_copy(update={"kd": config.kd.for_targets(manifest.targets)})

        split = _split(table, config)  # the teacher's rows: the same split as without cross
        heldout = take_rows(rows, split.heldout_rows)  # bounded by the cap: in memory
        # Everything that decides the result: metrics.json's config, what a resume must match.
        run = {"dataset_dir": str(dataset_dir), **config.settings()}
        same_run = {"dataset_id": manifest.dataset_id, **run}
        resume, heldout_initial = _start(
            out_dir, same_run, config.save_steps, model, heldout, heldout_eval
        )
        curve = HeldoutCurve(heldout, config.eval_every, heldout_eval)
        curve.points.extend(resume.heldout_curve)
        marker = [CheckpointMarker(curve.points)] if config.save_steps else []
        trainer = _trainer(
            config, model, tokenizer, (rows, split.train_rows), _trainer_args(config, out_dir),
            [curve, *marker, *(callbacks or [])], teacher_model, cross,
        )  # fmt: skip
        # The loss curve is kept in metrics.json; the per-step dicts Trainer prints when tqdm
        # is off would bury the CLI's own summary.
        trainer.remove_callback(PrinterCallback)
        train_or_resume(trainer, resume)

        heldout_final = heldout_eval(model, heldout)
        counts = parameter_counts(trainer.model)
        _save(trainer, tokenizer, out_dir, adapter=config.lora is not None)
    result = TrainResult(
        mode=config.mode,
        steps=int(trainer.state.global_step),
        loss_curve=[
            (int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e
        ],
        heldout=heldout_final,
        heldout_initial=heldout_initial,
        heldout_curve=curve.points,
        **split.summary(),
        heldout_cap=split.cap.as_dict(),
        seconds=round(time.perf_counter() - started, 3),
        resumed_from_step=resume.step,
        config={
            **run,
            "save_steps": config.save_steps,
            "device": str(trainer.args.device),
            "parameters": counts,
            **({"cross_tokenizer_alignment": alignment} if alignment is not None else {}),
        },
        model_dir=str(out_dir / "model"),
    )
    write_json(out_dir / "metrics.json", result.model_dump(mode="json", exclude={"model_dir"}))
    # lineage.json (the data it trained on, for `distill audit`) and README.md, a model card
    write_run_records(out_dir, dataset_dir, result.model_dump(mode="json"))
    return result


def _save(trainer: SFTTrainer, tokenizer: Any, out_dir: Path, adapter: bool) -> None:
    """`model/` (LoRA adapters merged in) and, with LoRA, `adapter/` alone."""
    if adapter:
        trainer.model.save_pretrained(out_dir / "adapter")
    merged_for_saving(trainer.model).save_pretrained(out_dir / "model")
    tokenizer.save_pretrained(out_dir / "model")
