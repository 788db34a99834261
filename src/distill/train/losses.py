"""Distillation losses over *sparse* teacher targets: the teacher's top-k plus one tail bucket.

A record stores, per response token, the teacher's k most likely ids with their raw
log-probs and `tail_mass` = 1 - sum of those k probabilities. The student's full
distribution is folded onto the same k + 1 buckets (its probability of each of the k ids,
and everything else in one tail bucket), and the loss is the forward KL between the two
(k + 1)-bucket distributions (or reverse KL / generalised JSD, see `divergences`). With
k == vocab size (tail 0) each is the exact dense divergence.

Temperature T: the student is tempered exactly (log_softmax(logits / T) over the whole
vocabulary, then bucketed). The teacher's tail is unknown token by token, so at T != 1 we
temper the k stored log-probs and treat the tail as a single pseudo-token of log-mass
log(tail_mass), then renormalise over the k + 1 buckets. This is exact at T == 1 and an
approximation otherwise (a tail spread over many tokens would gain more mass under T > 1
than one pseudo-token does). The KD term is scaled by T**2 (Hinton et al., 2015) so its
gradient magnitude does not shrink as T grows.

Sampled targets (`distill.teachers.sampled_targets`) use divergence "sampled_ce": the student's
cross-entropy against the stored weights, no tail bucket, student tempered at T and the
weights not (they estimate the teacher at T = 1; tempering an estimate is not unbiased), and
the same T**2 scaling.

Two named objects carry what every loss takes: `TeacherTargets` (the stored top-k ids,
their log-probs, the tail mass and which top-k slots are real, at some positions) and
`LossSpec` (temperature, alpha, divergence, beta and TAID's t at the current step).

Every function is pure: tensors in, tensors out, unit-tested on toy tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from distill.train.collate import IGNORE_INDEX
from distill.train.divergences import (
    Divergence,
    bucket_divergence,
    interpolated_target,
    sampled_cross_entropy,
)

# Floor for the student's tail bucket: when its k ids hold (numerically) all the mass,
# log(1 - sum) would be log(0) = -inf and its gradient inf * 0 = nan.
_TAIL_FLOOR = 1e-12
# A stored tail below this is float32 rounding of 1 - sum(top-k probs), not mass: treat it as
# 0, or tempering (tail ** (1 / T)) would blow 1e-7 of noise up to 3e-4 of mass at T = 2.
TAIL_NOISE = 1e-6


class TeacherTargets(NamedTuple):
    """The teacher's stored targets at some positions: top-k ids `[..., k]`, their log-probs
    (sampled targets: log-weights) `[..., k]`, the tail mass `[...]`, and which top-k slots
    are real `[..., k]` (None: every slot)."""

    ids: Tensor
    logprobs: Tensor
    tail: Tensor
    mask: Tensor | None = None

    @classmethod
    def from_batch(cls, batch: Mapping[str, Tensor]) -> TeacherTargets:
        """The `teacher_*` tensors of a `collate_rows` batch (aligned with the logits)."""
        return cls(
            batch["teacher_ids"],
            batch["teacher_logprobs"],
            batch["teacher_tail"],
            batch.get("teacher_topk_mask"),
        )

    def at(self, where: Tensor | slice) -> TeacherTargets:
        """The targets at `where`: a boolean mask over positions, or a slice of them."""
        mask = None if self.mask is None else self.mask[where]
        return TeacherTargets(self.ids[where], self.logprobs[where], self.tail[where], mask)


@dataclass(frozen=True)
class LossSpec:
    """What the KD loss computes at one step; `KDTrainer` fills it from `KDConfig` and the
    schedules. `taid_t` (None: off) replaces the teacher by TAID's interpolated target."""

    temperature: float = 1.0
    alpha: float = 0.5
    divergence: Divergence = "forward_kl"
    beta: float = 0.5
    taid_t: float | None = None

    @property
    def kd_weight(self) -> float:
        """alpha * T^2: the T^2 keeps the KD gradient's size as T grows (Hinton et al.)."""
        return self.alpha * self.temperature**2

    @property
    def ce_weight(self) -> float:
        return 1.0 - self.alpha


FORWARD_KL = LossSpec()


class DistillLoss(NamedTuple):
    loss: Tensor  # what is optimised: alpha * T^2 * KD + (1 - alpha) * CE, reduced
    kd: Tensor  # sparse divergence (default KL(teacher || student)) at T, reduced, without T^2
    ce: Tensor  # cross-entropy of the teacher's tokens at T = 1, reduced
    num_tokens: Tensor  # valid positions in this (micro-)batch


def valid_positions(labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """Where a loss counts: inside `mask` (default: everywhere) with a label other than -100."""
    known = labels != IGNORE_INDEX
    return known if mask is None else mask & known


def at_valid_positions(
    rows: Tensor, targets: TeacherTargets, labels: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, TeacherTargets, Tensor, Tensor]:
    """(rows, targets, labels) at the valid positions, and how many there are.

    `rows` are logits `[..., V]` or hidden states `[..., H]`; selecting before the loss keeps
    the `[N, V]` log-softmax the peak memory, never `[B, L, V]`.
    """
    valid = valid_positions(labels, mask)
    return rows[valid], targets.at(valid), labels[valid], valid.sum()


def student_bucket_logprobs(
    log_probs: Tensor, topk_ids: Tensor, topk_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The student's log-probs of the k ids and of the tail bucket (everything else).

    `log_probs` is a log_softmax over the vocabulary `[..., V]`; returns `[..., k]` and `[...]`.
    Padded top-k entries (`topk_mask` False) get log-prob 0 here and must be ignored by callers.
    """
    picked = log_probs.gather(-1, topk_ids)
    if topk_mask is not None:
        # 0 (not -inf) on padding: the value is never used, and -inf would poison gradients
        picked = picked.masked_fill(~topk_mask, 0.0)
        in_topk = torch.logsumexp(picked.masked_fill(~topk_mask, float("-inf")), dim=-1)
    else:
        in_topk = torch.logsumexp(picked, dim=-1)
    # log(1 - exp(lse)) computed as log(-expm1(lse)), floored so it stays finite when lse ~ 0
    log_tail = torch.log((-torch.expm1(in_topk.clamp(max=0.0))).clamp(min=_TAIL_FLOOR))
    return picked, log_tail


def teacher_bucket_logprobs(
    topk_logprobs: Tensor,
    tail_mass: Tensor,
    topk_mask: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """The teacher's (k + 1)-bucket log-distribution `[..., k + 1]`, tempered and renormalised.

    The last bucket is the tail. Padded top-k entries get -inf (probability 0).
    """
    tail = torch.where(tail_mass < TAIL_NOISE, torch.zeros_like(tail_mass), tail_mass)
    log_tail = torch.log(tail).unsqueeze(-1)  # log(0) = -inf is fine: probability 0
    buckets = torch.cat([topk_logprobs, log_tail], dim=-1) / temperature
    if topk_mask is not None:
        keep = torch.cat([topk_mask, torch.ones_like(topk_mask[..., :1])], dim=-1)
        buckets = buckets.masked_fill(~keep, float("-inf"))
    # At T = 1 the buckets already sum to 1 up to float rounding; renormalising is a no-op then.
    return torch.log_softmax(buckets, dim=-1)


def bucket_logprobs(
    log_q: Tensor, targets: TeacherTargets, temperature: float = 1.0
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(student, teacher) log-distributions over the k + 1 buckets `[..., k + 1]`, and the
    mask of real buckets (None when there is no top-k padding).

    `log_q` is the student's tempered log_softmax over the vocabulary `[..., V]`.
    """
    q_k, q_tail = student_bucket_logprobs(log_q, targets.ids, targets.mask)
    log_q_buckets = torch.cat([q_k, q_tail.unsqueeze(-1)], dim=-1)
    log_p = teacher_bucket_logprobs(
        targets.logprobs.float(), targets.tail.float(), targets.mask, temperature
    )
    keep = None
    if targets.mask is not None:
        keep = torch.cat([targets.mask, torch.ones_like(targets.mask[..., :1])], dim=-1)
    return log_q_buckets, log_p, keep


def sparse_divergence_per_token(
    student_logits: Tensor, targets: TeacherTargets, spec: LossSpec = FORWARD_KL
) -> Tensor:
    """`spec.divergence` over k + 1 buckets at each position: `[..., V]` logits -> `[...]`.

    Reads the spec's temperature, divergence, beta and taid_t (see `divergences`).
    """
    log_q = torch.log_softmax(student_logits.float() / spec.temperature, dim=-1)
    return _divergence_from_student_logprobs(log_q, targets, spec)


def sparse_kl_per_token(
    student_logits: Tensor, targets: TeacherTargets, temperature: float = 1.0
) -> Tensor:
    """KL(teacher || student) over k + 1 buckets at each position: `[..., V]` logits -> `[...]`."""
    return sparse_divergence_per_token(student_logits, targets, LossSpec(temperature=temperature))


def _divergence_from_student_logprobs(
    log_q: Tensor, targets: TeacherTargets, spec: LossSpec
) -> Tensor:
    if spec.divergence == "sampled_ce":
        if spec.taid_t is not None:
            raise ValueError("TAID's interpolated target is not defined for sampled_ce")
        log_q_ids, _ = student_bucket_logprobs(log_q, targets.ids, targets.mask)
        return sampled_cross_entropy(log_q_ids, targets.logprobs, targets.mask)
    log_q_b, log_p_b, keep = bucket_logprobs(log_q, targets, spec.temperature)
    if spec.taid_t is not None:
        log_p_b = interpolated_target(log_q_b, log_p_b, spec.taid_t, keep)
    return bucket_divergence(log_q_b, log_p_b, keep, spec.divergence, spec.beta)


def _divisor(num_valid: Tensor, num_items_in_batch: int | Tensor | None, like: Tensor) -> Tensor:
    denom = num_valid if num_items_in_batch is None else num_items_in_batch
    return torch.as_tensor(denom, device=like.device, dtype=like.dtype).clamp(min=1)


def hard_label_loss(
    student_logits: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    num_items_in_batch: int | Tensor | None = None,
) -> Tensor:
    """Cross-entropy of the teacher's tokens (SFT), reduced like `distill_loss`.

    `labels` are aligned with the logits (already shifted); -100 and `mask` False are ignored.
    """
    valid = valid_positions(labels, mask)
    log_q = torch.log_softmax(student_logits[valid].float(), dim=-1)
    nll_sum = -log_q.gather(-1, labels[valid].unsqueeze(-1)).sum()
    return nll_sum / _divisor(valid.sum(), num_items_in_batch, log_q)


def distill_loss(
    student_logits: Tensor,
    targets: TeacherTargets,
    labels: Tensor,
    spec: LossSpec = FORWARD_KL,
    *,
    mask: Tensor | None = None,
    num_items_in_batch: int | Tensor | None = None,
) -> DistillLoss:
    """alpha * T^2 * sparse divergence + (1 - alpha) * CE on the teacher's tokens, summed over valid
    positions and divided by `num_items_in_batch` (the valid positions of the whole
    accumulated batch, so gradient-accumulation micro-batches add up to the full-batch loss)
    or, when it is None, by this batch's valid positions.

    Shapes: logits `[..., V]`, targets `[..., k]` (tail `[...]`), labels/mask `[...]`. A
    position is valid where `mask` is True (default: everywhere) and its label is not -100.
    The default `spec` is the forward KL at T = 1 with alpha = 0.5.
    """
    logits, targets, labels, n_valid = at_valid_positions(student_logits, targets, labels, mask)
    logits = logits.float()
    kd_sum, ce_sum = loss_sums(logits, targets, labels, spec)
    denom = _divisor(n_valid, num_items_in_batch, logits)
    kd, ce = kd_sum / denom, ce_sum / denom
    loss = spec.kd_weight * kd + spec.ce_weight * ce
    return DistillLoss(loss=loss, kd=kd, ce=ce, num_tokens=n_valid)


def loss_sums(
    logits: Tensor, targets: TeacherTargets, labels: Tensor, spec: LossSpec
) -> tuple[Tensor, Tensor]:
    """(divergence summed, CE summed) over `[N, V]` logits that are all valid positions."""
    logits = logits.float()
    log_q1 = torch.log_softmax(logits, dim=-1)
    ce_sum = -log_q1.gather(-1, labels.unsqueeze(-1)).squeeze(-1).sum()
    # One log-softmax serves both terms at T = 1; only a tempered KD needs a second one.
    temperature = spec.temperature
    log_qt = log_q1 if temperature == 1.0 else torch.log_softmax(logits / temperature, dim=-1)
    return _divergence_from_student_logprobs(log_qt, targets, spec).sum(), ce_sum
