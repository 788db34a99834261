from __future__ import annotations

import pyarrow as pa

from distill.curate.base import RejectReason
from distill.curate.dedup import ExactDedup


def _table(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.table(
        {
            "record_id": [r[0] for r in rows],
            "messages": [
                [{"role": "system", "content": "be brief"}, {"role": "user", "content": r[1]}]
                for r in rows
            ],
            "response_text": [r[2] for r in rows],
        }
    )


def test_case_and_whitespace_variants_are_duplicates_and_first_survives() -> None:
    table = _table(
        [
            ("r0", "What is 2+2?", "Four. Answer: B"),
            ("r1", "what is  2+2?", "four.\nANSWER: b "),
            ("r2", "What is 2+2?", "Five. Answer: C"),
            ("r3", " WHAT IS 2+2? ", "Four.   Answer: B"),
        ]
    )
    decisions = ExactDedup().decide(table)
    assert decisions[0] is None
    assert decisions[2] is None
    for index in (1, 3):
        drop = decisions[index]
        assert drop is not None
        assert drop.reason is RejectReason.EXACT_DUPLICATE
        assert drop.details == {"duplicate_of": "r0"}


def test_same_response_to_different_prompts_is_kept() -> None:
    table = _table([("r0", "Q1", "Answer: B"), ("r1", "Q2", "Answer: B")])
    assert ExactDedup().decide(table) == [None, None]


def test_only_the_last_user_turn_is_the_prompt() -> None:
    table = pa.table(
        {
            "record_id": ["r0", "r1"],
            "messages": [
                [{"role": "user", "content": "hi"}, {"role": "user", "content": "Q"}],
                [{"role": "user", "content": "hello"}, {"role": "user", "content": "q"}],
            ],
            "response_text": ["A", "a"],
        }
    )
    assert ExactDedup().decide(table)[1] is not None
