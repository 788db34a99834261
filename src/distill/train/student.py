"""A small randomly initialised student that shares the teacher's tokenizer and vocabulary.

Sharing the tokenizer is what lets the teacher's token ids and top-k ids be reused as
they are. The student is tiny on purpose: with a 49k vocabulary the embedding (tied with
the LM head) holds most of its parameters, and a step stays around a second on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM


def build_random_student(
    teacher_dir: Path,
    out_dir: Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    heads: int = 4,
    intermediate: int = 256,
    seed: int = 0,
    tokenizer_dir: Path | None = None,
) -> Path:
    """Save a random fp32 LlamaForCausalLM with the teacher's vocab and tokenizer to `out_dir`.

    Embeddings are tied (the LM head reuses the embedding matrix), halving the parameters
    that a 49k vocabulary costs. The same `seed` always gives the same weights, so an SFT
    and a KD student start from the same point. `tokenizer_dir` puts the student on that
    tokenizer and its vocabulary instead (cross-tokenizer KD, `student_tokenizer`).
    """
    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} must be divisible by heads {heads}")
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    teacher_config = AutoConfig.from_pretrained(teacher_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or teacher_dir)
    special = ("bos_token_id", "eos_token_id", "pad_token_id")
    if tokenizer_dir is None:
        ids = {name: getattr(teacher_config, name, None) for name in special}
        ids["vocab_size"] = teacher_config.vocab_size
    else:
        ids = {name: getattr(tokenizer, name, None) for name in special}
        ids["vocab_size"] = len(tokenizer)
    config = LlamaConfig(
        **ids,
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=getattr(teacher_config, "max_position_embeddings", 2048),
        rms_norm_eps=getattr(teacher_config, "rms_norm_eps", 1e-5),
        tie_word_embeddings=True,
    )
    # Seed only around the init, restoring the global RNG so callers' randomness is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _plain_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(backbone, LM head) when the logits are a plain projection of the last hidden state.

    A peft-wrapped model is unwrapped first: its adapters live inside the backbone's layers.
    """
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    plain_head = config is not None and not any(
        getattr(config, name, None) not in (None, 1.0)
        for name in ("final_logit_softcapping", "logit_scale", "logits_scaling")
    )
    backbone = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if plain_head and backbone is not None and backbone is not model and head is not None:
        return backbone, head
    return None


def hidden_at(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    where: torch.Tensor,
) -> tuple[torch.Tensor, torch.nn.Linear] | None:
    """(last hidden states `[N, H]` at `where`, the linear LM head), or None when the
    model's logits are not a plain linear projection (then use `logits_at`)."""
    parts = _plain_head(model)
    if parts is None or not isinstance(parts[1], torch.nn.Linear):
        return None
    backbone, head = parts
    hidden = backbone(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state
    return hidden[where], head


def logits_at(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    where: torch.Tensor,
) -> torch.Tensor:
    """The model's logits `[N, V]` at the positions where `where` `[B, L]` is True.

    Runs the backbone and projects only the selected hidden states through the LM head, so
    the `[B, L, V]` logits (400 MB for 8 x 250 x 49k fp32) are never built. Models whose
    logits are not a plain projection (soft-capping, logit scales) use the full forward.
    """
    parts = _plain_head(model)
    if parts is not None:
        backbone, head = parts
        hidden = backbone(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        return head(hidden[where])
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[where]
