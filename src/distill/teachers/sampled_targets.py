"""Random-sampling KD targets (Anshumann et al., ACL 2025, "Sparse Logit Sampling").

Instead of the teacher's top-k (biased: the student never learns the tail), each step
stores k tokens drawn i.i.d. from p = softmax(logits) (float32, temperature 1), merged:
every distinct id gets weight count / k, an unbiased estimate of p restricted to the
draws (E[count_i / k] = p_i). The estimate sums to 1, so `tail_mass` is 0.

Storage reuses the top-k schema and codecs unchanged: `topk_ids` holds the distinct ids
(most drawn first) and `topk_logprobs` holds log(count / k). Every token keeps exactly k
slots (the packed codec needs one k per row): slots beyond the distinct draws hold the
most likely *undrawn* ids with log-weight -inf (weight 0). The packed codec clips -inf to
20 nats below the token's best entry (a weight below 2e-9): negligible.

Which targets a dataset holds is recorded in its manifest, `Manifest.targets`
("topk" when absent); the records alone do not say (a top-k row has a tail, a sampled
one has tail 0 and log-weights that are multiples of log(1 / k), but neither is proof).
The loss for these targets is `losses`' divergence "sampled_ce".
"""

from __future__ import annotations

import math

import torch

TARGETS: tuple[str, ...] = ("topk", "sampled")


def sample_targets(
    logits: torch.Tensor,
    k: int,
    generators: torch.Generator | list[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids `[B, k]`, log-weights `[B, k]`, tail `[B]`) of k i.i.d. draws from softmax(logits).

    `generators`: one per row (draws independent of the batch's other rows, as in
    `topk_capture.sample_next`), one shared, or None (torch's global RNG). Distinct ids come first,
    most drawn first, with log(count / k); padding slots carry -inf (see the module docstring).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    # On the CPU, where the per-row generators are (see `topk_capture.sample_next`).
    logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    probs = logprobs.exp()
    rows, vocab = probs.shape
    if k > vocab:
        raise ValueError(f"k = {k} is above the vocab size {vocab}")
    if isinstance(generators, list):
        if len(generators) != rows:
            raise ValueError(f"{len(generators)} generators for {rows} rows")
        draws = torch.stack(
            [
                torch.multinomial(probs[r], k, replacement=True, generator=generators[r])
                for r in range(rows)
            ]
        )
    else:
        draws = torch.multinomial(probs, k, replacement=True, generator=generators)
    counts = torch.zeros_like(probs).scatter_add_(
        -1, draws, torch.ones_like(draws, dtype=probs.dtype)
    )
    # Order: most drawn first, then (for padding) the most likely undrawn tokens.
    # A drawn id's key is count + 1 >= 2, an undrawn one's p / 2 <= 0.5.
    key = torch.where(counts > 0, counts + 1.0, probs * 0.5)
    order = torch.topk(key, k, dim=-1).indices
    picked = counts.gather(-1, order)
    log_weights = torch.where(
        picked > 0,
        torch.log(picked.clamp(min=1.0)) - math.log(k),
        torch.full_like(picked, -math.inf),
    )
    tail = torch.zeros(rows, dtype=torch.float32)
    return order, log_weights, tail
