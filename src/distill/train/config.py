"""What `train_student` is told: `TrainConfig`, with the KD loss spec and GKD's options in it.

As TRL's `XxxConfig`s do, every field carries its help text (`Field(description=...)`), and
`distill train` builds a `TrainConfig` from its flags. The sections a mode does not read
(`kd` for SFT and GKD, `gkd` for SFT and KD) keep their defaults and are left out of
`settings()`, the dump that `metrics.json` records and a resume must match.

Defaults: T = 1.0 because the stored top-k are exact only at T = 1 (a tempered tail is an
approximation, see `losses`) and most LLM distillation work (MiniLLM, GKD, DistiLLM) uses
T = 1; alpha = 0.5 is the even soft/hard mix of Hinton et al. (2015) and the default of
DistillKit, keeping the teacher's sampled tokens as an anchor. The divergence defaults to
forward KL (sampled_ce on sampled targets); beta = 0.5 and lmbda = 0.5 are GKD's defaults;
TAID's are the paper's; chunking changes memory, not the result, so it is on by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from distill.train.divergences import Divergence
from distill.train.lora import LoraOptions
from distill.train.schedules import TAID_SCHEDULES, AlphaSchedule

Mode = Literal["sft", "kd", "gkd"]
CrossTokenizerLoss = Literal["uld", "hybrid"]
MODES: tuple[str, ...] = ("sft", "kd", "gkd")


class KDLossConfig(BaseModel):
    """The KD loss spec (`mode="kd"`): divergence, weights, temperature and their schedules."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(
        default=1.0,
        gt=0,
        description="Softmax temperature for student logits and teacher log-probs in the KD "
        "term; the KD term is scaled by T^2. Exact at 1.0; at other values the teacher's tail "
        "is tempered as one pseudo-token.",
    )
    alpha: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the KD term: loss = alpha * T^2 * KL(teacher || student) + "
        "(1 - alpha) * CE on the teacher's tokens. 1.0 is pure KD, 0.0 is plain SFT. "
        "With alpha_schedule='linear' this is the weight at the first step.",
    )
    divergence: Divergence | None = Field(
        default=None,
        description="KD term over the k + 1 buckets: forward_kl = KL(teacher || student), "
        "reverse_kl = KL(student || teacher), jsd = generalised JSD with `beta`; "
        "sampled_ce = cross-entropy against sampled targets' weights (no tail), the "
        "loss for datasets generated with --targets sampled. None: the dataset's targets "
        "decide (forward_kl on top-k, sampled_ce on sampled targets).",
    )
    beta: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="JSD interpolation, TRL GKD convention: mixture m = beta * teacher + "
        "(1 - beta) * student, JSD = beta * KL(teacher || m) + (1 - beta) * KL(student || m); "
        "beta = 0 is forward KL, beta = 1 reverse KL. Used only with divergence='jsd'.",
    )
    alpha_schedule: AlphaSchedule = Field(
        default="constant",
        description="constant: alpha throughout. linear: alpha -> alpha_end over max_steps. "
        "taid: constant alpha, and the KD target is TAID's interpolation "
        "softmax((1 - t) * stopgrad(student log-probs) + t * teacher log-probs) over the "
        "k + 1 buckets, t rising linearly from taid_t_start to 1 over max_steps. "
        "taid_adaptive: the same target with TAID's adaptive t (Shing et al., 2025): "
        "a momentum of the KD loss's relative change speeds t up, never below the "
        "linear ramp.",
    )
    alpha_end: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Final alpha of the linear schedule (required with 'linear').",
    )
    taid_t_start: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="TAID's t (the teacher's weight in the target) at the first step.",
    )
    taid_step_size: float = Field(
        default=5e-4,
        ge=0.0,
        description="taid_adaptive: the largest step of t per optimiser step, times (1 - t).",
    )
    taid_momentum: float = Field(
        default=0.99,
        ge=0.0,
        lt=1.0,
        description="taid_adaptive: momentum of the loss's relative change.",
    )
    chunk_size: int | None = Field(
        default=1024,
        ge=1,
        description="Response positions per chunk of the LM head + loss, so the loss's peak "
        "memory does not grow with sequence length. None projects all positions at once. "
        "Needs a plain linear LM head; other models fall back to unchunked.",
    )
    targets: Literal["topk", "sampled"] | None = Field(
        default=None,
        description="The targets the dataset must hold (its manifest's `targets`); None: "
        "whichever it holds. Not a KDConfig field: only checked against the dataset.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> KDLossConfig:
        if self.alpha_schedule == "linear" and self.alpha_end is None:
            raise ValueError("alpha_schedule='linear' needs alpha_end")
        if self.divergence == "sampled_ce" and self.alpha_schedule in TAID_SCHEDULES:
            raise ValueError("TAID's interpolated target needs top-k targets, not sampled_ce")
        return self

    def for_targets(self, held: str) -> KDLossConfig:
        """This spec on a dataset holding `held` targets ("topk" | "sampled").

        Sampled targets (`distill.teachers.sampled_targets`) train with divergence "sampled_ce";
        `targets`, when set, must agree with the dataset, and a bucket divergence on sampled
        targets (or sampled_ce on top-k ones) is refused rather than silently wrong.
        """
        asked = self.targets or held
        if asked != held:
            raise ValueError(f"kd targets={asked!r}, but the dataset holds {held!r} targets")
        if held == "sampled":
            if self.divergence not in (None, "sampled_ce"):
                raise ValueError(
                    f"divergence {self.divergence!r} needs top-k targets; this dataset holds "
                    "sampled targets (use sampled_ce)"
                )
            return self.model_copy(update={"divergence": "sampled_ce"})
        if self.divergence == "sampled_ce":
            raise ValueError(
                "divergence 'sampled_ce' needs a dataset generated with --targets sampled"
            )
        return self

    def kd_config_fields(self) -> dict[str, Any]:
        """The `KDConfig` keyword arguments of this spec (None divergence: forward_kl)."""
        fields = self.model_dump(exclude={"targets"})
        fields["divergence"] = self.divergence or "forward_kl"
        return fields


class GKDOptions(BaseModel):
    """On-policy GKD (`mode="gkd"`, TRL's GKDTrainer) against a live teacher."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    teacher: Path | None = Field(
        default=None,
        description="The live teacher's model dir; None: the embedded teacher.",
    )
    lmbda: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fraction of steps on the student's samples."
    )
    beta: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Generalised JSD interpolation (0: forward KL, 1: reverse KL).",
    )
    max_new_tokens: int = Field(default=128, ge=1, description="Length of on-policy samples.")
    seq_kd: bool = Field(
        default=False, description="Also train on the teacher's own samples (sequence KD)."
    )
    temperature: float = Field(
        default=1.0, gt=0, description="Sampling temperature of the on-policy completions."
    )

    def trainer_fields(self) -> dict[str, Any]:
        """The GKDConfig keyword arguments (the teacher is passed as a model, not here)."""
        return self.model_dump(exclude={"teacher"})


class CrossTokenizerOptions(BaseModel):
    """A student on another tokenizer than the teacher's (`distill.train.cross_rows`): the
    teacher's text is re-tokenised for it and the stored top-k aligned through byte spans.

    Opt-in rather than automatic: a tokenizer that differs from the teacher's is more often
    a mistake (the wrong student dir, an edited chat template) than a plan, and the
    conversion is lossy (student tokens that start inside a teacher token get no teacher
    target), so the check refuses it until a loss is named."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    loss: CrossTokenizerLoss = Field(
        default="hybrid",
        description="KD only. uld: Wasserstein distance between the sorted top-k + tail "
        "probabilities (Boizard et al., 2024); hybrid: forward KL on the ids whose bytes map "
        "one-to-one between the vocabularies, ULD on the others (GOLD). SFT ignores it.",
    )
    teacher_tokenizer: Path | None = Field(
        default=None,
        description="Dir of the teacher's tokenizer, to decode its token ids; None: the "
        "embedded teacher's when the dataset is the embedded teacher's. Its fingerprint must "
        "be the manifest's.",
    )


class TrainConfig(BaseModel):
    """Everything that decides a training run; `train_student(dataset, out, config)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Mode = Field(
        description="sft (hard labels) | kd (top-k soft targets) | gkd (on-policy, live teacher)"
    )
    student: Path | None = Field(
        default=None,
        description="Student checkpoint dir; None: a small random model on the embedded "
        "teacher's tokenizer (datasets from another teacher need a student on theirs).",
    )
    max_steps: int = Field(default=60, description="Optimiser steps.")
    batch_size: int = Field(default=8, description="Rows per micro-batch (per device).")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, description="Micro-batches per optimiser step."
    )
    learning_rate: float = Field(
        default=1e-3,
        description="Peak learning rate; 1e-3 suits the tiny random student, lower it for a "
        "pretrained one.",
    )
    seed: int = Field(default=0, description="Seed of the init, the split and the data order.")
    heldout_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Share of prompts held out (every sample of a prompt on one side), up "
        "to heldout_max_rows and heldout_max_tokens.",
    )
    heldout_max_rows: int | None = Field(
        default=512,
        ge=1,
        description="Cap on the held-out rows, so evaluating costs the same on any dataset "
        "size: held-out prompts are taken whole in hash order until the next would pass the "
        "cap; the prompts beyond it train. None: no cap.",
    )
    heldout_max_tokens: int | None = Field(
        default=65536,
        ge=1,
        description="Cap on the held-out rows' response tokens, applied as heldout_max_rows. "
        "None: no cap.",
    )
    eval_every: int | None = Field(
        default=None, description="Score the held-out rows every N steps (None: at the ends)."
    )
    save_steps: int | None = Field(
        default=None,
        ge=1,
        description="Checkpoint every N steps under OUT/trainer; the same call again resumes "
        "from the last complete checkpoint. Not part of what a resume must match.",
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="Student weights: bfloat16 halves memory (with LoRA the frozen base is bf16 "
        "and the adapters stay fp32; without, training is pure bf16); float32 is exact.",
    )
    use_cpu: bool = Field(default=False, description="Train on the CPU even when a GPU is present.")
    sft_backend: Literal["records", "trl"] = Field(
        default="records",
        description="SFT only: records = HardLabelTrainer (the KD data path and forward); trl = "
        "TRL's plain SFTTrainer, completion-only loss on the same ids (same loss, ~9x slower "
        "on CPU).",
    )
    kd: KDLossConfig = Field(default_factory=KDLossConfig, description="KD only: the loss spec.")
    gkd: GKDOptions = Field(default_factory=GKDOptions, description="GKD only: its options.")
    lora: LoraOptions | None = Field(
        default=None,
        description="Train LoRA adapters only (needs peft); model/ is then the merged model "
        "and adapter/ the adapter alone. None: full fine-tuning.",
    )

    cross_tokenizer: CrossTokenizerOptions | None = Field(
        default=None,
        description="sft and kd: train a student on another tokenizer than the teacher's "
        "(see CrossTokenizerOptions). None: the student must share the teacher's tokenizer.",
    )

    @model_validator(mode="after")
    def _cross_tokenizer_fits(self) -> TrainConfig:
        if self.cross_tokenizer is None:
            return self
        if self.mode == "gkd":
            raise ValueError("cross_tokenizer: on-policy GKD needs the teacher's tokenizer")
        if self.sft_backend == "trl" and self.mode == "sft":
            raise ValueError("cross_tokenizer: use sft_backend='records'")
        kd = self.kd
        if self.mode == "kd" and (kd.temperature != 1.0 or kd.divergence is not None):
            raise ValueError("cross_tokenizer: the losses are defined at temperature 1, with "
                             "no --divergence (they are not bucket divergences)")  # fmt: skip
        if self.mode == "kd" and kd.alpha_schedule not in ("constant", "linear"):
            raise ValueError("cross_tokenizer: TAID's target needs a shared vocabulary")
        return self

    def settings(self) -> dict[str, Any]:
        """The dump of what this mode reads: `metrics.json`'s config, what a resume matches."""
        unused = {"sft": {"kd", "gkd"}, "kd": {"gkd", "sft_backend"}, "gkd": {"kd", "sft_backend"}}
        exclude = unused[self.mode] | {"save_steps"}
        if self.cross_tokenizer is None:  # runs from before the option dump as they did
            exclude |= {"cross_tokenizer"}
        return self.model_dump(mode="json", exclude=exclude)
