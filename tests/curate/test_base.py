from __future__ import annotations

from typing import Any, ClassVar, Literal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason, RowStep, domain_of

TABLE = pa.table(
    {
        "record_id": ["r0", "r1", "r2"],
        "finish_reason": ["stop", "length", "stop"],
        "topk_ids": [[[1, 2]], [[3, 4]], [[5, 6]]],
    }
)


class SeesRows(RowStep):
    name: Literal["sees_rows"] = "sees_rows"
    columns: ClassVar[tuple[str, ...]] = ("finish_reason",)

    def filter(self, row: dict[str, Any]) -> Drop | None:
        # The top-k payload must not be converted to Python for a row step.
        assert set(row) == {"finish_reason"}
        return Drop(RejectReason.TRUNCATED, {}) if row["finish_reason"] == "length" else None


class ShortDecisions(DatasetStep):
    name: Literal["short"] = "short"
    columns: ClassVar[tuple[str, ...]] = ("record_id",)

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        return [None]


def test_row_step_gets_only_its_columns() -> None:
    assert SeesRows().decide(TABLE) == [None, Drop(RejectReason.TRUNCATED, {}), None]


def test_dataset_step_must_decide_every_row() -> None:
    with pytest.raises(RuntimeError, match="1 decisions for 3 rows"):
        ShortDecisions().decide(TABLE)


def test_steps_forbid_unknown_parameters() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SeesRows(threshold=3)


def test_reasons_are_stable_strings() -> None:
    assert {r.value for r in RejectReason} >= {
        "exact_duplicate",
        "truncated",
        "no_answer_found",
        "wrong_answer",
        "domain_cap",
    }


def test_domain_of() -> None:
    assert domain_of(None) == domain_of("") == "unknown"
    assert domain_of("math") == "math"
