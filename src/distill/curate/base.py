"""The step shape every curation step has, datatrove-style.

A *row step* looks at one row at a time (`filter(row) -> Drop | None`) and declares the
columns it reads, so the runner converts only those to Python: the top-k list columns,
by far the largest, never leave Arrow. A *dataset step* (dedup, balance) needs every
surviving row at once and returns one decision per row. Either way a step only decides;
the runner selects rows with pyarrow, counts drops per reason, times the step and keeps
every dropped row with its reason and details.

The runner streams the dataset (`distill.curate.runner`): a step first turns each batch
into compact per-row *keys* (`keys`: hashes, a domain, a token count, a decision already
made), and decides from the keys of every row still alive (`decide_keys`), so only the keys
of the whole dataset are ever in memory, never its rows. A *row-local* step (`RowLocal`:
every row step, and any step whose decision for a row reads that row alone) decides in
`keys` itself and stores its decision; a global step (dedup, balancing) keeps what it
compares and decides once it has seen every row. The default keys are the step's input
columns (`view`), right for any step whose `decide` reads only `columns`; a step that reads
more, or whose inputs are large, overrides `read_columns` and `keys` (and `decide_keys`).

Steps are pydantic models (`extra="forbid"`): their fields are the recipe's parameters,
and `name` is the step type a recipe file refers to.

The same recipe runs on both top-k codecs ("plain" lists, "packed" blobs; see
`distill.codec`). `columns` therefore names only columns both codecs have; a step that
needs the teacher's top-k sets `reads_topk`, gets its codec's top-k columns from `view`,
and reads them through `distill.codec.decode_topk`, never by column name.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
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
    # True: a row's decision reads that row alone, so it is made batch by batch (`RowLocal`).
    row_local: ClassVar[bool] = False
    # True: deciding costs a model call per row. The runner never shows such a step a row
    # that an earlier step drops, so it makes no call today's whole-table run would not.
    expensive: ClassVar[bool] = False

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

    def read_columns(self, codec: pa.Schema | pa.Table | Any | str) -> list[str]:
        """The columns `keys` reads from a batch (by default `input_columns`)."""
        return self.input_columns(codec)

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """One row of small columns per row of `batch`: what `decide_keys` decides from.
        `offset`: how many rows this step was shown before `batch`. The default keeps the
        step's input columns; a step whose inputs are large keeps hashes or numbers."""
        return self.view(batch)

    def decide_keys(self, keys: pa.Table) -> Decisions:
        """`decide` on the keys of every row still alive, in input order."""
        return self.decide(keys)

    def summarize_keys(self, keys: pa.Table, decisions: Decisions) -> dict[str, Any]:
        """`summarize` on the keys `decide_keys` was given."""
        return self.summarize(keys, decisions)

    def release(self) -> None:
        """Drop whatever the step held for one run (a loaded model); called after it."""


DROP_REASON = "drop_reason"
DROP_DETAILS = "drop_details"


def encode_decisions(decisions: Decisions) -> dict[str, pa.Array]:
    """Decisions as two columns: the reason (null: kept) and the details as JSON."""
    reasons = [None if d is None else d.reason.value for d in decisions]
    details = [None if d is None else json.dumps(d.details, sort_keys=True) for d in decisions]
    return {
        DROP_REASON: pa.array(reasons, pa.string()),
        DROP_DETAILS: pa.array(details, pa.string()),
    }


def decode_decisions(keys: pa.Table) -> Decisions:
    reasons = keys.column(DROP_REASON).to_pylist()
    details = keys.column(DROP_DETAILS).to_pylist()
    return [
        None if reason is None else Drop(RejectReason(reason), json.loads(detail))
        for reason, detail in zip(reasons, details, strict=True)
    ]


def kept_by_keys(keys: pa.Table) -> pa.Array:
    """The rows a row-local step's keys keep."""
    return pc.is_null(keys.column(DROP_REASON))


class RowLocal:
    """Mixin for a step whose decision for a row reads that row alone: it decides batch by
    batch in `keys`, which hold the decision (`drop_reason`, `drop_details`), the columns its
    summary reads (`summary_columns`) and any `extra_keys`."""

    row_local: ClassVar[bool] = True
    summary_columns: ClassVar[tuple[str, ...]] = ()

    def read_columns(self, codec: pa.Schema | pa.Table | Any | str) -> list[str]:
        inputs = self.input_columns(codec)  # type: ignore[attr-defined]
        return [*inputs, *(c for c in self.summary_columns if c not in inputs)]

    def decide_batch(self, batch: pa.Table, offset: int) -> Decisions:
        return self.decide(batch)  # type: ignore[attr-defined]

    def extra_keys(self, batch: pa.Table, decisions: Decisions) -> dict[str, pa.Array]:
        return {}

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        decisions = self.decide_batch(batch, offset) if batch.num_rows else []
        columns: dict[str, Any] = encode_decisions(decisions)
        columns.update({name: batch.column(name) for name in self.summary_columns})
        columns.update(self.extra_keys(batch, decisions))
        return pa.table(columns)

    def decide_keys(self, keys: pa.Table) -> Decisions:
        return decode_decisions(keys)


class RowStep(RowLocal, Step):
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
