"""MinHash signatures with one numpy reduction per document (the `near_dedup` default engine).

Why hand-written rather than datasketch's `MinHash.update_batch`: datasketch hashes every
shingle with SHA-1 in a Python loop and builds a new `MinHash` per document, which
regenerates its permutation parameters from the seed each time; together those are most
of the step's time (bench/near_dedup.py). Here a shingle costs one `zlib.crc32` call (C,
deterministic across processes, unlike `hash()`), and the permutations of all shingles of
a document are one broadcast: (a * x + b) mod p for every permutation (a, b) and shingle
hash x, then a min over the shingles. With p = 2^32 - 5 and a, b, x < 2^32, a * x + b <
2^64, so the universal hash is computed exactly in uint64 — no overflow, no big ints.

The signatures are wrapped in datasketch `MinHash` objects (sharing one permutation
array) so datasketch's `MinHashLSH` still does the banding and `jaccard` still compares.
Values differ from datasketch's own (another base hash and permutation family) but the
Jaccard estimates agree within MinHash's sampling error (tests/curate/test_near_dedup.py).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np
from datasketch import MinHash

PRIME = np.uint64(4_294_967_291)  # the largest prime below 2^32


def shingle_hashes(items: Iterable[str]) -> np.ndarray:
    """Deterministic 32-bit hashes (CRC-32 of the UTF-8 bytes) as uint64."""
    return np.fromiter((zlib.crc32(item.encode()) for item in items), dtype=np.uint64)


class NumpyMinHasher:
    """`num_perm` seeded permutations x -> (a x + b) mod p; `signature` applies them all."""

    def __init__(self, num_perm: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm, self.seed = num_perm, seed
        self.a = rng.integers(1, int(PRIME), num_perm, dtype=np.uint64)
        self.b = rng.integers(0, int(PRIME), num_perm, dtype=np.uint64)
        # datasketch's own (unused) parameters: it validates them, and passing them in
        # spares every wrapped MinHash from regenerating them.
        self._datasketch_permutations = MinHash(num_perm=num_perm, seed=seed).permutations

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The min over shingles of every permutation: shape (num_perm,), uint64 < p."""
        permuted = (self.a[:, None] * hashes[None, :] + self.b[:, None]) % PRIME
        return permuted.min(axis=1)

    def sketch(self, hashes: np.ndarray) -> MinHash:
        """A datasketch MinHash holding this signature, for MinHashLSH and `jaccard`."""
        return MinHash(
            seed=self.seed,
            hashvalues=self.signature(hashes),
            permutations=self._datasketch_permutations,
            scheme="affine32",
        )
