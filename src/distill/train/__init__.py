"""Train a student on a distill dataset: SFT on the teacher's tokens or KD on its top-k.

from distill.train import train_student
result = train_student(Path("data/curated"), Path("runs/kd"), mode="kd")
"""

from distill.train.chunked import chunked_distill_loss
from distill.train.collate import collate_rows
from distill.train.compat import StudentMismatch, check_student_compat
from distill.train.divergences import bucket_divergence, scheduled_alpha, taid_lambda
from distill.train.evaluate import heldout_metrics, split_heldout, split_summary
from distill.train.kd_trainer import KDConfig, KDTrainer
from distill.train.lora import LoraOptions
from distill.train.losses import (
    DistillLoss,
    distill_loss,
    hard_label_loss,
    sparse_divergence_per_token,
    sparse_kl_per_token,
)
from distill.train.record_trainer import HardLabelTrainer, RecordTrainer
from distill.train.runner import TrainResult, train_student
from distill.train.student import build_random_student

__all__ = [
    "DistillLoss",
    "HardLabelTrainer",
    "KDConfig",
    "KDTrainer",
    "LoraOptions",
    "RecordTrainer",
    "StudentMismatch",
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
    "taid_lambda",
    "train_student",
]
