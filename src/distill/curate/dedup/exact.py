"""Exact deduplication on the normalised (prompt, response) pair.

Two rows are duplicates when the last user message and the response text are equal
after casefolding, collapsing whitespace and stripping. The first occurrence in input
order survives, so a re-run keeps the same rows; each dropped row names the record it
duplicates.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal

import pyarrow as pa

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason
from distill.curate.text import last_user_message, normalize_text


def dedup_key(messages: list[dict[str, Any]] | None, response_text: str) -> bytes:
    # A digest, not the strings themselves: memory stays flat however long responses are.
    joined = normalize_text(last_user_message(messages)) + "\x1f" + normalize_text(response_text)
    return hashlib.blake2b(joined.encode(), digest_size=16).digest()


class ExactDedup(DatasetStep):
    """Drop every row whose normalised prompt + response was already seen."""

    name: Literal["exact_dedup"] = "exact_dedup"
    columns: ClassVar[tuple[str, ...]] = ("record_id", "messages", "response_text")

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """record_id and the 16-byte digest `select` compares (a collision between two of
        2^32 distinct rows has odds of about 2^-65)."""
        digests = [
            dedup_key(messages, response)
            for messages, response in zip(
                batch.column("messages").to_pylist(),
                batch.column("response_text").to_pylist(),
                strict=True,
            )
        ]
        return pa.table(
            {"record_id": batch.column("record_id"), "digest": pa.array(digests, pa.binary(16))}
        )

    def decide_keys(self, keys: pa.Table) -> Decisions:
        return self.first_occurrences(
            keys.column("record_id").to_pylist(), keys.column("digest").to_pylist()
        )

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        digests = [
            dedup_key(messages, response)
            for messages, response in zip(
                columns["messages"], columns["response_text"], strict=True
            )
        ]
        return self.first_occurrences(columns["record_id"], digests)

    def first_occurrences(self, record_ids: list[str], digests: list[bytes]) -> Decisions:
        first_seen: dict[bytes, str] = {}
        decisions: Decisions = []
        for record_id, key in zip(record_ids, digests, strict=True):
            if key in first_seen:
                decisions.append(
                    Drop(RejectReason.EXACT_DUPLICATE, {"duplicate_of": first_seen[key]})
                )
            else:
                first_seen[key] = record_id
                decisions.append(None)
        return decisions
