"""Fingerprints of a tokenizer, shared by the teachers (which record them) and by
training (which refuses a student whose fingerprints differ from the manifest's)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from distill.schemas.manifest import TokenizerInfo


def _sha(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def tokenizer_hash(tokenizer: Any) -> str:
    """Hash of the token -> id map and the special tokens, not of tokenizer.json's bytes:
    two serialisations of the same vocabulary must compare equal."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    specials = sorted(str(t) for t in tokenizer.all_special_tokens)
    return _sha(json.dumps([vocab, specials], ensure_ascii=False))


def chat_template_hash(tokenizer: Any) -> str:
    return _sha(tokenizer.chat_template or "")


def vocab_size(tokenizer: Any, model_config: Any | None = None) -> int:
    """The size of the logit dimension: the model config's when known (it can exceed
    len(tokenizer) through padding), else the tokenizer's."""
    if model_config is not None and getattr(model_config, "vocab_size", None):
        return int(model_config.vocab_size)
    return len(tokenizer)


def special_tokens(tokenizer: Any) -> dict[str, str | None]:
    names = ("bos_token", "eos_token", "pad_token", "unk_token")
    return {name: getattr(tokenizer, name, None) for name in names}


def describe_tokenizer(tokenizer: Any, model_config: Any | None = None) -> TokenizerInfo:
    return TokenizerInfo(
        tokenizer_hash=tokenizer_hash(tokenizer),
        vocab_size=vocab_size(tokenizer, model_config),
        chat_template_hash=chat_template_hash(tokenizer),
        special_tokens=special_tokens(tokenizer),
    )
