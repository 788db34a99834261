"""`mcq_verify`: the step's drops and its per-domain accuracy."""

from __future__ import annotations

import pyarrow as pa
import pytest

from distill.curate.base import Drop, RejectReason
from distill.curate.mcq import McqVerify


def test_filter_outcomes() -> None:
    step = McqVerify()
    assert step.filter({"response_text": "Answer: B", "reference": "B"}) is None
    assert step.filter({"response_text": "Answer: C", "reference": "B"}) == Drop(
        RejectReason.WRONG_ANSWER, {"extracted": "C", "reference": "B", "rule": "marker"}
    )
    assert step.filter({"response_text": "no idea", "reference": "B"}) == Drop(
        RejectReason.NO_ANSWER_FOUND, {"reference": "B"}
    )
    # Not multiple choice: passes through whatever the response says.
    assert step.filter({"response_text": "no idea", "reference": None}) is None
    assert step.filter({"response_text": "Answer: C", "reference": "42"}) is None


def test_accuracy_by_domain_counts_only_graded_rows() -> None:
    table = pa.table(
        {
            "response_text": ["Answer: B", "Answer: C", "?", "Answer: A", "free text"],
            "reference": ["B", "B", "A", "A", None],
            "domain": ["math", "math", "math", None, "chat"],
        }
    )
    step = McqVerify()
    summary = step.summarize(table, step.decide(table))["accuracy_by_domain"]
    assert summary == {
        "math": {"graded": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)},
        "unknown": {"graded": 1, "correct": 1, "accuracy": 1.0},
    }


def test_letters_validated() -> None:
    with pytest.raises(ValueError, match="capital letters"):
        McqVerify(letters="abcd")
