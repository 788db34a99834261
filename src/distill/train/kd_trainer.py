"""KD on sparse teacher targets as a TRL trainer: `KDConfig` + `KDTrainer(SFTTrainer)`.

The trainer overrides `compute_loss` (the loss of `losses.distill_loss`); the data path
(Arrow records, collator with the teacher's top-k aligned to the logits) is `RecordTrainer`'s,
shared with `HardLabelTrainer`. Everything else (optimiser, schedule, logging, gradient
accumulation, saving) is SFTTrainer's, so an SFT student and a KD student trained with the
same settings see the same batches in the same order and differ in nothing but the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa
from trl import SFTConfig

from distill.train.chunked import chunked_distill_loss
from distill.train.collate import shifted_labels
from distill.train.divergences import (
    ALPHA_SCHEDULES,
    DIVERGENCES,
    TAID_SCHEDULES,
    AlphaSchedule,
    scheduled_alpha,
    taid_lambda,
    taid_start,
    taid_update,
)
from distill.train.losses import distill_loss
from distill.train.record_trainer import RecordTrainer
from distill.train.student import hidden_at


@dataclass
class KDConfig(SFTConfig):
    """SFTConfig plus the knobs of the distillation loss.

    Defaults: T = 1.0 because the stored top-k are exact only at T = 1 (a tempered tail is
    an approximation, see `losses`) and most LLM distillation work (MiniLLM, GKD, DistiLLM)
    uses T = 1; alpha = 0.5 is the even soft/hard mix of Hinton et al. (2015) and the
    default of DistillKit, keeping the teacher's sampled tokens as an anchor. The divergence
    defaults to forward KL (the loss before these options existed); beta = 0.5 is GKD's
    default; chunking changes memory, not the result, so it is on by default.
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
            "(1 - alpha) * CE on the teacher's tokens. 1.0 is pure KD, 0.0 is plain SFT. "
            "With alpha_schedule='linear' this is the weight at the first step."
        },
    )
    divergence: Literal["forward_kl", "reverse_kl", "jsd", "sampled_ce"] = field(
        default="forward_kl",
        metadata={
            "help": "KD term over the k + 1 buckets: forward_kl = KL(teacher || student), "
            "reverse_kl = KL(student || teacher), jsd = generalised JSD with `beta`; "
            "sampled_ce = cross-entropy against sampled targets' weights (no tail), the "
            "loss for datasets generated with --targets sampled."
        },
    )
    beta: float = field(
        default=0.5,
        metadata={
            "help": "JSD interpolation, TRL GKD convention: mixture m = beta * teacher + "
            "(1 - beta) * student, JSD = beta * KL(teacher || m) + (1 - beta) * KL(student || m); "
            "beta = 0 is forward KL, beta = 1 reverse KL. Used only with divergence='jsd'."
        },
    )
    alpha_schedule: AlphaSchedule = field(
        default="constant",
        metadata={
            "help": "constant: alpha throughout. linear: alpha -> alpha_end over max_steps. "
            "taid: constant alpha, and the KD target is TAID's interpolation "
            "softmax((1 - t) * stopgrad(student log-probs) + t * teacher log-probs) over the "
            "k + 1 buckets, t rising linearly from taid_lambda_start to 1 over max_steps. "
            "taid_adaptive: the same target with TAID's adaptive t (Shing et al., 2025): "
            "a momentum of the KD loss's relative change speeds t up, never below the "
            "linear ramp."
        },
    )
    alpha_end: float | None = field(
        default=None,
        metadata={"help": "Final alpha of the linear schedule (required with 'linear')."},
    )
    taid_lambda_start: float = field(
        default=0.4,
        metadata={"help": "TAID's t (the teacher's weight in the target) at the first step."},
    )
    taid_step_size: float = field(
        default=5e-4,
        metadata={
            "help": "taid_adaptive: the largest step of t per optimiser step, times (1 - t)."
        },
    )
    taid_momentum: float = field(
        default=0.99,
        metadata={"help": "taid_adaptive: momentum of the loss's relative change."},
    )
    chunk_size: int | None = field(
        default=1024,
        metadata={
            "help": "Response positions per chunk of the LM head + loss, so the loss's peak "
            "memory does not grow with sequence length. None projects all positions at once. "
            "Needs a plain linear LM head; other models fall back to unchunked."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {self.divergence!r}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.alpha_schedule not in ALPHA_SCHEDULES:
            raise ValueError(
                f"alpha_schedule must be one of {ALPHA_SCHEDULES}, got {self.alpha_schedule!r}"
            )
        if self.divergence == "sampled_ce" and self.alpha_schedule in TAID_SCHEDULES:
            raise ValueError("TAID's interpolated target needs top-k targets, not sampled_ce")
        if self.alpha_schedule == "linear" and self.alpha_end is None:
            raise ValueError("alpha_schedule='linear' needs alpha_end")
        if self.alpha_end is not None and not 0.0 <= self.alpha_end <= 1.0:
            raise ValueError(f"alpha_end must be in [0, 1], got {self.alpha_end}")
        if not 0.0 <= self.taid_lambda_start <= 1.0:
            raise ValueError(f"taid_lambda_start must be in [0, 1], got {self.taid_lambda_start}")
        if self.taid_step_size < 0:
            raise ValueError(f"taid_step_size must be >= 0, got {self.taid_step_size}")
        if not 0.0 <= self.taid_momentum < 1.0:
            raise ValueError(f"taid_momentum must be in [0, 1), got {self.taid_momentum}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {self.chunk_size}")


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
        self.taid = taid_start(args.taid_lambda_start)
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
                self.taid, loss, self._progress(), self.args.taid_lambda_start,
                self.args.taid_step_size, self.args.taid_momentum,
            )  # fmt: skip
        self._taid_losses, self._taid_step = [], self.state.global_step

    def loss_options(self) -> dict[str, Any]:
        """The loss's keyword arguments at the current step (alpha / lambda schedules)."""
        args = self.args
        progress = self._progress()
        lam = None
        if args.alpha_schedule == "taid":
            lam = taid_lambda(progress, args.taid_lambda_start)
        elif args.alpha_schedule == "taid_adaptive":
            lam = self.taid.t
        return {
            "temperature": args.temperature,
            "alpha": scheduled_alpha(args.alpha_schedule, progress, args.alpha, args.alpha_end),
            "divergence": args.divergence,
            "beta": args.beta,
            "taid_lambda": lam,
        }

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        adaptive = self.args.alpha_schedule == "taid_adaptive" and model.training
        if adaptive:
            self._advance_taid()
        options = self.loss_options()
        chunked = None
        if self.args.chunk_size is not None and not return_outputs:
            labels = shifted_labels(inputs["labels"])
            where = inputs.get("target_mask", labels != -100)
            chunked = hidden_at(model, inputs["input_ids"], inputs["attention_mask"], where)
        if chunked is not None:
            hidden, head = chunked
            logits = None
            parts = chunked_distill_loss(
                hidden,
                head.weight,
                head.bias,
                inputs["teacher_ids"][where],
                inputs["teacher_logprobs"][where],
                inputs["teacher_tail"][where],
                labels[where],
                topk_mask=inputs["teacher_topk_mask"][where],
                num_items_in_batch=num_items_in_batch,
                chunk_size=self.args.chunk_size,
                **options,
            )
        else:
            logits, labels, where = self.response_logits(model, inputs)
            # Logits are already selected at `where`, so the targets are selected the same way.
            parts = distill_loss(
                logits,
                inputs["teacher_ids"][where],
                inputs["teacher_logprobs"][where],
                inputs["teacher_tail"][where],
                labels,
                topk_mask=inputs["teacher_topk_mask"][where],
                num_items_in_batch=num_items_in_batch,
                **options,
            )
        mode = "train" if model.training else "eval"
        # Log per-token means of this micro-batch, whatever the loss's divisor was.
        scale = float(num_items_in_batch or parts.num_tokens) / max(int(parts.num_tokens), 1)
        self._metrics[mode]["kd_kl"].append(float(parts.kd.detach()) * scale)
        self._metrics[mode]["ce"].append(float(parts.ce.detach()) * scale)
        self._metrics[mode]["kd_alpha"].append(options["alpha"])
        if options["taid_lambda"] is not None:
            self._metrics[mode]["taid_t"].append(options["taid_lambda"])
        if adaptive:  # TAID's loss is the KD term against the interpolated target
            self._taid_losses.append(float(parts.kd.detach()) * scale)
        return (parts.loss, {"logits": logits}) if return_outputs else parts.loss
