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

from distill.train.chunked_loss import chunked_distill_loss
from distill.train.collate import shifted_labels
from distill.train.config import KDLossConfig
from distill.train.divergences import Divergence
from distill.train.losses import LossSpec, TeacherTargets, distill_loss
from distill.train.record_trainer import RecordTrainer
from distill.train.schedules import (
    AlphaSchedule,
    scheduled_alpha,
    taid_linear_t,
    taid_start,
    taid_update,
)
from distill.train.student import hidden_at

# The KD fields of KDConfig: KDLossConfig's, which holds their defaults, help and checks.
KD_FIELDS = tuple(name for name in KDLossConfig.model_fields if name != "targets")


def _kd_field(name: str, **default: Any) -> Any:
    """A KDConfig field with `KDLossConfig`'s default and help text (one source for both)."""
    spec = KDLossConfig.model_fields[name]
    return field(default=default.get("default", spec.default), metadata={"help": spec.description})


@dataclass
class KDConfig(SFTConfig):
    """SFTConfig plus the knobs of the distillation loss: the fields of `KDLossConfig`
    (defaults, help and checks are its own; see `distill.train.config`), flat as TRL's
    configs are. The divergence here is always explicit (default forward_kl)."""

    temperature: float = _kd_field("temperature")
    alpha: float = _kd_field("alpha")
    divergence: Divergence = _kd_field("divergence", default="forward_kl")  # noqa: RUF009
    beta: float = _kd_field("beta")
    alpha_schedule: AlphaSchedule = _kd_field("alpha_schedule")  # noqa: RUF009
    alpha_end: float | None = _kd_field("alpha_end")
    taid_t_start: float = _kd_field("taid_t_start")
    taid_step_size: float = _kd_field("taid_step_size")
    taid_momentum: float = _kd_field("taid_momentum")
    chunk_size: int | None = _kd_field("chunk_size")

    def __post_init__(self):
        super().__post_init__()
        KDLossConfig.model_validate({name: getattr(self, name) for name in KD_FIELDS})


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
        # Adaptive TAID's state, and the KD losses of the optimiser step in progress (one per
        # micro-batch) that move t once that step is over.
        self.taid = taid_start(args.taid_t_start)
        self._taid_losses: list[float] = []
        self._taid_step = 0

    def _progress(self) -> float:
        return self.state.global_step / max(int(self.state.max_steps or 0), 1)

    def _advance_taid(self) -> None:
        """Fold the last finished optimiser step's KD loss into adaptive TAID's t."""
        if self.state.global_step == self._taid_step:
            return
        if self._taid_losses:
            loss = sum(self._taid_losses) / len(self._taid_losses)
            self.taid = taid_update(
                self.taid, loss, self._progress(), self.args.taid_t_start,
                self.args.taid_step_size, self.args.taid_momentum,
            )  # fmt: skip
        self._taid_losses, self._taid_step = [], self.state.global_step

    def loss_spec(self) -> LossSpec:
        """The loss at the current step: alpha and TAID's t as their schedules have them."""
        args = self.args
        progress = self._progress()
        t = None
        if args.alpha_schedule == "taid":
            t = taid_linear_t(progress, args.taid_t_start)
        elif args.alpha_schedule == "taid_adaptive":
            t = self.taid.t
        return LossSpec(
            temperature=args.temperature,
            alpha=scheduled_alpha(args.alpha_schedule, progress, args.alpha, args.alpha_end),
            divergence=args.divergence,
            beta=args.beta,
            taid_t=t,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        adaptive = self.args.alpha_schedule == "taid_adaptive" and model.training
        if adaptive:
            self._advance_taid()
        spec = self.loss_spec()
        teacher = TeacherTargets.from_batch(inputs)
        chunked = None
        if self.args.chunk_size is not None and not return_outputs:
            labels = shifted_labels(inputs["labels"])
            where = inputs.get("target_mask", labels != -100)
            chunked = hidden_at(model, inputs["input_ids"], inputs["attention_mask"], where)
        if chunked is not None:
            hidden, head = chunked
            logits = None
            parts = chunked_distill_loss(
                hidden, head.weight, head.bias, teacher.at(where), labels[where], spec,
                num_items_in_batch=num_items_in_batch, chunk_size=self.args.chunk_size,
            )  # fmt: skip
        else:
            logits, labels, where = self.response_logits(model, inputs)
            # Logits are already selected at `where`, so the targets are selected the same way.
            parts = distill_loss(
                logits, teacher.at(where), labels, spec, num_items_in_batch=num_items_in_batch
            )
        mode = "train" if model.training else "eval"
        # Log per-token means of this micro-batch, whatever the loss's divisor was.
        scale = float(num_items_in_batch or parts.num_tokens) / max(int(parts.num_tokens), 1)
        self._metrics[mode]["kd_kl"].append(float(parts.kd.detach()) * scale)
        self._metrics[mode]["ce"].append(float(parts.ce.detach()) * scale)
        self._metrics[mode]["kd_alpha"].append(spec.alpha)
        if spec.taid_t is not None:
            self._metrics[mode]["taid_t"].append(spec.taid_t)
        if adaptive:  # TAID's loss is the KD term against the interpolated target
            self._taid_losses.append(float(parts.kd.detach()) * scale)
        return (parts.loss, {"logits": logits}) if return_outputs else parts.loss
