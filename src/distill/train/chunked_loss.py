"""The distillation loss computed chunk by chunk from hidden states, so its peak memory is
set by `chunk_size`, not by the number of response positions.

`distill_loss` takes `[N, V]` logits: at N = 8192 positions and V = 49k that is 1.6 GB of
fp32 logits, as much again for the log-softmax, and autograd keeps both for backward.
`chunked_distill_loss` takes the hidden states `[N, H]` and the LM head instead. For each
chunk of `chunk_size` positions it projects the logits, computes the loss, and
immediately back-propagates that chunk's part into the gradients of the hidden states and
of the head (the approach of Liger's fused linear cross-entropy). Nothing of size V is kept
between chunks, and the head is projected once per position (no recomputation, unlike
activation checkpointing). The loss value and the gradients equal `distill_loss` on the
full logits up to float summation order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.train.losses import (
    FORWARD_KL,
    DistillLoss,
    LossSpec,
    TeacherTargets,
    _divisor,
    at_valid_positions,
    loss_sums,
)

ChunkLoss = Callable[[Tensor, int, int], tuple[Tensor, Tensor]]


class _ChunkedHeadLoss(torch.autograd.Function):
    """loss = sum over chunks of chunk_loss(hidden[chunk] @ weight.T + bias); gradients are
    computed during forward, chunk by chunk, and only scaled in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, chunk_loss: ChunkLoss, chunk_size: int):
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b else None
        w = weight.detach().requires_grad_(need_w)
        b = bias.detach().requires_grad_(need_b) if bias is not None else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        stats = torch.zeros(2, dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_size):
            stop = min(start + chunk_size, hidden.shape[0])
            h = hidden[start:stop].detach().requires_grad_(need_h)
            with torch.enable_grad():
                part, part_stats = chunk_loss(F.linear(h, w, b), start, stop)
            wanted = [t for t, need in ((h, need_h), (w, need_w), (b, need_b)) if need]
            if wanted:
                grads = iter(torch.autograd.grad(part, wanted))
                if need_h:
                    grad_h[start:stop] = next(grads)
                if need_w:
                    grad_w += next(grads)
                if need_b:
                    grad_b += next(grads)
            total += part.detach()
            stats += part_stats.detach()
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.mark_non_differentiable(stats)
        return total, stats

    @staticmethod
    def backward(ctx, grad_total, grad_stats):
        scaled = [None if g is None else g * grad_total.to(g.dtype) for g in ctx.saved_tensors]
        return (*scaled, None, None)


def chunked_distill_loss(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: TeacherTargets,
    labels: Tensor,
    spec: LossSpec = FORWARD_KL,
    *,
    num_items_in_batch: int | Tensor | None = None,
    chunk_size: int = 1024,
) -> DistillLoss:
    """`distill_loss` on the logits `hidden @ weight.T + bias`, `chunk_size` positions at a time.

    Shapes: hidden `[N, H]`, weight `[V, H]`, bias `[V]` or None, targets `[N, k]` (tail
    `[N]`), labels `[N]`; positions whose label is -100 are ignored.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    hidden, targets, labels, n_valid = at_valid_positions(hidden, targets, labels)
    denom = _divisor(n_valid, num_items_in_batch, torch.zeros((), device=hidden.device))

    def chunk_loss(logits: Tensor, start: int, stop: int) -> tuple[Tensor, Tensor]:
        part = slice(start, stop)
        kd_sum, ce_sum = loss_sums(logits, targets.at(part), labels[part], spec)
        loss = (spec.kd_weight * kd_sum + spec.ce_weight * ce_sum) / denom
        return loss, torch.stack([kd_sum, ce_sum])

    loss, (kd_sum, ce_sum) = _ChunkedHeadLoss.apply(hidden, weight, bias, chunk_loss, chunk_size)
    return DistillLoss(loss=loss, kd=kd_sum / denom, ce=ce_sum / denom, num_tokens=n_valid)
