"""Train a student on a distill dataset: SFT on the teacher's tokens or KD on its top-k.

from distill.train import TrainConfig, train_student
result = train_student(Path("data/curated"), Path("runs/kd"), TrainConfig(mode="kd"))
"""

from distill.train.chunked_loss import chunked_distill_loss
from distill.train.collate import collate_rows
from distill.train.config import CrossTokenizerOptions, GKDOptions, KDLossConfig, TrainConfig
from distill.train.divergences import bucket_divergence
from distill.train.heldout import heldout_metrics, split_heldout, split_summary
from distill.train.kd_trainer import KDConfig, KDTrainer
from distill.train.lora import LoraOptions
from distill.train.losses import (
    DistillLoss,
    LossSpec,
    TeacherTargets,
    distill_loss,
    hard_label_loss,
    sparse_divergence_per_token,
    sparse_kl_per_token,
)
from distill.train.record_trainer import HardLabelTrainer, RecordTrainer
from distill.train.runner import TrainResult, train_student
from distill.train.schedules import scheduled_alpha, taid_linear_t
from distill.train.student import build_random_student
from distill.train.student_check import StudentMismatch, check_student_compat

__all__ = [
    "CrossTokenizerOptions",
    "DistillLoss",
    "GKDOptions",
    "HardLabelTrainer",
    "KDConfig",
    "KDLossConfig",
    "KDTrainer",
    "LoraOptions",
    "LossSpec",
    "RecordTrainer",
    "StudentMismatch",
    "TeacherTargets",
    "TrainConfig",
    "TrainResult",
    "bucket_divergence",
    "build_random_student",
    "check_student_compat",
    "chunked_distill_loss",
    "collate_rows",
    "distill_loss",
    "hard_label_loss",
    "heldout_metrics",
    "scheduled_alpha",
    "sparse_divergence_per_token",
    "sparse_kl_per_token",
    "split_heldout",
    "split_summary",
    "taid_linear_t",
    "train_student",
]
