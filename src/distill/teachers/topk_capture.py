"""Per-step numerics of a capturing teacher: top-k of the raw distribution and sampling.

Log-probs are taken from the *raw* logits (log_softmax at temperature 1, before top-p),
so a student is distilled towards the teacher's distribution, not the sampler's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepTopK:
    ids: torch.Tensor  # [B, k] int64, most likely first
    logprobs: torch.Tensor  # [B, k] float32
    tail_mass: torch.Tensor  # [B] float32: probability outside the top-k
    logprobs_full: torch.Tensor  # [B, V] float32, for the sampled token's log-prob


def capture_topk(logits: torch.Tensor, k: int) -> StepTopK:
    """Top-k and tail mass of log_softmax(logits) in float32.

    The tail is a logsumexp over the tokens outside the top-k rather than 1 - sum(top-k):
    the subtraction loses all precision when the top-k covers nearly all the mass.
    """
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    top_lp, top_ids = torch.topk(logprobs, k, dim=-1)
    if k >= logprobs.shape[-1]:
        tail = torch.zeros(logprobs.shape[0], dtype=torch.float32, device=logits.device)
    else:
        outside = logprobs.scatter(-1, top_ids, float("-inf"))
        tail = torch.logsumexp(outside, dim=-1).exp()
    return StepTopK(ids=top_ids, logprobs=top_lp, tail_mass=tail, logprobs_full=logprobs)


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tokens outside the smallest set whose mass reaches top_p (nucleus)."""
    if top_p >= 1.0:
        return probs
    sorted_probs, order = torch.sort(probs, descending=True, dim=-1)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    sorted_probs = torch.where(before < top_p, sorted_probs, torch.zeros_like(sorted_probs))
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


def sample_next(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generators: list[torch.Generator],
) -> torch.Tensor:
    """Next token per row: greedy at temperature 0, else temperature + top-p sampling.

    One generator per row (seeded from the record id) makes each sample independent of
    which other prompts share its batch, so a resumed run draws the same tokens.
    """
    if temperature == 0.0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    probs = _top_p_filter(probs, top_p)
    # The per-row generators live on the CPU, so a draw is the same whatever device ran
    # the model (and a resumed run on another machine draws the same tokens); [B, V]
    # floats cross over per step, small next to a forward pass of a model worth a GPU.
    probs = probs.cpu()
    picks = [
        torch.multinomial(probs[row], 1, generator=generators[row]) for row in range(probs.shape[0])
    ]
    return torch.cat(picks).to(logits.device)
