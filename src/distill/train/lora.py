"""LoRA students through `peft`: wrap before training, merge before saving.

`TrainConfig(lora=LoraOptions(r=8))` trains only low-rank adapters on the attention and MLP
projections; the embedding, norms and LM head stay frozen. The saved `model/` directory is
the merged full model (`merge_and_unload`), so evaluation and `from_pretrained` need
neither peft nor the adapter; the adapter alone is kept in `adapter/` for reuse.

Defaults: r = 8 (Hu et al., 2021, and peft's default), alpha = 2r = 16 (the common
scaling alpha / r = 2), dropout 0.05 (QLoRA's value for small models), all seven linear
projections of a Llama block (QLoRA found adapting every linear layer matters most).
`peft` is an optional dependency (`pip install distill[lora]`), imported only when used.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

LLAMA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraOptions(BaseModel):
    """`TrainConfig.lora`: the adapters to train; an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(default=8, ge=1, description="rank of the adapters")
    alpha: float = Field(default=16.0, gt=0, description="scaling numerator: delta W * alpha / r")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="dropout on adapter inputs")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LLAMA_TARGET_MODULES),
        description="module names to adapt; the default fits Llama-shaped models",
    )


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("LoRA students need peft: pip install 'distill[lora]'") from exc
    return peft


def apply_lora(model: torch.nn.Module, options: LoraOptions) -> torch.nn.Module:
    """`model` wrapped as a peft model whose only trainable parameters are the adapters.

    The adapter B matrices start at zero, so the wrapped model computes exactly what
    `model` did. Adapters stay fp32 whatever the base dtype (peft's autocast_adapter_dtype).
    """
    peft = _peft()
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in options.target_modules if m not in names]
    if missing:
        raise ValueError(
            f"lora target_modules {missing} are not in the student; pass target_modules "
            f"from its linear layers (e.g. {sorted(n for n in names if 'proj' in n)[:8]})"
        )
    config = peft.LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, config)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """`{"trainable": n, "total": n}` counting each tensor once (tied weights count once)."""
    seen: dict[int, torch.nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    return {
        "trainable": sum(p.numel() for p in seen.values() if p.requires_grad),
        "total": sum(p.numel() for p in seen.values()),
    }


def merged_for_saving(model: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model with the adapters folded into its weights."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
