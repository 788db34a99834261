"""Near-duplicate removal with MinHash LSH (Broder 1997; as in Lee et al. 2022 and datatrove).

Each row's text (the last user message, the response, or both) is normalised — casefolded,
punctuation dropped, whitespace collapsed — and cut into shingles: word n-grams or character
n-grams. Rows whose estimated Jaccard similarity reaches `threshold` are near-duplicates.
The defaults (prompts, word 1-grams, J >= 0.45, 256 permutations) are set for copies with
5-15 % of their words edited, sentences reordered and case/whitespace noise: each edit
costs one or two of ~50 words and a bag of words ignores order, so such copies keep
J >= 0.5, while 5-grams of words or characters lose half of theirs (char 5-grams at
J >= 0.7 found 12-16 %). Shingles found in more than 2 % of the texts (and in more than
10) are dropped first: an instruction template, or a topic's boilerplate such as MMLU's
"For which of these two scenarios does the main character ...", otherwise makes unrelated
prompts look alike (with a 50 % cut, 754 of MMLU's 14,042 test prompts were flagged as
near-duplicates of other moral-scenario prompts; with 2 %, 3). On real SmolLM2 MMLU prompts
the defaults find every injected copy without a false positive
(tests/curate/test_injected_smollm2.py, docs/benchmarks.md). Prompts that share a long
passage (MMLU history questions about one source text) still look alike, as they should
to a text-level dedup.

Shingling, signatures, banding and candidate checks run for the whole batch in vectorised
numpy (`distill.curate.dedup.minhash`, faster than rensa's Rust on bench/near_dedup.py, see
docs/benchmarks.md); the keep policy and the pass over the similar pairs are those of every
pairwise dedup step (`distill.curate.dedup.pairwise`). A datasketch implementation of the
same step, the reference these are tested against, lives in the tests
(tests/curate/dedup/minhash_reference.py). The `engine` key is still accepted: "numpy" is the
engine, and "datasketch", which used to select that reference, now runs the numpy engine too
(with a warning); the two agree on the SmolLM2 fixture up to MinHash noise, since their hash
families differ.

Which member of a group survives, and why a chain is not collapsed:
`distill.curate.dedup.keep_policy`.

`field` defaults to "prompt": with "both" or "response", the several samples of one prompt
(often near-identical short answers) are compared with each other and dropped as
duplicates, which a duplicated *question* is what skews a distillation set.
"""

from __future__ import annotations

import warnings
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from distill.curate.base import RejectReason
from distill.curate.dedup.minhash import BatchMinHashLSH, banding, drop_common
from distill.curate.dedup.pairwise import (
    KeepPolicy,
    PairwiseDedup,
    SimilarPairs,
    common_limit,
)
from distill.curate.dedup.shingles import shingle_pairs
from distill.curate.text import TextField


class NearDedup(PairwiseDedup):
    """Drop rows whose text is a MinHash-LSH near-duplicate of a row kept before it."""

    name: Literal["near_dedup"] = "near_dedup"
    reason: ClassVar[RejectReason] = RejectReason.NEAR_DUPLICATE
    score_name: ClassVar[str] = "jaccard"

    field: TextField = Field(
        "prompt", description="compare the last user message, the response, or both joined"
    )
    shingle: Literal["word", "char"] = Field("word", description="word or character n-grams")
    ngram: PositiveInt = Field(1, description="shingle length, in words or characters")
    threshold: float = Field(0.45, gt=0, le=1, description="estimated Jaccard to call a duplicate")
    num_perm: int = Field(256, ge=16, le=1024, description="MinHash permutations")
    keep: KeepPolicy = Field("first", description="which member of a duplicate group survives")
    seed: NonNegativeInt = Field(1, description="MinHash seed")
    max_shingle_share: float | None = Field(
        0.02,
        gt=0,
        le=1,
        description="ignore shingles found in more than this share of the texts (and in more "
        "than min_common_texts): an instruction template or a topic's boilerplate; None keeps "
        "every shingle",
    )
    min_common_texts: PositiveInt = Field(
        10, description="a shingle in at most this many texts is never ignored as common"
    )
    bands: PositiveInt | None = Field(
        None, description="LSH bands; default: with `rows`, datasketch's optimum for threshold"
    )
    rows: PositiveInt | None = Field(
        None, description="MinHash values per band; bands x rows must fit in num_perm"
    )
    engine: Literal["numpy", "datasketch"] = Field(
        "numpy",
        description="vectorised numpy shingling, MinHash and LSH; 'datasketch' (the former "
        "reference engine, now in the tests) is accepted and runs the numpy engine",
    )

    @model_validator(mode="after")
    def _banding_fits(self) -> NearDedup:
        banding(self.threshold, self.num_perm, self.bands, self.rows)  # raises if not
        return self

    @model_validator(mode="after")
    def _engine_is_numpy(self) -> NearDedup:
        if self.engine == "datasketch":
            warnings.warn(
                "near_dedup: engine 'datasketch' now runs the numpy engine (the datasketch "
                "reference moved to the tests); decisions agree up to MinHash noise",
                UserWarning,
                stacklevel=2,
            )
        return self

    def common_limit(self, num_texts: int) -> float:
        assert self.max_shingle_share is not None
        return common_limit(self.max_shingle_share, num_texts, self.min_common_texts)

    def lsh(self) -> BatchMinHashLSH:
        return BatchMinHashLSH(self.num_perm, self.threshold, self.seed, self.bands, self.rows)

    def similar_pairs(self, texts: list[str]) -> SimilarPairs:
        """Pairs of `texts` whose estimated Jaccard reaches `threshold`: LSH candidates, checked."""
        signatures, usable = self.signatures(texts)
        pairs, jaccards = self.lsh().similar_pairs(signatures, usable)
        return SimilarPairs(pairs, jaccards, usable)

    def signatures(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(len(texts), num_perm) MinHash signatures, and which texts have any shingle."""
        common = self.max_shingle_share is not None and len(texts) >= 10
        # Counting texts per shingle needs each shingle once per text; MinHash does not.
        text_of, hashes = shingle_pairs(texts, self.shingle, self.ngram, distinct=common)
        if common:
            text_of, hashes = drop_common(text_of, hashes, self.common_limit(len(texts)))
        usable = np.zeros(len(texts), dtype=bool)
        usable[text_of] = True  # texts left with no shingle are left to the `empty` step
        return self.lsh().signatures(text_of, hashes, len(texts)), usable
