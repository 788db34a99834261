from __future__ import annotations

import pytest
from pydantic import ValidationError

from distill.curate.base import Drop, RejectReason
from distill.curate.user_filter import UserFilter


def keep_short(row: dict) -> bool | tuple[bool, str]:
    """A user function for the tests: keep responses under 10 characters."""
    n = len(row["response_text"])
    return True if n < 10 else (False, f"{n} chars")


def test_user_filter_by_import_path() -> None:
    step = UserFilter(function="tests.curate.test_user_filter:keep_short")
    assert step.filter({"response_text": "short"}) is None
    drop = step.filter({"response_text": "much too long"})
    assert drop == Drop(
        RejectReason.USER_FILTER,
        {"function": "tests.curate.test_user_filter:keep_short", "note": "13 chars"},
    )
    with pytest.raises(ValidationError, match="no callable"):
        UserFilter(function="tests.curate.test_user_filter:nope")
    with pytest.raises(ValidationError, match=r"pkg\.module:func"):
        UserFilter(function="tests.curate.test_user_filter")
