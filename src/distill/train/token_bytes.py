"""Token ids as bytes, for two tokenizers that must meet on the same text.

`VocabBytes` holds every id's bytes in one flat buffer: a byte-level BPE piece ("Ġthe")
through GPT-2's byte map, an added or special token as its content, a SentencePiece piece
with "▁" as a space and "<0xNN>" as that byte. Decoding a row of ids is then one vectorised
gather (`VocabBytes.decode`), and the bytes of a token are exact even where it holds half a
UTF-8 character.

`vocab_map` pairs a teacher id with a student id when both decode to the same bytes and no
other id of either vocabulary does: the one-to-one tokens where the hybrid loss can compare
probabilities directly. `student_spans` re-tokenises text for the student with its byte
spans, from the fast tokenizer's offsets (`return_offsets_mapping`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from distill.teachers.token_strings import byte_level_decoder, is_byte_level
from distill.train.token_alignment import char_offsets_to_bytes, spans_from_lengths, tiling_error

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@dataclass(frozen=True)
class VocabBytes:
    """Every id's bytes: id i is `blob[offsets[i]:offsets[i + 1]]`."""

    blob: np.ndarray  # [total] uint8
    offsets: np.ndarray  # [V + 1] int64

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def token(self, token_id: int) -> bytes:
        return self.blob[self.offsets[token_id] : self.offsets[token_id + 1]].tobytes()

    def decode(self, ids: np.ndarray) -> tuple[bytes, np.ndarray]:
        """(the ids' bytes joined, each id's byte length). Ids past the vocabulary (a
        model's padded logit rows) decode to no bytes."""
        ids = np.asarray(ids, dtype=np.int64)
        known = (ids >= 0) & (ids < self.lengths.size)
        lengths = np.where(known, self.lengths[np.where(known, ids, 0)], 0)
        starts = np.repeat(self.offsets[np.where(known, ids, 0)], lengths)
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.blob[starts + within].tobytes(), lengths


def _piece_bytes(piece: str, byte_of: dict[str, int] | None) -> bytes:
    if byte_of is not None and all(ch in byte_of for ch in piece):
        return bytes(byte_of[ch] for ch in piece)
    matched = _BYTE_PIECE.fullmatch(piece)
    if matched:  # SentencePiece byte fallback
        return bytes([int(matched.group(1), 16)])
    return piece.replace("▁", " ").encode("utf-8")


def vocab_bytes(tokenizer: Any, size: int | None = None) -> VocabBytes:
    """Every id's bytes, for ids `0 .. max(size, largest id + 1) - 1` (unknown ids: none)."""
    pieces: dict[str, int] = tokenizer.get_vocab()
    added = {i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    byte_of = byte_level_decoder() if is_byte_level(tokenizer) else None
    width = max(size or 0, max(pieces.values(), default=-1) + 1)
    table = [b""] * width
    for piece, i in pieces.items():
        table[i] = added[i].encode("utf-8") if i in added else _piece_bytes(piece, byte_of)
    lengths = np.array([len(b) for b in table], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return VocabBytes(np.frombuffer(b"".join(table), dtype=np.uint8), offsets)


def _unique_ids(vocab: VocabBytes) -> dict[bytes, int]:
    """bytes -> id for the non-empty byte strings exactly one id decodes to."""
    seen: dict[bytes, int] = {}
    clashes: set[bytes] = set()
    for i in range(vocab.lengths.size):
        key = vocab.token(i)
        if not key or key in clashes:
            continue
        if key in seen:
            clashes.add(key)
            del seen[key]
        else:
            seen[key] = i
    return seen


def vocab_map(teacher: VocabBytes, student: VocabBytes) -> np.ndarray:
    """`[V_teacher]` int64: the student id with the same bytes, -1 where none is one-to-one."""
    student_ids = _unique_ids(student)
    mapping = np.full(teacher.lengths.size, -1, dtype=np.int64)
    for key, i in _unique_ids(teacher).items():
        mapping[i] = student_ids.get(key, -1)
    return mapping


def student_spans(
    tokenizer: Any, texts: list[str], vocab: VocabBytes
) -> list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]]:
    """Each text as (student ids, their byte spans over `text.encode()`, or None).

    Spans come from the offsets, converted to bytes. Where those do not tile the text (a
    character split over several tokens, a tokenizer that leaves spaces out of its
    offsets), the ids' own bytes are used when they spell the text exactly; otherwise the
    row cannot be aligned (None) and trains on cross-entropy only.
    """
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, ids, offsets in zip(
        texts, encoded["input_ids"], encoded["offset_mapping"], strict=True
    ):
        ids = np.asarray(ids, dtype=np.int64)
        data = text.encode("utf-8")
        spans = char_offsets_to_bytes(text, np.asarray(offsets)) if ids.size else None
        if spans is not None and tiling_error(spans[:, 0], spans[:, 1], len(data)) is None:
            out.append((ids, (spans[:, 0], spans[:, 1])))
            continue
        spelled, lengths = vocab.decode(ids)
        out.append((ids, spans_from_lengths(lengths) if spelled == data else None))
    return out
