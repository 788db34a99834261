"""The transformers teacher: batched decoding that captures top-k at every step, and
teacher forcing (`score`, in `hf_teacher_forcing`).

We run our own decode loop instead of `model.generate(output_logits=True)`: generate()
keeps the full-vocabulary logits of every step for the whole batch until it returns
(49k floats x tokens x rows), whereas capturing top-k as we go keeps k per token.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.schemas import LogprobsMode, SamplingParams, TeacherInfo
from distill.schemas.manifest import TokenizerInfo
from distill.teachers.backend import Generation, encode_chat_ids
from distill.teachers.hf_teacher_forcing import teacher_forced_topk
from distill.teachers.sampled_targets import TARGETS, sample_targets
from distill.teachers.topk_capture import capture_topk, sample_next
from distill.tokenizer_info import (
    chat_template_hash,
    describe_tokenizer,
    tokenizer_hash,
    vocab_size,
)

__all__ = ["Generation", "HFTeacher", "generate_batch", "load_hf_teacher"]


@dataclass
class HFTeacher:
    model: Any
    tokenizer: Any
    model_id: str
    revision: str
    stop_ids: frozenset[int]
    targets: str = "topk"  # "sampled": k draws per step (`sampled_targets`), not the top-k

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return TeacherInfo(
            model_id=self.model_id,
            revision=self.revision,
            backend="hf",
            tokenizer_hash=tokenizer_hash(self.tokenizer),
            vocab_size=vocab_size(self.tokenizer, self.model.config),
            chat_template_hash=chat_template_hash(self.tokenizer),
            logprobs_mode=LogprobsMode.RAW,
            top_k=top_k,
            sampling=sampling,
        )

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return encode_chat_ids(self.tokenizer, messages)

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        top_k: int,
        seeds: list[int],
        messages: list[list[dict[str, str]]] | None = None,
    ) -> list[Generation]:
        return generate_batch(self, prompts, sampling, top_k, seeds, targets=self.targets)

    def score(self, pairs: list[tuple[list[int], list[int]]], top_k: int) -> list[Generation]:
        """Teacher-forced top-k at each response position (`hf_teacher_forcing`)."""
        return teacher_forced_topk(self.model, self.pad_id, pairs, top_k)

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def tokenizer_info(self) -> TokenizerInfo:
        return describe_tokenizer(self.tokenizer, self.model.config)

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad id, else a stop id (padding is masked out either way)."""
        pad_id = self.tokenizer.pad_token_id
        return pad_id if pad_id is not None else next(iter(self.stop_ids))


def weights_revision(model_dir: Path) -> str:
    """sha256 over the weight files, so a record names the exact weights that made it."""
    digest = hashlib.sha256()
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    for path in files:
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def load_hf_teacher(
    model_dir: Path,
    model_id: str | None = None,
    revision: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> HFTeacher:
    """`device`: "cpu", "cuda", "cuda:N" or "auto" (the first GPU when there is one)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a Hugging Face checkpoint (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    model.eval()
    eos = model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        stop.add(tokenizer.eos_token_id)
    return HFTeacher(
        model=model,
        tokenizer=tokenizer,
        model_id=model_id or model_dir.name,
        revision=revision or weights_revision(model_dir),
        stop_ids=frozenset(stop),
    )


def _left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


def new_kv_cache(model: Any) -> tuple[Any, str]:
    """An empty `DynamicCache` for `model`, and the `forward()` keyword that takes it.

    transformers 5.2x renamed `past_key_values` to `cache` (the old name warns and goes in
    5.40), and so did the outputs. We make the cache ourselves and pass it by its current
    name; the model fills it in place, so no output field is read either.
    """
    from transformers import DynamicCache

    takes_cache = "cache" in inspect.signature(model.forward).parameters
    if "config" in inspect.signature(DynamicCache).parameters:
        cache = DynamicCache(config=model.config)
    else:  # transformers < 4.56
        cache = DynamicCache()
    return cache, "cache" if takes_cache else "past_key_values"


def _prefill(
    model: Any, prompts: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any, str]:
    """One forward pass over the prompts: (last logits, mask, positions, KV cache, the
    forward keyword the cache goes under), one row per prompt."""
    # With n samples per prompt the same prompt appears n times in a batch: prefill each
    # distinct prompt once, then copy its KV cache rows (prefill dominates short answers).
    distinct: dict[tuple[int, ...], int] = {}
    device = model.device
    owner = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompts])
    ids, mask = _left_pad([list(p) for p in distinct], pad_id)
    ids, mask, owner = ids.to(device), mask.to(device), owner.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache, cache_keyword = new_kv_cache(model)
    # logits_to_keep=1: the prefill needs only the last position's logits, and the full
    # [B, prompt_len, V] tensor would dominate both time and memory for short answers.
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_keyword: cache},
    )
    logits = out.logits[:, -1, :]
    if len(distinct) < len(prompts):
        cache.reorder_cache(owner)
        logits, mask, positions = logits[owner], mask[owner], positions[owner]
    return logits, mask, positions, cache, cache_keyword


@torch.inference_mode()
def generate_batch(
    teacher: HFTeacher,
    prompts: list[list[int]],
    sampling: SamplingParams,
    top_k: int,
    seeds: list[int],
    capture: bool = True,
    targets: str = "topk",
) -> list[Generation]:
    """Decode a batch of tokenised prompts; top-k captured from the raw logits each step.

    `capture=False` skips the top-k work (the baseline in bench/gen_capture.py).
    `targets="sampled"` stores k draws from the raw distribution with their weights instead
    of the top-k (`distill.teachers.sampled_targets`); the draws use their own generators (seeded
    from each row's seed), so the sampled response is the same as with `targets="topk"`.
    """
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    model = teacher.model
    pad_id = teacher.pad_id
    device = model.device
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    target_gens = [torch.Generator().manual_seed(s ^ 0x5A3D) for s in seeds]
    logits, mask, positions, cache, cache_keyword = _prefill(model, prompts, pad_id)
    next_pos = positions[:, -1] + 1
    rows = len(prompts)
    results = [Generation([], [], [], [], [], "length") for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    stop = torch.tensor(sorted(teacher.stop_ids), dtype=torch.long, device=device)
    for _ in range(sampling.max_new_tokens):
        next_ids = sample_next(logits, sampling.temperature, sampling.top_p, generators)
        if capture:
            step = capture_topk(logits, top_k)
            sampled_lp = step.logprobs_full.gather(-1, next_ids[:, None])[:, 0]
            top_ids, top_lp = step.ids.tolist(), step.logprobs.tolist()
            tails, sampled = step.tail_mass.tolist(), sampled_lp.tolist()
            if targets == "sampled":
                s_ids, s_lw, s_tail = sample_targets(logits, top_k, target_gens)
                top_ids, top_lp, tails = s_ids.tolist(), s_lw.tolist(), s_tail.tolist()
        finished, chosen = done.tolist(), next_ids.tolist()  # one device sync per step
        for row in range(rows):
            if finished[row]:
                continue
            res = results[row]
            res.token_ids.append(chosen[row])
            if capture:
                res.topk_ids.append(top_ids[row])
                res.topk_logprobs.append(top_lp[row])
                res.sampled_logprob.append(sampled[row])
                res.tail_mass.append(tails[row])
        finished_now = torch.isin(next_ids, stop) & ~done
        for row in torch.nonzero(finished_now).flatten().tolist():
            results[row].finish_reason = "stop"
        done |= finished_now
        if bool(done.all()):
            break
        next_ids = torch.where(done, torch.full_like(next_ids, pad_id), next_ids)
        mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=device)], dim=-1)
        out = model(
            input_ids=next_ids[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            use_cache=True,
            **{cache_keyword: cache},
        )
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1
    return results
