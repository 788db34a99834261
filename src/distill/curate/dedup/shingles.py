"""Hashed shingles of a whole batch of texts in vectorised numpy: no Python loop per token.

The sets are casefolded `\\w+` words' n-grams, or the character n-grams of the words joined
by one space; a text shorter than one n-gram is one shingle (the plain-Python sets, the
reference these are tested against, are `shingles` in tests/curate/dedup/minhash_reference.py).
Each shingle is reduced to a 32-bit hash:

1. Code points: the texts joined with NUL (never a word character, so it ends a text) are
   casefolded once and read as one numpy array, a byte per character for ASCII text, else
   UTF-32.
2. Words: `\\w` is `str.isalnum()` or "_" (the `re` docs), so an ASCII table marks word
   characters, and each distinct non-ASCII code point is asked once.
3. Hashes of any span in O(1): with a random 64-bit value c_k per character (or per word)
   and an odd base B, invertible mod 2^64, the polynomial sum_{s<=k<e} c_k B^(s-k) is
   (Q[e] - Q[s]) * B^s for the running sum Q[j] = sum_{k<j} c_k B^-k. numpy's uint64
   arithmetic wraps, which is exactly mod 2^64. Words are spans of characters; word n-grams
   are spans of word hashes; character n-grams are spans of the space-joined words.

This replaced a `str.split` plus a Python dict from token to id, which cost more than the
MinHash itself (docs/benchmarks.md). Texts are processed in batches of about `_BATCH`
characters, so the few uint64 arrays per character stay near 8 MiB each, in cache.
"""

from __future__ import annotations

from functools import cache
from itertools import pairwise
from typing import Literal

import numpy as np

_B = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_B_INV = pow(_B, -1, 1 << 64)
_SALT = np.uint64(0x632BE59BD9B4E019)
_SPACE = 32
_BATCH = 1 << 20  # characters per batch


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64 with good avalanche)."""
    h = h ^ (h >> np.uint64(30))
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


_ASCII_VALUE = mix64(np.arange(256, dtype=np.uint64) + _SALT)
_ASCII_WORD = np.array([chr(i).isalnum() or chr(i) == "_" for i in range(256)])
_ASCII_WORD[128:] = False  # only indexed by ASCII bytes


@cache
def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(B^j, B^-j) mod 2^64 for j < size; size is a power of two, so few are cached."""
    out = []
    for base in (_B, _B_INV):
        powers = np.ones(size, dtype=np.uint64)
        powers[1:2] = base
        done = 2
        while done < size:  # doubling: vectorised, unlike the sequential np.cumprod
            powers[done : 2 * done] = powers[:done] * powers[done - 1] * np.uint64(base)
            done *= 2
        out.append(powers)
    return out[0], out[1]


def span_hashes(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash of values[s:e] for every span (uint64), independent of where it is."""
    up, down = _powers(1 << len(values).bit_length())
    running = np.zeros(len(values) + 1, dtype=np.uint64)
    np.cumsum(values * down[: len(values)], out=running[1:])
    return (running[ends] - running[starts]) * up[starts]


def windows(lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sequence, start, end) of every n-gram of sequences laid end to end.

    A sequence shorter than n is one span, the whole of it; an empty one has none.
    """
    offsets = np.cumsum(lengths) - lengths
    count = np.where(lengths >= n, lengths - n + 1, lengths > 0)
    first = np.cumsum(count) - count
    which = np.repeat(np.arange(len(lengths)), count)
    starts = np.repeat(offsets - first, count) + np.arange(int(count.sum()))
    return which, starts, starts + np.minimum(lengths, n)[which]


def _code_points(texts: list[str]) -> np.ndarray:
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a text holding NUL: make it a space
        joined = "\x00".join(text.replace("\x00", " ") for text in texts)
    joined = joined.casefold()
    if joined.isascii():  # O(1) in CPython: a flag of the string
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)


def _word_values(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is a word character, random 64-bit value) per code point."""
    if points.dtype == np.uint8:
        return _ASCII_WORD[points], _ASCII_VALUE[points]
    word = np.zeros(len(points), dtype=bool)
    ascii_ = points < 128
    word[ascii_] = _ASCII_WORD[points[ascii_]]
    other = points[~ascii_]
    distinct = np.unique(other)
    flags = np.array([chr(c).isalnum() for c in distinct.tolist()], dtype=bool)
    word[~ascii_] = flags[np.searchsorted(distinct, other)]
    return word, mix64(points.astype(np.uint64) + _SALT)


def _batch_pairs(
    texts: list[str], kind: Literal["word", "char"], n: int
) -> tuple[np.ndarray, np.ndarray]:
    points = _code_points(texts)
    word, values = _word_values(points)
    edges = np.diff(word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    text_of_word = np.searchsorted(np.flatnonzero(points == 0), starts)
    words_per_text = np.bincount(text_of_word, minlength=len(texts))
    if kind == "word":
        units = span_hashes(values, starts, ends)
        lengths = words_per_text
    else:
        # The space-joined words: word characters, plus one space where a word is followed
        # by another word of the same text (at the first character after it).
        gaps = ends[:-1][text_of_word[1:] == text_of_word[:-1]]
        word[gaps] = True
        values[gaps] = _ASCII_VALUE[_SPACE]
        units = values[word]
        letters = np.bincount(text_of_word, weights=ends - starts, minlength=len(texts))
        lengths = letters.astype(np.int64) + np.maximum(words_per_text - 1, 0)
    text_of, span_starts, span_ends = windows(lengths, n)
    return text_of, mix64(span_hashes(units, span_starts, span_ends)) >> np.uint64(32)


def shingle_pairs(
    texts: list[str], kind: Literal["word", "char"] = "char", n: int = 5, distinct: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(text index, 32-bit shingle hash) for the shingles of every text, grouped by text.

    A shingle repeated in a text appears once per occurrence unless `distinct` (which costs
    a sort); MinHash minima are the same either way.
    """
    text_of, hashes = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    cuts = np.searchsorted(np.cumsum(lengths), np.arange(_BATCH, int(lengths.sum()), _BATCH))
    bounds = [0, *np.unique(np.minimum(cuts + 1, len(texts))).tolist(), len(texts)]
    for lo, hi in pairwise(bounds):
        if lo < hi:
            batch_text_of, batch_hashes = _batch_pairs(texts[lo:hi], kind, n)
            text_of.append(batch_text_of + lo)
            hashes.append(batch_hashes)
    text_of_all, hashes_all = np.concatenate(text_of), np.concatenate(hashes)
    if not distinct:
        return text_of_all, hashes_all
    keys = np.sort(text_of_all.astype(np.uint64) << np.uint64(32) | hashes_all)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return (keys >> np.uint64(32)).astype(np.int64), keys & np.uint64(0xFFFFFFFF)
