from __future__ import annotations

import pyarrow as pa

from distill.curate.base import RejectReason
from distill.curate.heuristics import (
    DropEmpty,
    LengthFilter,
    RefusalFilter,
    RepetitionFilter,
    repeated_ngram_ratio,
)


def test_heuristics() -> None:
    assert DropEmpty().filter({"response_text": " \n ?! "}).reason is RejectReason.EMPTY
    assert DropEmpty().filter({"response_text": "B"}) is None
    table = pa.table({"token_ids": [[], [1, 2], [1, 2, 3, 4, 5]]})
    decisions = LengthFilter(min_tokens=1, max_tokens=4).decide(table)
    assert [d.reason if d else None for d in decisions] == [
        RejectReason.TOO_SHORT,
        None,
        RejectReason.TOO_LONG,
    ]
    loop = "the answer is B " * 10
    assert repeated_ngram_ratio(loop) > 0.8
    assert repeated_ngram_ratio("one two three four five six") == 0.0
    assert RepetitionFilter().filter({"response_text": loop}).reason is RejectReason.REPETITION
    assert RepetitionFilter().filter({"response_text": "the answer is B " * 2}) is None
    drop = RefusalFilter().filter({"response_text": "I’m sorry, but I can't help with that."})
    assert drop is not None and drop.details["phrase"] == "i'm sorry, but"
    assert RefusalFilter().filter({"response_text": "Answer: B"}) is None
