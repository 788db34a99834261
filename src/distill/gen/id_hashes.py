"""Compact sets and maps of text keys (record ids, prompt ids, prompt texts) for gen and score.

A key is the 128-bit blake2b hash of its text, held in sorted numpy arrays: 16 bytes a key
(24 with a value) and no Python object per key, so resume state and duplicate checks over
millions of prompts stay small.

Why 128 bits and not 64: a false match is silent (resume would skip a prompt that was never
made, or a distinct prompt would be called a duplicate). With 64-bit hashes, n stored ids
and m looked-up ids meet by chance with probability about n * m / 2**64, about 5% for a
billion of each; at 128 bits it is about 3e-21. The price is 8 more bytes a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

Key = tuple[int, int]  # (high, low) 64-bit halves of the hash
PENDING_MAX = 1 << 16  # new keys a `KeyMap` holds as Python objects before sorting them in


def key_of(text: str) -> Key:
    # surrogatepass: prompt text read with surrogateescape may hold lone surrogates.
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def keys_of(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """The keys of `texts` as two uint64 arrays (high halves, low halves)."""
    digests = b"".join(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        for text in texts
    )
    pairs = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _sorted(hi: np.ndarray, lo: np.ndarray, *more: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.lexsort((lo, hi))
    return (hi[order], lo[order], *(array[order] for array in more))


def _find(hi: np.ndarray, lo: np.ndarray, key: Key) -> int:
    """The index of `key` in arrays sorted by (hi, lo), or -1."""
    i = int(np.searchsorted(hi, np.uint64(key[0])))
    while i < len(hi) and int(hi[i]) == key[0]:  # a run of equal high halves is ~never > 1
        if int(lo[i]) == key[1]:
            return i
        i += 1
    return -1


class KeySet:
    """A fixed set of keys, sorted, with an O(log n) membership test."""

    def __init__(self, hi: np.ndarray | None = None, lo: np.ndarray | None = None) -> None:
        empty = np.zeros(0, dtype=np.uint64)
        self.hi, self.lo = _sorted(
            np.asarray(hi if hi is not None else empty, dtype=np.uint64),
            np.asarray(lo if lo is not None else empty, dtype=np.uint64),
        )

    @classmethod
    def of_texts(cls, texts: Iterable[str]) -> KeySet:
        return cls(*keys_of(texts))

    @classmethod
    def concat(cls, parts: list[tuple[np.ndarray, np.ndarray]]) -> KeySet:
        if not parts:
            return cls()
        return cls(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def __len__(self) -> int:
        return len(self.hi)

    def __contains__(self, text: str) -> bool:
        return _find(self.hi, self.lo, key_of(text)) >= 0

    def duplicates(self) -> int:
        """How many keys repeat an earlier one (0: all distinct)."""
        same = (self.hi[1:] == self.hi[:-1]) & (self.lo[1:] == self.lo[:-1])
        return int(same.sum())


class KeyMap:
    """A growing map from text keys to uint64 values (a count, a line number).

    New keys wait in a small dict (at most `PENDING_MAX`) and are then sorted into runs of
    numpy arrays; two runs of similar size are merged, so there are O(log n) runs and each
    key is re-sorted O(log n) times. Memory: 24 bytes a key plus the bounded dict.
    """

    def __init__(self, pending_max: int | None = None) -> None:
        self.pending: dict[Key, int] = {}
        self.pending_max = pending_max or PENDING_MAX
        self.runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.pending) + sum(len(run[0]) for run in self.runs)

    def get(self, text: str) -> int | None:
        key = key_of(text)
        if key in self.pending:
            return self.pending[key]
        for hi, lo, values in self.runs:
            i = _find(hi, lo, key)
            if i >= 0:
                return int(values[i])
        return None

    def increment(self, text: str) -> int:
        """Add 1 to the key's value (0 if absent) and return it: one lookup, not two."""
        key = key_of(text)
        if key in self.pending:
            self.pending[key] += 1
            return self.pending[key]
        for hi, lo, values in self.runs:
            i = _find(hi, lo, key)
            if i >= 0:
                values[i] += 1
                return int(values[i])
        self._add(key, 1)
        return 1

    def put(self, text: str, value: int) -> None:
        key = key_of(text)
        for hi, lo, values in self.runs:
            i = _find(hi, lo, key)
            if i >= 0:
                values[i] = value
                return
        self._add(key, value)

    def _add(self, key: Key, value: int) -> None:
        self.pending[key] = value
        if len(self.pending) >= self.pending_max:
            self._spill()

    def _spill(self) -> None:
        pairs = np.array(list(self.pending), dtype=np.uint64).reshape(-1, 2)
        values = np.fromiter(self.pending.values(), dtype=np.uint64, count=len(self.pending))
        self.runs.append(_sorted(pairs[:, 0].copy(), pairs[:, 1].copy(), values))  # type: ignore[arg-type]
        self.pending = {}
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            newer, older = self.runs.pop(), self.runs.pop()
            merged = (np.concatenate([o, n]) for o, n in zip(older, newer, strict=True))
            self.runs.append(_sorted(*merged))  # type: ignore[arg-type]
