from __future__ import annotations

import pytest
from pydantic import ValidationError

from distill.curate.base import Drop, RejectReason
from distill.curate.verify import MatchVerify, MathVerify


@pytest.mark.parametrize(
    ("response", "reference", "ok"),
    [
        ("so x = \\frac{1}{2}", "0.5", True),
        ("The answer is $\\boxed{\\sqrt{2}}$.", "\\sqrt{2}", True),
        ("The answer is $\\boxed{3}$.", "4", False),
    ],
)
def test_math_verify(response: str, reference: str, ok: bool) -> None:
    drop = MathVerify().filter({"response_text": response, "reference": reference})
    assert (drop is None) == ok
    if not ok:
        assert drop is not None and drop.reason is RejectReason.WRONG_ANSWER


def test_math_verify_without_reference_or_answer() -> None:
    assert MathVerify().filter({"response_text": "x", "reference": None}) is None
    drop = MathVerify().filter({"response_text": "no idea", "reference": "3"})
    assert drop == Drop(RejectReason.NO_ANSWER_FOUND, {"reference": "3"})


def test_match_verify_modes() -> None:
    row = {"response_text": "  Paris. ", "reference": "paris"}
    assert MatchVerify(mode="normalised").filter(row) is None
    assert MatchVerify(mode="exact").filter(row) is not None
    regex = MatchVerify(mode="regex", pattern=r"Final: (\w+)")
    assert regex.filter({"response_text": "Final: x ... Final: Lyon", "reference": "lyon"}) is None
    drop = regex.filter({"response_text": "Final: Rome", "reference": "lyon"})
    assert drop is not None and drop.details["extracted"] == "Rome"
    assert regex.filter({"response_text": "?", "reference": "lyon"}).reason is (
        RejectReason.NO_ANSWER_FOUND
    )
    with pytest.raises(ValidationError, match="needs a pattern"):
        MatchVerify(mode="regex")
    with pytest.raises(ValidationError, match="not a valid regex"):
        MatchVerify(mode="regex", pattern="(")
