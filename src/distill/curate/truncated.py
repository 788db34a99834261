"""Drop responses the teacher did not finish.

A response cut off at `max_new_tokens` (finish_reason "length") teaches the student to
stop mid-thought, and its final answer, if any, is unreliable.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from distill.curate.base import Drop, RejectReason, RowStep


class DropTruncated(RowStep):
    name: Literal["truncated"] = "truncated"
    columns: ClassVar[tuple[str, ...]] = ("finish_reason",)

    def filter(self, row: dict[str, Any]) -> Drop | None:
        if row["finish_reason"] == "length":
            return Drop(RejectReason.TRUNCATED, {"finish_reason": "length"})
        return None
