"""The shape both similarity dedup steps share: find similar pairs of texts, then keep one
row per group by the keep policy.

A pairwise dedup step (`near_dedup`: MinHash LSH, estimated Jaccard; `semantic_dedup`:
sentence embeddings, cosine) writes only `similar_pairs(texts)`: which of the distinct texts
are similar, and how similar. This base does the rest, the same way for both:

1. the text of each row (`field`: the last user message, the response, or both), and each
   distinct text once (the samples of a prompt share theirs);
2. the rows in the order the `keep` policy visits them (`distill.curate.dedup.keep_policy`);
3. one pass in that order: a row is dropped when it is similar to a row already kept, and
   its Drop names that kept record, the similarity and the field compared.

With `field="prompt"`, the samples of one prompt (same `prompt_id`) share their prompt by
construction and are never compared with each other; a duplicated *question* loses all of
its samples, each naming a sample of the surviving question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import numpy as np
import pyarrow as pa

from distill.curate.base import Decisions, Drop, RejectReason, Step
from distill.curate.dedup.keep_policy import keep_pass, priority_order, rows_passing_mcq
from distill.curate.signals import mean_sampled_logprob
from distill.curate.text import row_text

KeepPolicy = Literal["first", "most_confident", "correct"]


class SimilarPairs(NamedTuple):
    """What a pairwise step found among the distinct texts it was given."""

    pairs: np.ndarray  # (n, 2) indices i < j of similar texts
    scores: np.ndarray  # (n,) their similarity (estimated Jaccard, cosine)
    usable: np.ndarray  # per text: False for a text with nothing to compare (kept untouched)
    # Per text, extra keys for the Drop of a row with that text; None: no extra keys.
    details: list[dict[str, Any]] | None = None


def common_limit(max_share: float, num_texts: int, min_texts: int) -> float:
    """A shingle (or a line, in `semantic_dedup`) in more texts than this is template, not
    content: more than `max_share` of them, and more than `min_texts` (few texts of a small
    batch share a line by chance)."""
    return max(max_share * num_texts, min_texts)


class PairwiseDedup(Step):
    """Drop rows whose text is similar to the text of a row kept before them."""

    columns: ClassVar[tuple[str, ...]] = (
        "record_id",
        "prompt_id",
        "messages",
        "response_text",
        "reference",
    )
    reason: ClassVar[RejectReason]  # the reject reason of a dropped row
    score_name: ClassVar[str]  # the key of the similarity in a Drop's details

    if TYPE_CHECKING:  # declared by each subclass, with its own help text
        field: Literal["prompt", "response", "both"]
        keep: KeepPolicy

    def similar_pairs(self, texts: list[str]) -> SimilarPairs:
        """The similar pairs among `texts` (distinct), with their scores."""
        raise NotImplementedError

    def decide(self, table: pa.Table) -> Decisions:
        columns = {name: table.column(name).to_pylist() for name in self.columns}
        confidence = None
        if self.keep == "most_confident":
            # Read through Arrow: only the one float list column, never the top-k payload.
            confidence = mean_sampled_logprob(table.column("sampled_logprob"))
        return self.decide_columns(columns, confidence)

    def read_columns(self, codec: Any) -> list[str]:
        extra = ["sampled_logprob"] if self.keep == "most_confident" else []
        return [*self.input_columns(codec), *extra]

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """record_id, prompt_id, the compared text and what the keep policy ranks by.

        The text itself, not its MinHash signature or embedding: which shingles (or lines)
        are common is decided over every text at once, and a text is smaller than a
        256-value signature or a 384-float embedding."""
        texts = [
            row_text(self.field, messages, response)
            for messages, response in zip(
                batch.column("messages").to_pylist(),
                batch.column("response_text").to_pylist(),
                strict=True,
            )
        ]
        keys: dict[str, Any] = {
            "record_id": batch.column("record_id"),
            "prompt_id": batch.column("prompt_id"),
            # Dictionary-encoded: the samples of a prompt, mostly in one batch, share a text.
            "text": pa.array(texts, pa.string()).dictionary_encode(),
        }
        if self.keep == "most_confident":
            keys["confidence"] = pa.array(mean_sampled_logprob(batch.column("sampled_logprob")))
        if self.keep == "correct":
            columns = {
                name: batch.column(name).to_pylist() for name in ("response_text", "reference")
            }
            keys["passes_mcq"] = pa.array(rows_passing_mcq(columns), pa.bool_())
        return pa.table(keys)

    def decide_keys(self, keys: pa.Table) -> Decisions:
        names = ("record_id", "prompt_id", "passes_mcq")
        columns = {
            name: keys.column(name).to_pylist() for name in names if name in keys.column_names
        }
        confidence = None
        if "confidence" in keys.column_names:
            confidence = keys.column("confidence").to_numpy(zero_copy_only=False)
        return self.decide_texts(keys.column("text").to_pylist(), columns, confidence)

    def decide_columns(
        self, columns: dict[str, list[Any]], confidence: np.ndarray | None = None
    ) -> Decisions:
        """`decide` on Python columns (`columns` and, for `most_confident`, `confidence`)."""
        texts = [
            row_text(self.field, messages, response)
            for messages, response in zip(
                columns["messages"], columns["response_text"], strict=True
            )
        ]
        return self.decide_texts(texts, columns, confidence)

    def decide_texts(
        self, texts: list[str], columns: dict[str, list[Any]], confidence: np.ndarray | None
    ) -> Decisions:
        """Decide from each row's text; `columns` holds record_id, prompt_id and, for
        `keep="correct"`, passes_mcq (or response_text and reference)."""
        distinct: dict[str, int] = {}
        text_index = [distinct.setdefault(text, len(distinct)) for text in texts]
        similar = self.similar_pairs(list(distinct))
        order = priority_order(self.keep, columns, confidence)
        groups = columns["prompt_id"] if self.field == "prompt" else None
        hits = keep_pass(order, text_index, similar.usable, similar.pairs, similar.scores, groups)
        return self.hit_decisions(hits, columns["record_id"], text_index, similar.details)

    def hit_decisions(
        self,
        hits: list[tuple[int, float] | None],
        record_ids: list[str],
        text_index: list[int],
        text_details: list[dict[str, Any]] | None = None,
    ) -> Decisions:
        """The Drop of each row `keep_pass` matched with a kept row (`hits`), None for the
        rest; `text_details`: extra keys per text, for the Drop of a row with that text."""
        decisions: Decisions = [None] * len(hits)
        for row, hit in enumerate(hits):
            if hit is None:
                continue
            details = {
                "duplicate_of": record_ids[hit[0]],
                self.score_name: round(hit[1], 4),
                "field": self.field,
            }
            if text_details is not None:
                details.update(text_details[text_index[row]])
            decisions[row] = Drop(self.reason, details)
        return decisions
