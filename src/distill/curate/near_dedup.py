"""Near-duplicate removal with MinHash LSH (Broder 1997; as in Lee et al. 2022 and datatrove).

Each row's text (the last user message, the response, or both) is normalised — casefolded,
punctuation dropped, whitespace collapsed — and cut into shingles: word n-grams or character
n-grams. Rows whose estimated Jaccard similarity reaches `threshold` are near-duplicates.
Character shingles (the default) survive light edits far better than word 5-grams: one
changed word removes ~n+len(word) char shingles out of thousands, but five word shingles
out of a hundred. The defaults (char 5-grams, J >= 0.7) put precision first; for copies
with 5-15 % of words edited and sentences reordered, word 1-grams at J >= 0.5 found every
injected copy without a false positive on real MMLU prompts, where the 5-gram default
found 16 % (tests/curate/test_injected_smollm2.py, docs/benchmarks.md). Shingles shared
by most texts (`max_shingle_share`) are dropped first: an instruction template common to
every prompt otherwise makes unrelated prompts look alike.

The MinHash signatures come from `engine`: "numpy" (default; one broadcast per document,
`distill.curate.numpy_minhash`, ~2-4x faster, see docs/benchmarks.md) or "datasketch"
(its `MinHash.update_batch`). Banding and candidate lookup are datasketch's `MinHashLSH`.

Which member of a group survives is the `keep` policy:

- `first`: input order, so a re-run keeps the same rows;
- `most_confident`: the highest mean `sampled_logprob`;
- `correct`: a row that passes the multiple-choice check first (rows without a letter
  reference count as passing), then input order.

Rows are visited in that priority order and a row is dropped when it matches a row already
*kept*; comparing with kept rows only means a chain A~B~C with A≁C drops B but keeps C,
instead of collapsing the whole chain into one survivor. Every dropped row names the kept
record it duplicates and the estimated Jaccard.

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
from pydantic import Field, PositiveInt

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason
from distill.curate.dedup import last_user_message
from distill.curate.mcq import extract_choice, normalize_reference
from distill.curate.numpy_minhash import NumpyMinHasher, shingle_hashes
from distill.curate.signals import mean_sampled_logprob

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


def row_text(field: str, messages: list[dict[str, Any]] | None, response: str) -> str:
    if field == "prompt":
        return last_user_message(messages)
    if field == "response":
        return response
    return last_user_message(messages) + "\n" + response


def passes_mcq(response: str, reference: str | None) -> bool:
    """True when the extracted letter equals the reference, or there is no letter reference."""
    letter = normalize_reference(reference)
    if letter is None:
        return True
    extracted = extract_choice(response)
    return extracted is not None and extracted.letter == letter


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
        "both", description="compare the last user message, the response, or both joined"
    )
    shingle: Literal["word", "char"] = Field("char", description="word or character n-grams")
    ngram: PositiveInt = Field(5, description="shingle length, in words or characters")
    threshold: float = Field(0.7, gt=0, le=1, description="estimated Jaccard to call a duplicate")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")
    keep: Literal["first", "most_confident", "correct"] = Field(
        "first", description="which member of a duplicate group survives"
    )
    seed: int = Field(1, description="MinHash seed")
    max_shingle_share: float | None = Field(
        0.5,
        gt=0,
        le=1,
        description="ignore shingles found in more than this share of the texts (a shared "
        "instruction template); None keeps every shingle",
    )
    engine: Literal["numpy", "datasketch"] = Field(
        "numpy", description="MinHash signatures: vectorised numpy, or datasketch's update_batch"
    )

    def decide(self, table: pa.Table) -> Decisions:
        columns = {name: table.column(name).to_pylist() for name in self.columns}
        confidence = None
        if self.keep == "most_confident":
            # Read through Arrow: only the one float list column, never the top-k payload.
            confidence = mean_sampled_logprob(table.column("sampled_logprob"))
        return self.select_rows(columns, table.num_rows, confidence)

    def priority(self, columns: dict[str, list[Any]], confidence: np.ndarray | None) -> list[int]:
        order = range(len(columns["record_id"]))
        if self.keep == "most_confident":
            assert confidence is not None
            return sorted(order, key=lambda i: (-confidence[i], i))
        if self.keep == "correct":
            ok = [
                passes_mcq(r, ref)
                for r, ref in zip(columns["response_text"], columns["reference"], strict=True)
            ]
            return sorted(order, key=lambda i: (not ok[i], i))
        return list(order)

    def select_rows(
        self, columns: dict[str, list[Any]], num_rows: int, confidence: np.ndarray | None = None
    ) -> Decisions:
        texts = [
            row_text(self.field, messages, response)
            for messages, response in zip(
                columns["messages"], columns["response_text"], strict=True
            )
        ]
        sketch_of = self.sketches(texts)
        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        sketches: dict[int, MinHash] = {}
        decisions: Decisions = [None] * num_rows
        record_ids, prompt_ids = columns["record_id"], columns["prompt_id"]
        for index in self.priority(columns, confidence):
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
                decisions[index] = Drop(
                    RejectReason.NEAR_DUPLICATE,
                    {
                        "duplicate_of": record_ids[best],
                        "jaccard": round(best_jaccard, 4),
                        "field": self.field,
                    },
                )
                continue
            sketches[index] = sketch
            lsh.insert(index, sketch)
        return decisions

    def sketches(self, texts: list[str]) -> dict[str, MinHash | None]:
        """One MinHash per distinct text (the samples of a prompt share theirs)."""
        items = {text: shingles(text, self.shingle, self.ngram) for text in texts}
        if self.max_shingle_share is not None and len(items) >= 10:
            # Template shingles ("Answer the following multiple-choice question...") make
            # unrelated prompts look alike; a shingle most texts share identifies none.
            frequency = Counter(s for shingle_set in items.values() for s in shingle_set)
            limit = self.max_shingle_share * len(items)
            common = {s for s, n in frequency.items() if n > limit}
            if common:
                items = {text: found - common for text, found in items.items()}
        if self.engine == "datasketch":
            return {
                text: minhash(found, self.num_perm, self.seed) if found else None
                for text, found in items.items()
            }
        hasher = NumpyMinHasher(self.num_perm, self.seed)
        return {
            text: hasher.sketch(shingle_hashes(found)) if found else None
            for text, found in items.items()
        }

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        return self.select_rows(columns, num_rows)
