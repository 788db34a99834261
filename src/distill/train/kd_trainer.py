"""KD on sparse teacher targets as a TRL trainer: `KDConfig` + `KDTrainer(SFTTrainer)`.

The trainer overrides `compute_loss` (the loss of `losses.distill_loss`); the data path
(Arrow records, collator with the teacher's top-k aligned to the logits) is `RecordTrainer`'s,
shared with `HardLabelTrainer`. Everything else (optimiser, schedule, logging, gradient
accumulation, saving) is SFTTrainer's, so an SFT student and a KD student trained with the
same settings see the same batches in the same order and differ in nothing but the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from trl import SFTConfig

from distill.train.losses import distill_loss
from distill.train.record_trainer import RecordTrainer


@dataclass
class KDConfig(SFTConfig):
    """SFTConfig plus the two knobs of the distillation loss.

    Defaults: T = 1.0 because the stored top-k are exact only at T = 1 (a tempered tail is
    an approximation, see `losses`) and most LLM distillation work (MiniLLM, GKD, DistiLLM)
    uses T = 1; alpha = 0.5 is the even soft/hard mix of Hinton et al. (2015) and the
    default of DistillKit, keeping the teacher's sampled tokens as an anchor.
    """

    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Softmax temperature for student logits and teacher log-probs in the KD term; "
            "the KD term is scaled by T^2. Exact at 1.0; at other values the teacher's tail "
            "is tempered as one pseudo-token."
        },
    )
    alpha: float = field(
        default=0.5,
        metadata={
            "help": "Weight of the KD term: loss = alpha * T^2 * KL(teacher || student) + "
            "(1 - alpha) * CE on the teacher's tokens. 1.0 is pure KD, 0.0 is plain SFT."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


class KDTrainer(RecordTrainer):
    """SFTTrainer whose loss is the sparse top-k KD loss against the stored teacher targets.

    `train_dataset` is an Arrow table of records (`prompt_token_ids`, `token_ids`,
    `topk_ids`, `topk_logprobs`, `tail_mass`), e.g. `distill.store.read_table(dir)`.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "distill-kd"]
    _name = "KD"
    with_teacher = True

    def __init__(self, model: Any, args: KDConfig, train_dataset: pa.Table, **kwargs: Any):
        if not isinstance(args, KDConfig):
            raise TypeError("KDTrainer needs a KDConfig (temperature and alpha live there)")
        super().__init__(model, args, train_dataset, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, labels, where = self.response_logits(model, inputs)
        # Logits are already selected at `where`, so the targets are selected the same way.
        parts = distill_loss(
            logits,
            inputs["teacher_ids"][where],
            inputs["teacher_logprobs"][where],
            inputs["teacher_tail"][where],
            labels,
            topk_mask=inputs["teacher_topk_mask"][where],
            temperature=self.args.temperature,
            alpha=self.args.alpha,
            num_items_in_batch=num_items_in_batch,
        )
        mode = "train" if model.training else "eval"
        # Log per-token means of this micro-batch, whatever the loss's divisor was.
        scale = float(num_items_in_batch or parts.num_tokens) / max(int(parts.num_tokens), 1)
        self._metrics[mode]["kd_kl"].append(float(parts.kd.detach()) * scale)
        self._metrics[mode]["ce"].append(float(parts.ce.detach()) * scale)
        return (parts.loss, {"logits": logits}) if return_outputs else parts.loss
