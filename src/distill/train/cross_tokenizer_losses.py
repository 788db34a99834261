"""KD losses without a shared vocabulary, over the teacher's stored top-k plus its tail.

The teacher's targets at an aligned student position (`token_alignment`) are its k most
likely ids (teacher vocabulary) with their probabilities p_1 >= ... >= p_k and the tail
mass tau = 1 - sum(p). The student has a full distribution q over its own vocabulary.

ULD (Boizard et al., 2024, "Towards Cross-Tokenizer Distillation: the Universal Logit
Distillation Loss for LLMs"): the Wasserstein-1 distance between the two distributions with
the token identities dropped. Their closed form sorts both probability vectors (the smaller
vocabulary zero-padded) and sums the absolute differences rank by rank:
ULD = sum_i |sort(p)_i - sort(q)_i|. Only the teacher's top k are stored, so both sides are
truncated the same way: the k largest probabilities in order, then everything else as one
last entry,
    uld = sum_{i<=k} |p_(i) - q_(i)| + |tau - (1 - sum_{i<=k} q_(i))|
(q_(i): the student's i-th largest probability; a teacher position with fewer than k stored
entries is zero-padded, as ULD pads). By the triangle inequality this is a lower bound of the
full sorted sum; it is that sum exactly when the teacher's top k hold all its mass.

Hybrid (after GOLD, Patiño et al., 2025): where a teacher id maps one-to-one to a student id
(same bytes, `token_bytes.vocab_map`) the probabilities are compared directly, elsewhere by
rank. With M the stored entries that map and U those that do not:
    matched = sum_{i in M} p_i log(p_i / q_{m(i)}) + r_p log(r_p / r_q),
      r_p = 1 - sum_M p_i, r_q = 1 - sum_M q_{m(i)}
(the forward KL over the mapped ids plus one bucket for all other mass, the bucketed KL of
`losses` restricted to M), and
    unmatched = sum_{j<=|U|} |sort(p_U)_j - sort(q_rest)_j|
where q_rest is the student's distribution over the ids no teacher id maps to (GOLD's
unmatched set). hybrid = matched + unmatched (GOLD weighs the two; we add them with weight 1).
When every stored id maps, U is empty and the hybrid is the bucketed forward KL exactly.

The functions are pure (tensors in, tensors out) and take the student's log-softmax at T = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from distill.train.divergences import bucket_divergence
from distill.train.losses import (
    DistillLoss,
    TeacherTargets,
    student_bucket_logprobs,
    teacher_bucket_logprobs,
)


class CrossTargets(NamedTuple):
    """Teacher targets at aligned student positions: the stored top-k (teacher ids) and,
    per entry, the student id it maps to one-to-one (-1: none) `[N, k]`."""

    teacher: TeacherTargets
    student_ids: Tensor


def _teacher_probs(targets: TeacherTargets) -> tuple[Tensor, Tensor]:
    """(top-k probabilities `[N, k]`, 0 on padding; the tail `[N]`), from the k + 1 buckets."""
    log_p = teacher_bucket_logprobs(targets.logprobs.float(), targets.tail.float(), targets.mask)
    p = log_p.exp()
    return p[..., :-1], p[..., -1]


def uld_per_token(log_q: Tensor, targets: TeacherTargets) -> Tensor:
    """ULD over the top-k plus the tail (module docstring): `[N, V]` log-probs -> `[N]`."""
    p_k, tail = _teacher_probs(targets)
    k = p_k.shape[-1]
    p_sorted = p_k.sort(dim=-1, descending=True).values  # padding (0) sorts last
    q_sorted = log_q.exp().topk(min(k, log_q.shape[-1]), dim=-1).values
    if q_sorted.shape[-1] < k:  # a student vocabulary smaller than k: zero-padded
        q_sorted = torch.nn.functional.pad(q_sorted, (0, k - q_sorted.shape[-1]))
    q_rest = (1.0 - q_sorted.sum(-1)).clamp(min=0.0)
    return (p_sorted - q_sorted).abs().sum(-1) + (tail - q_rest).abs()


def hybrid_per_token(log_q: Tensor, targets: CrossTargets, unmatched_student: Tensor) -> Tensor:
    """Exact KL on one-to-one ids, ULD on the rest (module docstring): `[N, V]` -> `[N]`.

    `unmatched_student` `[V]` bool marks the student ids that no teacher id maps to.
    """
    teacher = targets.teacher
    real = torch.ones_like(targets.student_ids, dtype=torch.bool)
    if teacher.mask is not None:
        real = teacher.mask
    matched = real & (targets.student_ids >= 0)
    # The matched part is the bucketed KL over the student ids of the matched entries: the
    # other stored entries join the teacher's tail bucket.
    p_k, tail = _teacher_probs(teacher)
    rest_p = tail + (p_k * (real & ~matched)).sum(-1)
    log_p_matched = torch.log(p_k.clamp(min=1e-30)).masked_fill(~matched, 0.0)
    bucket = TeacherTargets(targets.student_ids.clamp(min=0), log_p_matched, rest_p, matched)
    log_q_k, log_q_rest = student_bucket_logprobs(log_q, bucket.ids, matched)
    log_p_b = teacher_bucket_logprobs(bucket.logprobs, bucket.tail, matched)
    log_q_b = torch.cat([log_q_k, log_q_rest.unsqueeze(-1)], dim=-1)
    keep = torch.cat([matched, torch.ones_like(matched[..., :1])], dim=-1)
    kl = bucket_divergence(log_q_b, log_p_b, keep, "forward_kl", 0.5)
    # The unmatched part: teacher's unmatched entries against the student's largest
    # probabilities among the ids no teacher id maps to, rank by rank.
    p_unmatched = (p_k * (real & ~matched)).sort(dim=-1, descending=True).values
    n_unmatched = (real & ~matched).sum(-1)
    q_free = log_q.exp().masked_fill(~unmatched_student, 0.0)
    width = min(p_unmatched.shape[-1], q_free.shape[-1])
    q_top = q_free.topk(width, dim=-1).values
    ranks = torch.arange(width, device=log_q.device)
    in_u = ranks.unsqueeze(0) < n_unmatched.unsqueeze(-1)
    uld = ((p_unmatched[..., :width] - q_top).abs() * in_u).sum(-1)
    return kl + uld


def mapped_mass(targets: CrossTargets) -> Tensor:
    """The teacher's probability on stored ids that map one-to-one, per position `[N]`."""
    p_k, _ = _teacher_probs(targets.teacher)
    return (p_k * (targets.student_ids >= 0)).sum(-1)


@dataclass(frozen=True)
class CrossLossSpec:
    """The cross-tokenizer loss at one step: which KD term, its weight, and the student ids
    that no teacher id maps to (the hybrid's ULD side)."""

    loss: str
    alpha: float
    unmatched_student: Tensor


def cross_kd_per_token(
    log_q: Tensor, targets: CrossTargets, loss: str, unmatched_student: Tensor
) -> Tensor:
    """`loss` ("uld" | "hybrid") at each aligned position: `[N, V]` log-probs -> `[N]`."""
    if loss == "uld":
        return uld_per_token(log_q, targets.teacher)
    if loss == "hybrid":
        return hybrid_per_token(log_q, targets, unmatched_student)
    raise ValueError(f"cross-tokenizer loss {loss!r}: use uld or hybrid")


def cross_distill_loss(
    logits: Tensor,
    targets: CrossTargets,
    labels: Tensor,
    aligned: Tensor,
    spec: CrossLossSpec,
    *,
    num_items_in_batch: int | Tensor | None = None,
) -> DistillLoss:
    """alpha * KD + (1 - alpha) * CE over student response positions `[N, V]`.

    CE counts at every position; the KD term (`spec.loss`) only where `aligned` (a teacher
    top-k was aligned there) and adds 0 elsewhere. Both sums are divided by the same count
    (`num_items_in_batch`, else this batch's positions), so KD is per student token and
    gradient-accumulation micro-batches add up to the full batch, as in `losses.distill_loss`.
    """
    log_q = torch.log_softmax(logits.float(), dim=-1)
    ce_sum = -log_q.gather(-1, labels.unsqueeze(-1)).sum()
    at = CrossTargets(targets.teacher.at(aligned), targets.student_ids[aligned])
    kd_sum = cross_kd_per_token(log_q[aligned], at, spec.loss, spec.unmatched_student).sum()
    count = labels.numel() if num_items_in_batch is None else num_items_in_batch
    denom = torch.as_tensor(count, device=log_q.device, dtype=log_q.dtype).clamp(min=1)
    kd, ce = kd_sum / denom, ce_sum / denom
    loss = spec.alpha * kd + (1.0 - spec.alpha) * ce
    return DistillLoss(loss=loss, kd=kd, ce=ce, num_tokens=torch.tensor(labels.numel()))
