from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from distill.curate.balance import (
    DomainCap,
    DomainRatio,
    DomainTemperature,
    DomainTokenBudget,
    largest_remainder,
    ratio_counts,
    temperature_counts,
)
from distill.curate.base import RejectReason
from distill.curate.recipe import recipe_from_dict


def _table(domains: list[str | None]) -> pa.Table:
    return pa.table(
        {"record_id": [f"r{i:03d}" for i in range(len(domains))], "domain": domains},
        schema=pa.schema([("record_id", pa.string()), ("domain", pa.string())]),
    )


def _kept_ids(step, table: pa.Table) -> list[str]:
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


def _mixed(sizes: dict[str, int]) -> pa.Table:
    return _table([d for d, n in sizes.items() for _ in range(n)])


def _kept_counts(step, table: pa.Table) -> dict[str, int]:
    decisions = step.decide(table)
    domains = table["domain"].to_pylist()
    kept = (d or "unknown" for d, x in zip(domains, decisions, strict=True) if x is None)
    return dict(Counter(kept))


def test_ratio_keeps_the_largest_matching_subset() -> None:
    table = _mixed({"math": 100, "bio": 30, "chat": 7})
    step = DomainRatio(ratios={"math": 2, "bio": 1})
    # bio is the bottleneck: all 30 stay, math gets 60, chat (no ratio) goes.
    assert _kept_counts(step, table) == {"math": 60, "bio": 30}
    drops = [d for d in step.decide(table) if d is not None]
    assert {d.reason for d in drops} == {RejectReason.DOMAIN_BALANCE}
    kept = _kept_counts(DomainRatio(ratios={"math": 2, "bio": 1}, unlisted="keep"), table)
    assert kept == {"math": 60, "bio": 30, "chat": 7}
    summary = step.summarize(table, step.decide(table))
    assert summary["domains_before"] == {"bio": 30, "chat": 7, "math": 100}
    assert summary["domains_after"] == {"bio": 30, "chat": 0, "math": 60}


def test_ratio_with_an_absent_domain_is_an_error() -> None:
    with pytest.raises(ValueError, match="physics"):
        DomainRatio(ratios={"math": 1, "physics": 1}).decide(_mixed({"math": 5}))


def test_ratio_counts_and_largest_remainder() -> None:
    assert ratio_counts({"a": 10, "b": 10}, {"a": 3, "b": 1}) == {"a": 10, "b": 3}
    assert ratio_counts({"a": 10, "b": 10}, {"a": 1, "b": 0}) == {"a": 10, "b": 0}
    assert largest_remainder({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}


def test_token_budget_keeps_a_ranked_prefix_within_budget() -> None:
    domains = ["math"] * 10 + ["bio"] * 4
    table = _table(domains).append_column(
        "token_ids", pa.array([[1] * 10] * 10 + [[1] * 50] * 4, pa.list_(pa.int32()))
    )
    step = DomainTokenBudget(budget=35, budgets={"bio": 1000})
    assert _kept_counts(step, table) == {"math": 3, "bio": 4}
    summary = step.summarize(table, step.decide(table))
    assert summary["tokens_before"] == {"bio": 200, "math": 100}
    assert summary["tokens_after"] == {"bio": 200, "math": 30}
    assert all(d is None for d in DomainTokenBudget().decide(table))  # no budget: keep all
    seeded = DomainTokenBudget(budget=35, seed=1)
    assert _kept_ids(seeded, table) != _kept_ids(DomainTokenBudget(budget=35), table)


def test_temperature_counts() -> None:
    sizes = {"big": 900, "small": 100}
    # T = 1 keeps the mix; T -> large approaches uniform.
    assert temperature_counts(sizes, 1.0, 100)["counts"] == {"big": 90, "small": 10}
    plan = temperature_counts(sizes, 2.0, 400)
    assert plan["probabilities"]["small"] == pytest.approx(1 / (1 + 3))
    assert plan["counts"] == {"big": 300, "small": 100}
    # More than `small` has: it keeps all 100 and `big` takes the rest.
    assert temperature_counts(sizes, 100.0, 500)["counts"] == {"big": 400, "small": 100}
    # No total: the most rows reachable without upsampling any domain.
    assert temperature_counts(sizes, 2.0, None)["counts"] == {"big": 300, "small": 100}


def test_temperature_step_is_seeded_and_summarised() -> None:
    table = _mixed({"big": 90, "small": 10})
    step = DomainTemperature(temperature=2.0, total=40)
    assert _kept_counts(step, table) == {"big": 30, "small": 10}
    assert _kept_ids(step, table) == _kept_ids(DomainTemperature(temperature=2.0, total=40), table)
    assert _kept_ids(step, table) != _kept_ids(
        DomainTemperature(temperature=2.0, total=40, seed=3), table
    )
    summary = step.summarize(table, step.decide(table))
    assert summary["domains_after"] == {"big": 30, "small": 10}
    assert summary["probabilities"] == {"big": 0.75, "small": 0.25}


def test_recipe_knows_the_balance_steps() -> None:
    recipe = recipe_from_dict(
        {
            "steps": [
                {"name": "domain_ratio", "ratios": {"math": 1}},
                {"name": "domain_token_budget", "budget": 100},
                {"name": "domain_temperature", "temperature": 3, "total": 10, "seed": 2},
            ]
        }
    )
    assert recipe.steps[2] == DomainTemperature(temperature=3.0, total=10, seed=2)
    with pytest.raises(ValueError, match="temperature"):
        recipe_from_dict({"steps": [{"name": "domain_temperature", "temperature": 0}]})
