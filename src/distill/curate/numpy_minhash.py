"""Vectorised MinHash LSH over a whole batch of texts (the `near_dedup` default engine).

Every stage is a handful of numpy calls over all documents at once, not a Python loop per
document or per band; that is what made the previous engine (per-document broadcast, then
datasketch's `MinHashLSH`) ~7x slower than rensa (bench/near_dedup.py, docs/benchmarks.md).

1. Tokens: one regex pass over all casefolded texts joined with NUL (never a word
   character, so it separates documents); each distinct token is CRC-32-hashed once.
2. Shingles: word n-grams fold n token hashes, char n-grams fold n code points of the
   space-joined words (UTF-32), both with the same 64-bit polynomial and a final mix,
   windows never crossing a document boundary. A text shorter than one n-gram is one
   shingle, as in `near_dedup.shingles`. (document, shingle) pairs are made unique.
3. Signatures: multiply-add-shift hashing, h_i(x) = ((a_i x + b_i) mod 2^64) >> 32 with a
   random odd a_i, a universal family for 32-bit keys (Dietzfelbinger 1996) that needs no
   modulo; one (pairs x num_perm) block per chunk of documents and `minimum.reduceat`.
4. Banding: `bands` x `rows` columns of the signature matrix fold into one 64-bit key per
   (document, band); a sort per band puts equal keys side by side and every two documents
   in a run become a candidate pair. Candidates are kept when their estimated Jaccard (the
   share of equal signature values) reaches the threshold.

(bands, rows) minimise the equal-weight false positive + false negative areas of the
S-curve 1 - (1 - s^r)^b, as datasketch's `MinHashLSH` chooses them. The hash family
differs from datasketch's (SHA-1, then (a x + b) mod 2^61 - 1), so estimates differ by
MinHash sampling noise; decisions agree on the SmolLM2 fixture (tests/curate).
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from functools import cache
from itertools import count
from typing import Literal

import numpy as np

_TOKEN = re.compile(r"[\w\x00]+")  # NUL stands alone: texts are joined by " NUL "
_MASK64 = (1 << 64) - 1
_MUL = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd
_MIX = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's multiplier
_ASCII_NON_WORD = str.maketrans(
    {chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) in "_\x00")}
)
_CHUNK = 8192  # (document, shingle) pairs per signature block: 8192 x 128 x 8 B = 8 MiB


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place-ish: spreads the polynomial's bits, keeps 32."""
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return h >> np.uint64(32)


def _fold(units: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Hash of units[s : s + width] for every s in starts (uint64 < 2^32)."""
    h = np.full(len(starts), width, dtype=np.uint64)
    for k in range(width):
        h *= _MUL
        h += units[starts + k]
    return _mix(h)


def _tokens(texts: list[str]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(tokens with NUL between texts, distinct tokens, token ids, offsets).

    Text i's tokens are ids[offsets[i] : offsets[i + 1] - 1] (the last one is its NUL).
    """
    if any("\x00" in text for text in texts):
        texts = [text.replace("\x00", " ") for text in texts]
    joined = " \x00 ".join(texts).casefold()
    # ASCII text: \w is [A-Za-z0-9_], so blanking the rest and splitting gives the same
    # tokens as the regex, ~2x faster.
    found = (
        joined.translate(_ASCII_NON_WORD).split() if joined.isascii() else _TOKEN.findall(joined)
    )
    found.append("\x00")
    vocab: defaultdict[str, int] = defaultdict(count().__next__)
    vocab["\x00"]  # id 0: the separator
    ids = np.fromiter(map(vocab.__getitem__, found), dtype=np.int64, count=len(found))
    offsets = np.concatenate(([0], np.flatnonzero(ids == 0) + 1))
    return found, list(vocab), ids, offsets


def shingle_pairs(
    texts: list[str], kind: Literal["word", "char"] = "char", n: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """(text index, 32-bit shingle hash) of every distinct shingle, sorted by text.

    The same shingle sets as `near_dedup.shingles`, hashed: casefolded `\\w+` words, their
    n-grams, or the character n-grams of the words joined by one space; a text shorter
    than one n-gram is a single shingle; a text without words has none.
    """
    found, vocab, ids, offsets = _tokens(texts)
    starts, ends = offsets[:-1], offsets[1:] - 1
    if kind == "word":
        token_hashes = np.fromiter((zlib.crc32(t.encode()) for t in vocab), np.uint64, len(vocab))
        units = token_hashes[ids]
    else:
        joined = "\x00".join(
            " ".join(found[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        )
        units = np.frombuffer(joined.encode("utf-32-le"), np.uint32).astype(np.uint64)
        cut = np.flatnonzero(units == 0)
        starts = np.concatenate(([0], cut + 1))
        ends = np.concatenate((cut, [len(units)]))
    lengths = ends - starts
    text_of, hashes = [], []
    docs = np.flatnonzero(lengths > n)  # slide an n-gram window
    if len(docs):
        windows = lengths[docs] - n + 1
        first = np.cumsum(windows) - windows
        local = np.arange(int(windows.sum())) - np.repeat(first, windows)
        text_of.append(np.repeat(docs, windows))
        hashes.append(_fold(units, np.repeat(starts[docs], windows) + local, n))
    short = np.flatnonzero((lengths > 0) & (lengths <= n))
    for width in np.unique(lengths[short]).tolist():  # one shingle: the whole text
        same = short[lengths[short] == width]
        text_of.append(same)
        hashes.append(_fold(units, starts[same], width))
    if not text_of:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    keys = np.concatenate(text_of).astype(np.uint64) << np.uint64(32)
    keys = _unique(keys | np.concatenate(hashes))
    return (keys >> np.uint64(32)).astype(np.int64), keys & np.uint64(0xFFFFFFFF)


def drop_common(
    text_of: np.ndarray, hashes: np.ndarray, share: float, num_texts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove shingles found in more than `share` of the texts (a shared template)."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, len(ordered)))
    common = np.zeros(len(hashes), dtype=bool)
    common[order] = np.repeat(counts > share * num_texts, counts)
    return text_of[~common], hashes[~common]


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is ~10x slower on uint64 here)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


class BatchMinHashLSH:
    """Seeded signatures and LSH banding for a batch; `num_perm`, `threshold` as datasketch."""

    def __init__(self, num_perm: int, threshold: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm, self.threshold = num_perm, threshold
        self.a = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
        self.bands, self.rows = lsh_params(threshold, num_perm)

    def signatures(self, text_of: np.ndarray, hashes: np.ndarray, num_texts: int) -> np.ndarray:
        """(num_texts, num_perm) uint32 minima; all-ones rows for texts without shingles."""
        out = np.full((num_texts, self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        if not len(hashes):
            return out
        first = np.flatnonzero(np.concatenate(([True], text_of[1:] != text_of[:-1])))
        docs = text_of[first]  # text_of is sorted
        bounds = np.append(first, len(hashes))
        lo = 0
        while lo < len(docs):
            # Whole documents per block, about _CHUNK pairs (at least one document).
            hi = int(np.searchsorted(bounds, bounds[lo] + _CHUNK, side="right")) - 1
            hi = min(max(hi, lo + 1), len(docs))
            # (num_perm, pairs): reduceat along contiguous rows is ~5x faster than axis 0.
            block = np.multiply.outer(self.a, hashes[bounds[lo] : bounds[hi]])
            block += self.b[:, None]
            block >>= np.uint64(32)
            out[docs[lo:hi]] = np.minimum.reduceat(block, bounds[lo:hi] - bounds[lo], axis=1).T
            lo = hi
        return out

    def candidate_pairs(self, signatures: np.ndarray, usable: np.ndarray) -> np.ndarray:
        """(k, 2) pairs i < j of usable rows sharing at least one band, each once."""
        rows_of = np.flatnonzero(usable)
        sig = signatures[rows_of, : self.bands * self.rows].astype(np.uint64)
        sig = sig.reshape(len(rows_of), self.bands, self.rows)
        keys = np.zeros((len(rows_of), self.bands), dtype=np.uint64)
        for r in range(self.rows):
            keys *= _MUL
            keys += sig[:, :, r]
        found = []
        for band in range(self.bands):
            order = np.argsort(keys[:, band], kind="stable")
            ordered = keys[order, band]
            step = 1
            while step < len(order):  # runs of equal keys: pairs step apart, then wider
                same = np.flatnonzero(ordered[step:] == ordered[:-step])
                if not len(same):
                    break
                found.append(np.stack((order[same], order[same + step]), axis=1))
                step += 1
        if not found:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = rows_of[np.concatenate(found)]
        pairs.sort(axis=1)
        codes = _unique(pairs[:, 0] * len(signatures) + pairs[:, 1])
        return np.stack((codes // len(signatures), codes % len(signatures)), axis=1)

    def similar_pairs(
        self, signatures: np.ndarray, usable: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(pairs, estimated Jaccard) of candidates at or above the threshold."""
        pairs = self.candidate_pairs(signatures, usable)
        jaccard = np.empty(len(pairs))
        for lo in range(0, len(pairs), _CHUNK):
            i, j = pairs[lo : lo + _CHUNK, 0], pairs[lo : lo + _CHUNK, 1]
            jaccard[lo : lo + _CHUNK] = (signatures[i] == signatures[j]).mean(axis=1)
        keep = jaccard >= self.threshold
        return pairs[keep], jaccard[keep]


@cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false-positive + false-negative area, as datasketch does."""
    best, best_error = (1, 1), float("inf")
    low, high = np.linspace(0.0, threshold, 201), np.linspace(threshold, 1.0, 201)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - low**rows) ** bands, low)
            fn = np.trapezoid((1 - high**rows) ** bands, high)
            if 0.5 * fp + 0.5 * fn < best_error:
                best, best_error = (bands, rows), 0.5 * fp + 0.5 * fn
    return best
