"""The reference `near_dedup`: datasketch's `MinHash` and `MinHashLSH`, row by row.

This was the step's second engine (`engine="datasketch"`); it now serves only to check the
vectorised numpy engine (`distill.curate.dedup.minhash`, `shingles`) and to time it in
bench/near_dedup.py. Shingle sets are built in plain Python (`shingles`), one datasketch
`MinHash.update_batch` per distinct text, and the rows are visited in the step's keep-policy
order: a row is dropped when its best LSH candidate among the rows already kept reaches
the threshold, else it is kept and indexed. Same banding and policy as the step; the hash
family differs, so a pair within MinHash noise of the threshold can go either way.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

import pyarrow as pa
from datasketch import MinHash, MinHashLSH

from distill.curate.base import Decisions, Drop, RejectReason
from distill.curate.dedup import NearDedup
from distill.curate.dedup.keep_policy import priority_order
from distill.curate.dedup.minhash import banding
from distill.curate.signals import mean_sampled_logprob
from distill.curate.text import row_text

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


def sketches(step: NearDedup, texts: list[str]) -> dict[str, MinHash | None]:
    """One datasketch MinHash per distinct text (the samples of a prompt share theirs)."""
    items = {text: shingles(text, step.shingle, step.ngram) for text in texts}
    if step.max_shingle_share is not None and len(items) >= 10:
        # Template shingles ("Answer the following multiple-choice question...") make
        # unrelated prompts look alike; a shingle most texts share identifies none.
        frequency = Counter(s for shingle_set in items.values() for s in shingle_set)
        limit = step.common_limit(len(items))
        common = {s for s, n in frequency.items() if n > limit}
        if common:
            items = {text: found - common for text, found in items.items()}
    return {
        text: minhash(found, step.num_perm, step.seed) if found else None
        for text, found in items.items()
    }


def reference_decide(step: NearDedup, table: pa.Table) -> Decisions:
    """`step.decide(table)` as the datasketch engine made it."""
    columns = {name: table.column(name).to_pylist() for name in step.columns}
    confidence = None
    if step.keep == "most_confident":
        confidence = mean_sampled_logprob(table.column("sampled_logprob"))
    return reference_decide_columns(step, columns, confidence)


def reference_decide_columns(
    step: NearDedup, columns: dict[str, list[Any]], confidence: Any = None
) -> Decisions:
    texts = [
        row_text(step.field, messages, response)
        for messages, response in zip(columns["messages"], columns["response_text"], strict=True)
    ]
    order = priority_order(step.keep, columns, confidence)
    sketch_of = sketches(step, texts)
    params = banding(step.threshold, step.num_perm, step.bands, step.rows)
    lsh = MinHashLSH(threshold=step.threshold, num_perm=step.num_perm, params=params)
    kept: dict[int, MinHash] = {}
    decisions: Decisions = [None] * len(texts)
    record_ids, prompt_ids = columns["record_id"], columns["prompt_id"]
    for index in order:
        sketch = sketch_of[texts[index]]
        if sketch is None:
            continue  # nothing to compare: leave empty rows to the `empty` step
        best, best_jaccard = None, -1.0
        for other in lsh.query(sketch):
            if step.field == "prompt" and prompt_ids[other] == prompt_ids[index]:
                continue
            jaccard = sketch.jaccard(kept[other])
            if jaccard > best_jaccard:
                best, best_jaccard = other, jaccard
        if best is not None and best_jaccard >= step.threshold:
            details = {
                "duplicate_of": record_ids[best],
                "jaccard": round(best_jaccard, 4),
                "field": step.field,
            }
            decisions[index] = Drop(RejectReason.NEAR_DUPLICATE, details)
            continue
        kept[index] = sketch
        lsh.insert(index, sketch)
    return decisions


class ReferenceNearDedup(NearDedup):
    """A `near_dedup` step that decides with the datasketch reference."""

    def decide(self, table: pa.Table) -> Decisions:
        return reference_decide(self, table)


def reference_step(step: NearDedup) -> ReferenceNearDedup:
    """`step`'s settings, decided by the reference."""
    return ReferenceNearDedup(**step.model_dump())
