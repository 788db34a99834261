"""The transformers teacher's teacher forcing (`HFTeacher.score`, used by `distill score`).

ONE forward pass per batch of (prompt ids, response ids): right-padded, no KV cache, the
model's dtype, log-softmax in float32. The logits at position P-1+j (P = prompt length)
predict response token j. The tail mass is exact (a logsumexp outside the top-k).
"""

from __future__ import annotations

from typing import Any

import torch

from distill.teachers.backend import Generation
from distill.teachers.topk_capture import capture_topk


@torch.inference_mode()
def teacher_forced_topk(
    model: Any, pad_id: int, pairs: list[tuple[list[int], list[int]]], top_k: int
) -> list[Generation]:
    """Top-k at each response position of (prompt ids, response ids), one forward pass.

    Right padding keeps every real token at its natural position (0..len-1), so the
    default position ids are right and the pad tail is masked out. No pairs: no work.
    """
    if not pairs:
        return []
    width = max(len(p) + len(r) for p, r in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, response) in enumerate(pairs):
        seq = prompt + response
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    device = model.device  # a GPU teacher needs its inputs there, not on the CPU
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    # Logits at P-1+j predict response token j; gather them for all rows, then one top-k.
    rows = [logits[row, len(p) - 1 : len(p) - 1 + len(r)] for row, (p, r) in enumerate(pairs)]
    step = capture_topk(torch.cat(rows), top_k)
    targets = torch.tensor([t for _, r in pairs for t in r], dtype=torch.long, device=device)
    sampled = step.logprobs_full.gather(-1, targets[:, None])[:, 0].tolist()
    top_ids, top_lp, tails = step.ids.tolist(), step.logprobs.tolist(), step.tail_mass.tolist()
    out, start = [], 0
    for _, response in pairs:
        end = start + len(response)
        out.append(
            Generation(
                token_ids=list(response),
                topk_ids=top_ids[start:end],
                topk_logprobs=top_lp[start:end],
                sampled_logprob=sampled[start:end],
                tail_mass=tails[start:end],
                finish_reason="stop",
            )
        )
        start = end
    return out
