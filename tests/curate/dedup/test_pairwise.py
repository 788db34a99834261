"""The pass both similarity dedup steps share, driven by a fake step whose similar pairs are
given outright: what is dropped, in whose favour, and what a Drop says."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from distill.curate.base import RejectReason
from distill.curate.dedup.pairwise import PairwiseDedup, SimilarPairs, common_limit


class GivenPairs(PairwiseDedup):
    """Texts are similar when they start with the same letter; score 0.5 + 0.1 x that letter."""

    name: Literal["given_pairs"] = "given_pairs"
    reason: ClassVar[RejectReason] = RejectReason.NEAR_DUPLICATE
    score_name: ClassVar[str] = "score"
    field: Literal["prompt", "response", "both"] = "response"
    keep: Literal["first", "most_confident", "correct"] = "first"
    note: bool = False

    def similar_pairs(self, texts: list[str]) -> SimilarPairs:
        pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
        pairs = [(i, j) for i, j in pairs if texts[i][:1] == texts[j][:1] and texts[i][:1]]
        scores = [0.5 + 0.1 * (ord(texts[i][0]) - ord("a")) for i, _ in pairs]
        usable = np.array([bool(t) for t in texts])
        details = [{"length": len(t)} for t in texts] if self.note else None
        return SimilarPairs(
            np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(scores), usable, details
        )


def _columns(responses: list[str], prompts: list[str] | None = None) -> dict[str, list[Any]]:
    n = len(responses)
    return {
        "record_id": [f"r{i}" for i in range(n)],
        "prompt_id": prompts or [f"p{i}" for i in range(n)],
        "messages": [[{"role": "user", "content": f"q{i}"}] for i in range(n)],
        "response_text": responses,
        "reference": [None] * n,
    }


def test_later_similar_rows_name_the_first_kept_row() -> None:
    decisions = GivenPairs().decide_columns(_columns(["a1", "b1", "a2", "", "b2", "a1"]))
    assert [d is None for d in decisions] == [True, True, False, True, False, False]
    assert decisions[2].reason is RejectReason.NEAR_DUPLICATE
    assert decisions[2].details == {"duplicate_of": "r0", "score": 0.5, "field": "response"}
    assert decisions[4].details == {"duplicate_of": "r1", "score": 0.6, "field": "response"}
    # The same text again: similar to itself with score 1.
    assert decisions[5].details == {"duplicate_of": "r0", "score": 1.0, "field": "response"}


def test_per_text_details_are_added_to_the_drop() -> None:
    decisions = GivenPairs(note=True).decide_columns(_columns(["a1", "abc"]))
    assert decisions[0] is None
    assert decisions[1].details == {
        "duplicate_of": "r0",
        "score": 0.5,
        "field": "response",
        "length": 3,
    }


def test_rows_of_one_prompt_are_not_compared_on_the_prompt() -> None:
    columns = _columns(["x", "y", "z"], prompts=["p0", "p0", "p1"])
    columns["messages"] = [[{"role": "user", "content": "a"}]] * 2 + [
        [{"role": "user", "content": "a!"}]
    ]
    decisions = GivenPairs(field="prompt").decide_columns(columns)
    assert decisions[0] is None and decisions[1] is None
    assert decisions[2].details["duplicate_of"] == "r0"


def test_most_confident_row_survives_and_decide_reads_the_table() -> None:
    columns = _columns(["a1", "a2", "a3"])
    table = pa.table({**columns, "sampled_logprob": [[-3.0], [-0.5], [-1.0]]})
    decisions = GivenPairs(keep="most_confident").decide(table)
    assert decisions[1] is None
    assert {d.details["duplicate_of"] for d in (decisions[0], decisions[2])} == {"r1"}


def test_common_limit_is_a_share_with_a_floor() -> None:
    assert common_limit(0.02, 1000, 10) == 20
    assert common_limit(0.02, 100, 10) == 10
