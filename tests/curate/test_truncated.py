from __future__ import annotations

import pyarrow as pa

from distill.curate.base import RejectReason
from distill.curate.truncated import DropTruncated


def test_length_is_dropped_stop_is_kept() -> None:
    table = pa.table({"finish_reason": ["stop", "length", "stop"], "response_text": ["a"] * 3})
    decisions = DropTruncated().decide(table)
    assert decisions[0] is None
    assert decisions[2] is None
    assert decisions[1] is not None
    assert decisions[1].reason is RejectReason.TRUNCATED


def test_row_step_reads_only_declared_columns() -> None:
    # A table without the top-k columns is enough: the step never touches them.
    assert DropTruncated.columns == ("finish_reason",)
    assert DropTruncated().decide(pa.table({"finish_reason": ["stop"]})) == [None]
