from __future__ import annotations

from collections import Counter

import pyarrow as pa

from distill.curate.balance import DomainCap
from distill.curate.base import RejectReason


def _table(domains: list[str | None]) -> pa.Table:
    return pa.table(
        {"record_id": [f"r{i:03d}" for i in range(len(domains))], "domain": domains},
        schema=pa.schema([("record_id", pa.string()), ("domain", pa.string())]),
    )


def _kept_ids(step: DomainCap, table: pa.Table) -> list[str]:
    decisions = step.decide(table)
    ids = table["record_id"].to_pylist()
    return [rid for rid, d in zip(ids, decisions, strict=True) if d is None]


def test_cap_per_domain_with_null_as_unknown() -> None:
    table = _table(["math"] * 10 + ["bio"] * 2 + [None] * 5)
    decisions = DomainCap(cap=3).decide(table)
    domains = table["domain"].to_pylist()
    kept = Counter(d or "unknown" for d, x in zip(domains, decisions, strict=True) if x is None)
    assert kept == {"math": 3, "bio": 2, "unknown": 3}
    drops = [d for d in decisions if d is not None]
    assert {d.reason for d in drops} == {RejectReason.DOMAIN_CAP}
    assert {"domain": "unknown", "cap": 3, "domain_rows": 5} in [d.details for d in drops]


def test_deterministic_and_seeded() -> None:
    table = _table(["math"] * 50)
    assert _kept_ids(DomainCap(cap=5), table) == _kept_ids(DomainCap(cap=5), table)
    assert _kept_ids(DomainCap(cap=5, seed=1), table) != _kept_ids(DomainCap(cap=5), table)
    # Not simply the first rows: the hash ranking spreads the choice over the input.
    assert _kept_ids(DomainCap(cap=5), table) != [f"r{i:03d}" for i in range(5)]


def test_survivors_do_not_depend_on_row_order() -> None:
    table = _table(["math"] * 20)
    reversed_table = table.take(list(range(19, -1, -1)))
    assert sorted(_kept_ids(DomainCap(cap=4), table)) == sorted(
        _kept_ids(DomainCap(cap=4), reversed_table)
    )


def test_none_cap_and_overrides() -> None:
    table = _table(["math"] * 6 + ["bio"] * 6)
    assert all(d is None for d in DomainCap(cap=None).decide(table))
    kept = _kept_ids(DomainCap(cap=None, caps={"math": 2}), table)
    assert len(kept) == 8
