from __future__ import annotations

import pytest
from pydantic import ValidationError

from distill.curate.base import Drop, RejectReason
from distill.curate.verify import MatchVerify, MathVerify, UserFilter


def keep_short(row: dict) -> bool | tuple[bool, str]:
    """A user function for the tests: keep responses under 10 characters."""
    n = len(row["response_text"])
    return True if n < 10 else (False, f"{n} chars")


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


def test_user_filter_by_import_path() -> None:
    step = UserFilter(function="tests.curate.test_verify:keep_short")
    assert step.filter({"response_text": "short"}) is None
    drop = step.filter({"response_text": "much too long"})
    assert drop == Drop(
        RejectReason.USER_FILTER,
        {"function": "tests.curate.test_verify:keep_short", "note": "13 chars"},
    )
    with pytest.raises(ValidationError, match="no callable"):
        UserFilter(function="tests.curate.test_verify:nope")
    with pytest.raises(ValidationError, match=r"pkg\.module:func"):
        UserFilter(function="tests.curate.test_verify")
