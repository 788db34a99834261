"""Token strings from an API -> the teacher's token ids, through a local tokenizer.

Servers that are not vLLM (or are, without `return_tokens_as_token_ids`) return each token
as text: OpenAI and vLLM send the decoded string (" hello") and its UTF-8 `bytes`; some
servers send the vocabulary's own piece ("Ġhello" in byte-level BPE). We try, in order:
  1. the bytes, when given: byte-level BPE pieces have distinct bytes, so this is exact,
     also for pieces that are half a UTF-8 character and all decode to "\ufffd";
  2. the decoded text, when exactly one id decodes to it;
  3. the vocabulary piece.
A string none of these finds is unmapped (None); the caller drops such a top-k entry and
counts it. A text several ids decode to (e.g. "\ufffd") is ambiguous and not used: taking
one of them (the old rule: the lowest id) silently stores the wrong id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

K = TypeVar("K")


@dataclass(frozen=True)
class TokenStringMap:
    by_bytes: dict[bytes, int]
    by_text: dict[str, int]
    by_piece: dict[str, int]

    def lookup(self, token: str, raw: list[int] | None = None) -> int | None:
        if raw is not None:
            hit = self.by_bytes.get(bytes(raw))
            if hit is not None:
                return hit
        hit = self.by_text.get(token)
        return hit if hit is not None else self.by_piece.get(token)


def build_token_map(tokenizer: Any) -> TokenStringMap:
    pieces: dict[str, int] = tokenizer.get_vocab()  # added/special tokens included
    ids = sorted(set(pieces.values()))
    texts = tokenizer.batch_decode(
        [[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    piece_of = {i: p for p, i in pieces.items()}
    byte_of = byte_level_decoder() if is_byte_level(tokenizer) else None
    pairs = list(zip(ids, texts, strict=True))
    return TokenStringMap(
        by_bytes=_unique((_token_bytes(piece_of[i], t, byte_of), i) for i, t in pairs),
        by_text=_unique((t, i) for i, t in pairs),
        by_piece=dict(pieces),
    )


def _token_bytes(piece: str, text: str, byte_of: dict[str, int] | None) -> bytes | None:
    if byte_of is not None and all(ch in byte_of for ch in piece):
        return bytes(byte_of[ch] for ch in piece)
    # Not byte-level (e.g. SentencePiece): the text's bytes, unless it is a partial character.
    return None if "\ufffd" in text else text.encode("utf-8")


def _unique(pairs: Iterable[tuple[K | None, int]]) -> dict[K, int]:
    """key -> id for the keys exactly one id has."""
    found: dict[K, int] = {}
    clashes: set[K] = set()
    for key, i in pairs:
        if key is None or key in clashes:
            continue
        if key in found and found[key] != i:
            clashes.add(key)
            del found[key]
        else:
            found[key] = i
    return found


def is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    decoder = json.loads(backend.to_str()).get("decoder")
    return "ByteLevel" in json.dumps(decoder)


def byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted (char -> byte)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}
