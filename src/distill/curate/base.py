"""The step shape every curation step has, datatrove-style.

A *row step* looks at one row at a time (`filter(row) -> Drop | None`) and declares the
columns it reads, so the runner converts only those to Python: the top-k list columns,
by far the largest, never leave Arrow. A *dataset step* (dedup, balance) needs every
surviving row at once and returns one decision per row. Either way a step only decides;
the runner selects rows with pyarrow, counts drops per reason, times the step and keeps
every dropped row with its reason and details.

Steps are pydantic models (`extra="forbid"`): their fields are the recipe's parameters,
and `name` is the step type a recipe file refers to.

The same recipe runs on both top-k codecs ("plain" lists, "packed" blobs; see
`distill.codec`). `columns` therefore names only columns both codecs have; a step that
needs the teacher's top-k sets `reads_topk`, gets its codec's top-k columns from `view`,
and reads them through `distill.codec.decode_topk`, never by column name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from distill.schemas import topk_columns


class RejectReason(StrEnum):
    """Why a row was dropped; the value is what the `reject_reason` column holds."""

    EXACT_DUPLICATE = "exact_duplicate"
    TRUNCATED = "truncated"
    NO_ANSWER_FOUND = "no_answer_found"
    WRONG_ANSWER = "wrong_answer"
    DOMAIN_CAP = "domain_cap"
    NEAR_DUPLICATE = "near_duplicate"
    USER_FILTER = "user_filter"
    LOW_CONFIDENCE = "low_confidence"
    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    REPETITION = "repetition"
    REFUSAL = "refusal"
    CONTAMINATED = "contaminated"
    DOMAIN_BALANCE = "domain_balance"
    SEMANTIC_DUPLICATE = "semantic_duplicate"
    WRONG_LANGUAGE = "wrong_language"
    JUDGE_LOW_SCORE = "judge_low_score"
    JUDGE_UNPARSED = "judge_unparsed"
    JUDGE_FAILED = "judge_failed"
    NOT_SELECTED = "not_selected"


class Drop(NamedTuple):
    """A decision to drop a row; `details` must be JSON-serialisable."""

    reason: RejectReason
    details: dict[str, Any]


# One entry per row, in row order: None keeps the row, a Drop removes it. It is the
# keep mask and the reasons in one list, so the two can never get out of step.
Decisions = list[Drop | None]


class Step(BaseModel):
    """Common base: the step's parameters and the columns it needs."""

    # No NaN or inf anywhere: a NaN threshold compares False with everything, so a step
    # given one would keep (or drop) every row without a word.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    # What the step reads: column names every codec has (no top-k column).
    columns: ClassVar[tuple[str, ...]] = ()
    # True: the step reads the top-k too, in its own `decide`, via `view` and `decode_topk`.
    reads_topk: ClassVar[bool] = False

    @classmethod
    def input_columns(cls, codec: pa.Schema | pa.Table | Any | str) -> list[str]:
        """`columns`, plus the top-k columns of `codec` (a name, manifest, table or schema)
        when the step reads the top-k: what a reader must load for this step."""
        return [*cls.columns, *(topk_columns(codec) if cls.reads_topk else [])]

    def view(self, table: pa.Table) -> pa.Table:
        """`table` narrowed to what this step reads, whichever codec it has."""
        return table.select(self.input_columns(table))

    def params(self) -> dict[str, Any]:
        """The step's settings as recorded in the manifest (everything but `name`)."""
        return self.model_dump(mode="json", exclude={"name"})

    def decide(self, table: pa.Table) -> Decisions:
        raise NotImplementedError

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        """Extra results worth a place in the manifest (e.g. accuracy); none by default."""
        return {}


class RowStep(Step):
    """Subclasses write `filter(row)`; `row` holds only the columns in `columns`."""

    def filter(self, row: dict[str, Any]) -> Drop | None:
        raise NotImplementedError

    def decide(self, table: pa.Table) -> Decisions:
        rows = table.select(list(self.columns)).to_pylist()
        return [self.filter(row) for row in rows]


class DatasetStep(Step):
    """Subclasses write `select(columns)`: every surviving row's values, column by column."""

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        raise NotImplementedError

    def decide(self, table: pa.Table) -> Decisions:
        columns = {name: table.column(name).to_pylist() for name in self.columns}
        decisions = self.select(columns, table.num_rows)
        if len(decisions) != table.num_rows:
            raise RuntimeError(
                f"step {self.name!r} returned {len(decisions)} decisions for {table.num_rows} rows"
            )
        return decisions


def domain_of(value: str | None) -> str:
    """Rows without a domain are counted, balanced and reported as 'unknown'."""
    return value if value else "unknown"
