"""Divergences between two (k + 1)-bucket distributions, and the schedules that drive them.

Both inputs are log-distributions over the same buckets `[..., k + 1]`: the teacher's k
stored ids plus its tail, and the student's probability of those ids plus everything else
(`losses.bucket_logprobs`). `keep` marks real buckets (False on padded top-k slots).

- `forward_kl`: KL(p_teacher || q_student), mass-covering (Hinton et al., 2015).
- `reverse_kl`: KL(q_student || p_teacher), mode-seeking (MiniLLM).
- `jsd`: generalised JSD with TRL GKD's convention (`GKDTrainer.generalized_jsd_loss`):
  m = beta * p + (1 - beta) * q and JSD = beta * KL(p || m) + (1 - beta) * KL(q || m).
  As in TRL, beta = 0 is *defined* as forward KL and beta = 1 as reverse KL (the mixture
  formula itself tends to 0 at both ends; these are the limits of JSD_beta / beta and
  JSD_beta / (1 - beta), which is what TRL computes there).

Reverse KL needs log p where the student has mass: a teacher bucket of probability 0 (an
empty tail at k == V, a tail below `TAIL_NOISE`) is floored at `TAIL_FLOOR`, so the loss
stays finite and strongly penalises student mass there instead of being infinite.

`sampled_ce` is not a bucket divergence: it is the loss for *sampled* targets
(`distill.teachers.sampled_targets`, Anshumann et al., 2025), the cross-entropy
-sum_i w_i log q(i) of the student against the stored importance weights w_i = count_i / k,
with no tail bucket (`sampled_cross_entropy`). As E[w_i] = p_i, its expectation over the
teacher's draws is the dense cross-entropy H(p, q) = KL(p || q) + H(p): the same gradient as
the dense forward KL, unbiased, where top-k's is biased towards the head.

TAID (Shing et al., ICLR 2025) trains on an interpolated target, the softmax of a mix of
logits p_t = softmax((1 - t) * stopgrad(log q) + t * log p) (`interpolated_target`), with t
rising from `t_start` towards 1 (the teacher). Here the mix is over the k + 1 buckets: the
tail bucket mixes the two tail masses, which is not the bucketed mix over the full
vocabulary (that needs the teacher's tail token by token), but is exact at k == V and at
t == 1. The schedules that move t (and alpha) over training are in `schedules`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Divergence = Literal["forward_kl", "reverse_kl", "jsd", "sampled_ce"]
DIVERGENCES: tuple[str, ...] = ("forward_kl", "reverse_kl", "jsd", "sampled_ce")

# Smallest probability a teacher bucket is given inside reverse KL (see the module docstring).
TAIL_FLOOR = 1e-12
_LOG_FLOOR = math.log(TAIL_FLOOR)


def _kl(log_a: Tensor, log_b: Tensor, keep: Tensor | None) -> Tensor:
    """KL(a || b) per position; 0 * log 0 = 0 and buckets outside `keep` count nothing.

    Values at a == 0 are replaced before the product (not masked after it), so neither the
    loss nor its gradient ever sees -inf * 0.
    """
    a = log_a.exp()
    if keep is not None:
        a = a.masked_fill(~keep, 0.0)
    safe_log_a = torch.where(a > 0, log_a, torch.zeros_like(log_a))
    safe_log_b = torch.where(a > 0, log_b, torch.zeros_like(log_b))
    return (a * (safe_log_a - safe_log_b)).sum(-1)


def bucket_divergence(
    log_q: Tensor,
    log_p: Tensor,
    keep: Tensor | None = None,
    divergence: Divergence = "forward_kl",
    beta: float = 0.5,
) -> Tensor:
    """Divergence between student `log_q` and teacher `log_p` `[..., k + 1]` -> `[...]`.

    Gradients flow into `log_q` only if the caller passes a detached `log_p`.
    """
    if divergence == "jsd" and beta == 0.0:
        divergence = "forward_kl"
    elif divergence == "jsd" and beta == 1.0:
        divergence = "reverse_kl"
    if divergence == "forward_kl":
        return _kl(log_p, log_q, keep)
    if divergence == "reverse_kl":
        return _kl(log_q, log_p.clamp(min=_LOG_FLOOR), keep)
    if divergence == "jsd":
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        log_m = torch.logaddexp(log_q + math.log1p(-beta), log_p + math.log(beta))
        return beta * _kl(log_p, log_m, keep) + (1.0 - beta) * _kl(log_q, log_m, keep)
    if divergence == "sampled_ce":
        raise ValueError("sampled_ce is not a bucket divergence; use sampled_cross_entropy")
    raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")


def sampled_cross_entropy(log_q_ids: Tensor, log_w: Tensor, keep: Tensor | None = None) -> Tensor:
    """-sum_i w_i log q(i) over the stored ids `[..., k]` -> `[...]`.

    `log_q_ids` is the student's log-prob of each stored id, `log_w` the stored log-weights
    (-inf, weight 0, on padding slots); slots outside `keep` count nothing.
    """
    w = log_w.float().exp()
    if keep is not None:
        w = w.masked_fill(~keep, 0.0)
    safe_log_q = torch.where(w > 0, log_q_ids, torch.zeros_like(log_q_ids))
    return -(w * safe_log_q).sum(-1)


def interpolated_target(
    log_q: Tensor, log_p: Tensor, t: float, keep: Tensor | None = None
) -> Tensor:
    """TAID's target log softmax((1 - t) * stopgrad(log q) + t * log p) over the buckets
    `[..., k + 1]`; buckets outside `keep` get -inf. No gradient reaches `log_q` through it.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"TAID's t must be in [0, 1], got {t}")
    if t == 1.0:
        return log_p
    student = log_q.detach()
    if t == 0.0:  # 0 * log p would be 0 * -inf = nan on empty buckets
        mixed = student
    else:
        # A teacher bucket of probability 0 stays at 0 (-inf) in the mix, as in a logit mix.
        mixed = torch.where(torch.isneginf(log_p), log_p, (1.0 - t) * student + t * log_p)
    if keep is not None:
        mixed = mixed.masked_fill(~keep, float("-inf"))
    return torch.log_softmax(mixed, dim=-1)
