"""Vectorised MinHash LSH over a whole batch of texts (the `near_dedup` engine).

Every stage is a handful of numpy calls over all documents at once, not a Python loop per
document or per band; that is what made the previous engine (per-document broadcast, then
datasketch's `MinHashLSH`) ~7x slower than rensa (bench/near_dedup.py, docs/benchmarks.md).

1. Shingles: `distill.curate.dedup.shingles.shingle_pairs`, (text, 32-bit hash) pairs grouped by
   text, hashed from the code points in numpy.
2. Signatures: multiply-add-shift hashing, h_i(x) = ((a_i x + b_i) mod 2^64) >> 32 with a
   random odd a_i, a universal family for 32-bit keys (Dietzfelbinger 1996) that needs no
   modulo; one (num_perm x pairs) block per chunk of documents and `minimum.reduceat`.
3. Banding: `bands` x `rows` columns of the signature matrix fold into one 64-bit key per
   (document, band); a sort per band puts equal keys side by side and every two documents
   in a run become a candidate pair. Candidates are kept when their estimated Jaccard (the
   share of equal signature values) reaches the threshold.

By default (bands, rows) minimise the weighted false positive + false negative areas of the
S-curve 1 - (1 - s^r)^b, as datasketch's `MinHashLSH` chooses them, weighing a missed
candidate 9x (see `banding`); either can be set.
The hash family differs from datasketch's (SHA-1, then (a x + b) mod 2^61 - 1), so
estimates differ by MinHash sampling noise; decisions agree with the datasketch reference
(tests/curate/dedup/minhash_reference.py) on the SmolLM2 fixture.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from distill.curate.dedup.shingles import mix64

RECALL_WEIGHTS = (0.1, 0.9)  # (false positive, false negative) weights of the default banding
_MUL = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd
_CHUNK = 8192  # (document, shingle) pairs per signature block: 8192 x 128 x 8 B = 8 MiB


def drop_common(
    text_of: np.ndarray, hashes: np.ndarray, max_texts: float
) -> tuple[np.ndarray, np.ndarray]:
    """Remove shingles found in more than `max_texts` texts (a shared template).

    Pairs must be distinct (`shingle_pairs(..., distinct=True)`): a count is of texts.
    """
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, len(ordered)))
    common = np.zeros(len(hashes), dtype=bool)
    common[order] = np.repeat(counts > max_texts, counts)
    return text_of[~common], hashes[~common]


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is ~10x slower on uint64 here)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


class BatchMinHashLSH:
    """Seeded signatures and LSH banding for a batch; `num_perm`, `threshold` as datasketch.

    `bands` x `rows` must fit in `num_perm`; one left out is the most that fits, both left
    out are `lsh_params(threshold, num_perm)`.
    """

    def __init__(
        self,
        num_perm: int,
        threshold: float,
        seed: int,
        bands: int | None = None,
        rows: int | None = None,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm, self.threshold = num_perm, threshold
        self.a = rng.integers(0, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
        self.bands, self.rows = banding(threshold, num_perm, bands, rows)

    def signatures(self, text_of: np.ndarray, hashes: np.ndarray, num_texts: int) -> np.ndarray:
        """(num_texts, num_perm) uint32 minima; all-ones rows for texts without shingles."""
        out = np.full((num_texts, self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        if not len(hashes):
            return out
        first = np.flatnonzero(np.concatenate(([True], text_of[1:] != text_of[:-1])))
        docs = text_of[first]  # text_of is grouped by text
        bounds = np.append(first, len(hashes))
        buffer = np.empty((self.num_perm, _CHUNK), dtype=np.uint64)
        a, b = self.a[:, None], self.b[:, None]
        lo = 0
        while lo < len(docs):
            # Whole documents per block, about _CHUNK pairs (at least one document).
            hi = int(np.searchsorted(bounds, bounds[lo] + _CHUNK, side="right")) - 1
            hi = min(max(hi, lo + 1), len(docs))
            width = int(bounds[hi] - bounds[lo])
            if width > buffer.shape[1]:
                buffer = np.empty((self.num_perm, width), dtype=np.uint64)
            # (num_perm, pairs): reduceat along contiguous rows is ~5x faster than axis 0.
            block = np.multiply(a, hashes[bounds[lo] : bounds[hi]], out=buffer[:, :width])
            block += b
            # x >> 32 is monotone, so the shift waits for the (few) minima.
            minima = np.minimum.reduceat(block, bounds[lo:hi] - bounds[lo], axis=1)
            out[docs[lo:hi]] = (minima >> np.uint64(32)).T
            lo = hi
        return out

    def candidate_pairs(self, signatures: np.ndarray, usable: np.ndarray) -> np.ndarray:
        """(k, 2) pairs i < j of usable rows sharing at least one band, each once."""
        rows_of = np.flatnonzero(usable)
        n = len(rows_of)
        if n < 2:
            return np.zeros((0, 2), dtype=np.int64)
        sig = signatures if n == len(signatures) else signatures[rows_of]
        # One sort per band of key bits with the row index in the low bits: equal keys end
        # up side by side with their rows, no argsort needed. Keys equal only in their high
        # bits are rare and become candidates that the Jaccard check rejects.
        index_bits = np.uint64((n - 1).bit_length())
        packed = self.bucket_keys(sig, index_bits) << index_bits | np.arange(n, dtype=np.uint64)
        packed.sort(axis=1)
        packed = packed.ravel()
        index = (packed & np.uint64((1 << int(index_bits)) - 1)).astype(np.int64)
        same = (packed[1:] >> index_bits) == (packed[:-1] >> index_bits)
        same[n - 1 :: n] = False  # the last row of a band and the first of the next
        found = []
        at, step = np.flatnonzero(same), 1
        while len(at):  # pairs in runs of equal keys: step apart, then one wider
            found.append(np.stack((index[at], index[at + step]), axis=1))
            at = at[at + step < len(same)]
            at = at[same[at + step]]
            step += 1
        if not found:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = rows_of[np.concatenate(found)]
        pairs.sort(axis=1)
        codes = _unique(pairs[:, 0] * len(signatures) + pairs[:, 1])
        return np.stack((codes // len(signatures), codes % len(signatures)), axis=1)

    def bucket_keys(self, signatures: np.ndarray, index_bits: np.uint64) -> np.ndarray:
        """(bands, n) bucket of each signature per band: rows sharing one in some band are
        candidates. `index_bits`: the low bits left for a row index, (n - 1).bit_length()
        of the n usable rows compared (a Ray shuffle groups by these same keys)."""
        keys = np.zeros((len(signatures), self.bands), dtype=np.uint64)
        for r in range(self.rows):  # band b folds columns b * rows ... b * rows + rows - 1
            keys *= _MUL
            keys += signatures[:, r : self.bands * self.rows : self.rows]
        # The fold is linear; mixing spreads it over the high bits kept here.
        return mix64(keys.T) >> index_bits

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


def banding(
    threshold: float, num_perm: int, bands: int | None, rows: int | None
) -> tuple[int, int]:
    """(bands, rows): as given, the other one filled in, or the optimum for recall.

    Every LSH candidate is checked on the whole signature, so a false candidate costs one
    comparison while a missed one is a missed duplicate: the default weighs false negatives
    9:1 (datasketch's `weights` argument), e.g. 32 x 4 instead of 25 x 5 for J >= 0.5.
    """
    if bands is None and rows is None:
        return lsh_params(threshold, num_perm, *RECALL_WEIGHTS)
    bands = bands or num_perm // rows  # type: ignore[operator]
    rows = rows or num_perm // bands
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(f"bands x rows = {bands} x {rows} must be in 1..num_perm ({num_perm})")
    return bands, rows


@cache
def lsh_params(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive + false-negative areas (datasketch)."""
    best, best_error = (1, 1), float("inf")
    low, high = np.linspace(0.0, threshold, 201), np.linspace(threshold, 1.0, 201)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - low**rows) ** bands, low)
            fn = np.trapezoid((1 - high**rows) ** bands, high)
            if fp_weight * fp + fn_weight * fn < best_error:
                best, best_error = (bands, rows), fp_weight * fp + fn_weight * fn
    return best
