"""On-policy distillation with TRL's GKDTrainer (`trl.experimental.gkd` in TRL 1.16).

GKD (Agarwal et al., 2024) needs a live teacher: with probability `lmbda` a step trains on
completions the student samples itself, scored by the teacher's full distribution with the
generalised JSD (`beta`); otherwise on the dataset's completions. The dataset's prompt and
response *token ids* are fed as they are (`input_ids` + `completion_mask`), so nothing is
re-tokenised and prompts keep the teacher's chat template.

Before the trainer is built the live teacher is checked against the dataset's manifest
(tokenizer hash, vocab size, special tokens), so a mismatched teacher is refused with
reasons instead of TRL's shape error. The options are `config.GKDOptions`; defaults are
GKD's: lmbda = 0.5, beta = 0.5; max_new_tokens = 128 is TRL's default. `temperature` is the
sampling temperature of the on-policy completions (TRL's loss itself is computed at T = 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.schemas import Manifest
from distill.train.collate import sft_dataset
from distill.train.student_check import StudentMismatch, check_student_compat


def gkd_classes() -> tuple[type, type]:
    """(GKDConfig, GKDTrainer), wherever this TRL version keeps them."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        from trl.experimental.gkd import GKDConfig, GKDTrainer
    except ImportError:  # older TRL kept GKD at the top level
        from trl import GKDConfig, GKDTrainer  # type: ignore[attr-defined,no-redef]
    return GKDConfig, GKDTrainer


def gkd_dataset(table: pa.Table) -> Dataset:
    """Token ids with a completion mask, in the shape TRL's ChatML collator takes as is.

    `prompt` is a placeholder: the collator reads it only to re-tokenise rows that carry
    no `input_ids`, and ours always do.
    """
    dataset = sft_dataset(table)  # the same ids and mask SFT and KD train on
    return dataset.add_column("prompt", [""] * len(dataset))


def load_live_teacher(teacher_dir: Path, manifest: Manifest, dtype: torch.dtype) -> Any:
    """The teacher model, after checking it speaks the dataset's tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    model = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=dtype)
    try:
        check_student_compat(manifest, tokenizer, model.config)
    except StudentMismatch as exc:
        raise StudentMismatch(
            [f"live GKD teacher {teacher_dir}: {p}" for p in exc.problems]
        ) from None
    return model.eval()
