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

`engine` picks the implementation. "numpy" (default) does shingling, signatures, banding
and candidate checks for the whole batch in vectorised numpy (`distill.curate.numpy_minhash`,
faster than rensa's Rust on bench/near_dedup.py, see docs/benchmarks.md), then one pass in
priority order over the similar pairs. "datasketch" is the reference: `MinHash.update_batch`
per text and datasketch's `MinHashLSH`, queried and filled row by row. Both use the same
banding parameters and policy; their hash families differ, so a pair within MinHash noise
of the threshold can go either way.

Which member of a group survives, and why a chain is not collapsed: `distill.curate.survivors`.

`field` defaults to "prompt": with "both" or "response", the several samples of one prompt
(often near-identical short answers) are compared with each other and dropped as
duplicates, which a duplicated *question* is what skews a distillation set.

With `field="prompt"`, the samples of one prompt (same `prompt_id`) share their prompt by
construction and are never compared with each other; a near-duplicate *question* loses all
of its samples, each naming a sample of the surviving question.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from datasketch import MinHash, MinHashLSH
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason
from distill.curate.numpy_minhash import BatchMinHashLSH, banding, drop_common
from distill.curate.shingles import shingle_pairs
from distill.curate.signals import mean_sampled_logprob
from distill.curate.survivors import keep_pass, priority_order, row_text

_WORD = re.compile(r"\w+")


def shingles(text: str, kind: Literal["word", "char"] = "char", n: int = 5) -> set[str]:
    """The set of word or character n-grams of the normalised text; {} for text without words.

    Text shorter than one n-gram is a single shingle, so short texts can still match.
    """
    words = _WORD.findall(text.casefold())
    if not words:
        return set()
    if kind == "word":
        if len(words) <= n:
            return {" ".join(words)}
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    joined = " ".join(words)
    if len(joined) <= n:
        return {joined}
    return {joined[i : i + n] for i in range(len(joined) - n + 1)}


def minhash(items: set[str], num_perm: int, seed: int) -> MinHash:
    sketch = MinHash(num_perm=num_perm, seed=seed)
    sketch.update_batch([item.encode() for item in items])
    return sketch


def common_limit(max_share: float, num_texts: int, min_texts: int) -> float:
    """A shingle (or a line, in `semantic_dedup`) in more texts than this is template, not
    content: more than `max_share` of them, and more than `min_texts` (few texts of a small
    batch share a line by chance)."""
    return max(max_share * num_texts, min_texts)


class NearDedup(DatasetStep):
    """Drop rows whose text is a MinHash-LSH near-duplicate of a row kept before it."""

    name: Literal["near_dedup"] = "near_dedup"
    columns: ClassVar[tuple[str, ...]] = (
        "record_id",
        "prompt_id",
        "messages",
        "response_text",
        "reference",
    )

    field: Literal["prompt", "response", "both"] = Field(
        "prompt", description="compare the last user message, the response, or both joined"
    )
    shingle: Literal["word", "char"] = Field("word", description="word or character n-grams")
    ngram: PositiveInt = Field(1, description="shingle length, in words or characters")
    threshold: float = Field(0.45, gt=0, le=1, description="estimated Jaccard to call a duplicate")
    num_perm: int = Field(256, ge=16, le=1024, description="MinHash permutations")
    keep: Literal["first", "most_confident", "correct"] = Field(
        "first", description="which member of a duplicate group survives"
    )
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
        description="vectorised numpy shingling, MinHash and LSH; or datasketch (the reference)",
    )

    @model_validator(mode="after")
    def _banding_fits(self) -> NearDedup:
        banding(self.threshold, self.num_perm, self.bands, self.rows)  # raises if not
        return self

    def common_limit(self, num_texts: int) -> float:
        assert self.max_shingle_share is not None
        return common_limit(self.max_shingle_share, num_texts, self.min_common_texts)

    def lsh(self) -> BatchMinHashLSH:
        return BatchMinHashLSH(self.num_perm, self.threshold, self.seed, self.bands, self.rows)

    def decide(self, table: pa.Table) -> Decisions:
        columns = {name: table.column(name).to_pylist() for name in self.columns}
        confidence = None
        if self.keep == "most_confident":
            # Read through Arrow: only the one float list column, never the top-k payload.
            confidence = mean_sampled_logprob(table.column("sampled_logprob"))
        return self.select_rows(columns, table.num_rows, confidence)

    def priority(self, columns: dict[str, list[Any]], confidence: np.ndarray | None) -> list[int]:
        return priority_order(self.keep, columns, confidence)

    def select_rows(
        self, columns: dict[str, list[Any]], num_rows: int, confidence: np.ndarray | None = None
    ) -> Decisions:
        if self.field == "response":
            texts = list(columns["response_text"])
        else:
            texts = [
                row_text(self.field, messages, response)
                for messages, response in zip(
                    columns["messages"], columns["response_text"], strict=True
                )
            ]
        order = self.priority(columns, confidence)
        if self.engine == "datasketch":
            return self._select_datasketch(texts, order, columns, num_rows)
        return self._select_numpy(texts, order, columns, num_rows)

    def _drop(self, record_id: Any, jaccard: float) -> Drop:
        details = {"duplicate_of": record_id, "jaccard": round(jaccard, 4), "field": self.field}
        return Drop(RejectReason.NEAR_DUPLICATE, details)

    def _select_numpy(
        self, texts: list[str], order: list[int], columns: dict[str, list[Any]], num_rows: int
    ) -> Decisions:
        distinct: dict[str, int] = {}
        text_index = [distinct.setdefault(text, len(distinct)) for text in texts]
        signatures, usable = self.signatures(list(distinct))
        pairs, jaccards = self.lsh().similar_pairs(signatures, usable)
        found = keep_pass(order, text_index, usable, pairs, jaccards, self._exclude(columns))
        return [
            None if hit is None else self._drop(columns["record_id"][hit[0]], hit[1])
            for hit in found
        ]

    def _exclude(self, columns: dict[str, list[Any]]) -> list[Any] | None:
        return columns["prompt_id"] if self.field == "prompt" else None

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

    def _select_datasketch(
        self, texts: list[str], order: list[int], columns: dict[str, list[Any]], num_rows: int
    ) -> Decisions:
        sketch_of = self.sketches(texts)
        params = banding(self.threshold, self.num_perm, self.bands, self.rows)
        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm, params=params)
        sketches: dict[int, MinHash] = {}
        decisions: Decisions = [None] * num_rows
        record_ids, prompt_ids = columns["record_id"], columns["prompt_id"]
        for index in order:
            sketch = sketch_of[texts[index]]
            if sketch is None:
                continue  # nothing to compare: leave empty rows to the `empty` step
            best, best_jaccard = None, -1.0
            for other in lsh.query(sketch):
                if self.field == "prompt" and prompt_ids[other] == prompt_ids[index]:
                    continue
                jaccard = sketch.jaccard(sketches[other])
                if jaccard > best_jaccard:
                    best, best_jaccard = other, jaccard
            if best is not None and best_jaccard >= self.threshold:
                decisions[index] = self._drop(record_ids[best], best_jaccard)
                continue
            sketches[index] = sketch
            lsh.insert(index, sketch)
        return decisions

    def sketches(self, texts: list[str]) -> dict[str, MinHash | None]:
        """One datasketch MinHash per distinct text (the samples of a prompt share theirs)."""
        items = {text: shingles(text, self.shingle, self.ngram) for text in texts}
        if self.max_shingle_share is not None and len(items) >= 10:
            # Template shingles ("Answer the following multiple-choice question...") make
            # unrelated prompts look alike; a shingle most texts share identifies none.
            frequency = Counter(s for shingle_set in items.values() for s in shingle_set)
            limit = self.common_limit(len(items))
            common = {s for s, n in frequency.items() if n > limit}
            if common:
                items = {text: found - common for text, found in items.items()}
        return {
            text: minhash(found, self.num_perm, self.seed) if found else None
            for text, found in items.items()
        }

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        return self.select_rows(columns, num_rows)
