"""`train_student`: one call from a dataset directory to a trained student and its metrics.

The thin runner around the trainers: load, check, split, evaluate, train, evaluate, save.
SFT and KD share everything here (student init, split, seed, data order, optimiser and
schedule); only the trainer's loss differs. GKD (on-policy, a live teacher) and LoRA
students plug into the same path (`gkd`, `lora`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import pyarrow.compute as pc
import torch
from pydantic import BaseModel, ConfigDict
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from distill.locking import locks_output
from distill.schemas import PACKED_TOPK_COLUMNS, PLAIN_TOPK_COLUMNS, Manifest
from distill.store import DatasetError, load_manifest, read_table, write_json
from distill.train.checkpoints import (
    CheckpointMarker,
    Resume,
    checkpoint_args,
    find_resume,
    record_run_start,
    train_or_resume,
)
from distill.train.collate import sft_dataset
from distill.train.compat import check_student_compat
from distill.train.evaluate import (
    HeldoutCurve,
    HeldoutEval,
    heldout_metrics,
    split_heldout,
    split_summary,
)
from distill.train.gkd import check_gkd_options, gkd_classes, gkd_dataset, load_live_teacher
from distill.train.kd_trainer import KDConfig, KDTrainer
from distill.train.lora import LoraOptions, apply_lora, merged_for_saving, parameter_counts
from distill.train.record_trainer import HardLabelTrainer
from distill.train.student import build_random_student

BASE_COLUMNS = ["record_id", "prompt_id", "prompt_token_ids", "token_ids"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
MODES = ("sft", "kd", "gkd")


def _columns(manifest: Manifest) -> list[str]:
    """What training reads: the ids plus the top-k columns of the dataset's codec."""
    topk = PACKED_TOPK_COLUMNS if manifest.codec == "packed" else PLAIN_TOPK_COLUMNS
    return [*BASE_COLUMNS, *topk]


class TrainResult(BaseModel):
    """What `metrics.json` holds, plus where the model was written."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["sft", "kd", "gkd"]
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
    resumed_from_step: int | None
    seconds: float
    config: dict[str, Any]
    model_dir: str


def kd_options_for_targets(manifest: Manifest, kd_options: dict[str, Any] | None) -> dict:
    """`kd_options` with the loss matching the dataset's targets (`manifest.targets`).

    Sampled targets (`distill.teachers.sampled_targets`) train with divergence "sampled_ce"; an
    optional `kd_options["targets"]` must agree with the manifest, and a bucket divergence on
    sampled targets (or sampled_ce on top-k ones) is refused rather than silently wrong.
    """
    options = dict(kd_options or {})
    held = manifest.targets
    asked = options.pop("targets", held)
    if asked != held:
        raise ValueError(f"kd_options targets={asked!r}, but the dataset holds {held!r} targets")
    divergence = options.get("divergence")
    if held == "sampled":
        if divergence not in (None, "sampled_ce"):
            raise ValueError(
                f"divergence {divergence!r} needs top-k targets; this dataset holds sampled "
                "targets (use sampled_ce)"
            )
        options["divergence"] = "sampled_ce"
    elif divergence == "sampled_ce":
        raise ValueError("divergence 'sampled_ce' needs a dataset generated with --targets sampled")
    return options


@locks_output("out_dir")  # one writer per run dir; read_table checks the shards' sha256
def train_student(
    dataset_dir: Path,
    out_dir: Path,
    mode: Literal["sft", "kd", "gkd"],
    student: Path | None = None,
    max_steps: int = 60,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    eval_every: int | None = None,
    temperature: float = 1.0,
    alpha: float = 0.5,
    sft_backend: Literal["records", "trl"] = "records",
    kd_options: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    dtype: Literal["float32", "bfloat16"] = "float32",
    teacher: Path | None = None,
    gkd_options: dict[str, Any] | None = None,
    callbacks: list[TrainerCallback] | None = None,
    save_steps: int | None = None,
    heldout_eval: HeldoutEval = heldout_metrics,
    **trainer_options: Any,
) -> TrainResult:
    """Train a student on a distill dataset with SFT (hard labels) or KD (sparse top-k).

    `student=None` builds a random tiny student (`build_random_student`) on the embedded
    teacher's tokenizer (`distill.teachers.embedded.embedded_teacher_dir()`), since that is the
    only teacher whose checkpoint we can find without network; datasets from another
    teacher must pass a student built on that teacher's tokenizer, and the compat check
    refuses the default otherwise. The default learning rate 1e-3 suits the tiny random
    student; lower it for a pretrained one. Extra `trainer_options` go to the TRL config;
    `kd_options` (KD only) go to `KDConfig`: divergence, beta, alpha_schedule, alpha_end,
    taid_lambda_start, taid_step_size, taid_momentum, chunk_size, and `targets` ("topk" |
    "sampled", checked against the manifest's `targets`; sampled targets train with
    divergence "sampled_ce").

    `lora` (a `LoraOptions` dict: r, alpha, dropout, target_modules; `{}` takes the
    defaults) trains peft LoRA adapters only; `model/` is then the merged full model
    (`merge_and_unload`, loads without peft) and `adapter/` the adapter alone. `dtype`
    is the student's weight dtype: "bfloat16" halves memory (with LoRA the frozen base is
    bf16 and the adapters stay fp32; without, training is pure bf16), "float32" is exact.

    `mode="gkd"` is on-policy GKD (TRL's GKDTrainer) against the live `teacher` model dir
    (default: the embedded teacher); `gkd_options`: lmbda, beta, max_new_tokens, seq_kd, and
    `temperature` is its sampling temperature. `alpha` and `kd_options` are KD only.

    `save_steps` writes a checkpoint every N steps under `out_dir/trainer`; calling again
    with the same settings resumes from the last complete one (`distill.train.checkpoints`).
    `callbacks` are extra transformers `TrainerCallback`s (logging, timing, early stop).
    `heldout_eval(model, heldout_rows) -> dict` scores the held-out rows before, during
    (`eval_every`) and after training; default `heldout_metrics` (sparse KL and NLL).

    SFT runs `HardLabelTrainer` (same data path and forward as KD, ~1 s/step on CPU);
    `sft_backend="trl"` runs TRL's plain SFTTrainer with completion-only loss on the same
    ids instead (same loss, but its fused LM head is ~9x slower on CPU).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    lora_options = None if lora is None else LoraOptions(**lora)
    check_gkd_options(gkd_options or {})
    if sft_backend not in ("records", "trl"):
        raise ValueError(f"sft_backend must be 'records' or 'trl', got {sft_backend!r}")
    started = time.perf_counter()
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    manifest = load_manifest(dataset_dir)
    table = read_table(dataset_dir, columns=_columns(manifest))
    # A response with no token has nothing to learn from (and TRL would drop it, changing order).
    table = table.filter(pc.greater(pc.list_value_length(table.column("token_ids")), 0))
    if table.num_rows == 0:
        raise DatasetError(f"{dataset_dir}: no rows with a non-empty response to train on")

    if student is None:
        from distill.teachers.embedded import embedded_teacher_dir

        student = build_random_student(embedded_teacher_dir(), out_dir / "student_init", seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=DTYPES[dtype])
    check_student_compat(manifest, tokenizer, model.config, need_topk=mode == "kd", table=table)
    if mode == "gkd":
        from distill.teachers.embedded import embedded_teacher_dir

        teacher = Path(teacher) if teacher is not None else embedded_teacher_dir()
        teacher_model = load_live_teacher(teacher, manifest, DTYPES[dtype])
    if lora_options is not None:
        model = apply_lora(model, lora_options)

    if mode == "kd":
        kd_options = kd_options_for_targets(manifest, kd_options)
    train, heldout = split_heldout(table, fraction=heldout_fraction, seed=seed)
    # Everything that decides the result: metrics.json's config, and what a resume must match.
    run = {
        "dataset_dir": str(dataset_dir),
        "student": str(student),
        "max_steps": max_steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "heldout_fraction": heldout_fraction,
        "eval_every": eval_every,
        **(
            {"temperature": temperature, "alpha": alpha, **(kd_options or {})}
            if mode == "kd"
            else {}
        ),
        **({"sft_backend": sft_backend} if mode == "sft" else {}),
        **(
            {"teacher": str(teacher), "temperature": temperature, **(gkd_options or {})}
            if mode == "gkd"
            else {}
        ),
        "dtype": dtype,
        "lora": None if lora_options is None else lora_options.model_dump(),
        **{k: v for k, v in trainer_options.items() if isinstance(v, (int, float, str, bool))},
    }
    same_run = {"mode": mode, "dataset_id": manifest.dataset_id, **run}
    resume = find_resume(out_dir, same_run) if save_steps else Resume()
    if resume.heldout_initial is not None:
        heldout_initial = resume.heldout_initial
    else:
        heldout_initial = heldout_eval(model, heldout)
        if save_steps:
            record_run_start(out_dir, same_run, heldout_initial)
    common: dict[str, Any] = {
        "output_dir": str(out_dir / "trainer"),
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "data_seed": seed,
        "logging_steps": 1,
        **checkpoint_args(save_steps),
        "report_to": "none",
        # A GPU when there is one, as TRL does; `use_cpu=True` in trainer_options forces CPU.
        "use_cpu": not torch.cuda.is_available(),
        "max_length": None,  # datasets are bounded by the teacher's max_new_tokens; never cut
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        **trainer_options,
    }
    curve = HeldoutCurve(heldout, eval_every, heldout_eval)
    curve.points.extend(resume.heldout_curve)
    marker = [CheckpointMarker(curve.points)] if save_steps else []
    trainer_callbacks = [curve, *marker, *(callbacks or [])]
    if mode == "kd":
        config = KDConfig(**common, temperature=temperature, alpha=alpha, **(kd_options or {}))
        trainer: SFTTrainer = KDTrainer(
            model,
            args=config,
            train_dataset=train,
            processing_class=tokenizer,
            callbacks=trainer_callbacks,
        )
    elif mode == "gkd":
        gkd_config_class, gkd_trainer_class = gkd_classes()
        config = gkd_config_class(**common, temperature=temperature, **(gkd_options or {}))
        trainer = gkd_trainer_class(
            model,
            teacher_model,
            args=config,
            train_dataset=gkd_dataset(train),
            processing_class=tokenizer,
            callbacks=trainer_callbacks,
        )
    elif sft_backend == "records":
        config = SFTConfig(**common)
        trainer = HardLabelTrainer(
            model,
            args=config,
            train_dataset=train,
            processing_class=tokenizer,
            callbacks=trainer_callbacks,
        )
    else:
        # Plain TRL SFT on the same ids, loss on the completion (response) tokens only.
        config = SFTConfig(**common, completion_only_loss=True)
        trainer = SFTTrainer(
            model,
            args=config,
            train_dataset=sft_dataset(train),
            processing_class=tokenizer,
            callbacks=trainer_callbacks,
        )
    # The loss curve is kept in metrics.json; the per-step dicts Trainer prints when tqdm
    # is off would bury the CLI's own summary.
    trainer.remove_callback(PrinterCallback)
    train_or_resume(trainer, resume)

    heldout_final = heldout_eval(model, heldout)
    counts = parameter_counts(trainer.model)
    model_dir = out_dir / "model"
    if lora_options is not None:
        trainer.model.save_pretrained(out_dir / "adapter")
    merged_for_saving(trainer.model).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    loss_curve = [
        (int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e
    ]
    result = TrainResult(
        mode=mode,
        steps=int(trainer.state.global_step),
        loss_curve=loss_curve,
        heldout=heldout_final,
        heldout_initial=heldout_initial,
        heldout_curve=curve.points,
        **split_summary(train, heldout),
        seconds=round(time.perf_counter() - started, 3),
        resumed_from_step=resume.step,
        config={
            **run,
            "save_steps": save_steps,
            "device": str(trainer.args.device),
            "parameters": counts,
        },
        model_dir=str(model_dir),
    )
    payload = result.model_dump(mode="json", exclude={"model_dir"})
    write_json(out_dir / "metrics.json", payload)
    return result
