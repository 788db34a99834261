"""Shape the domain mix, so one large source can't swamp it.

- `domain_cap`: at most `cap` rows per domain;
- `domain_ratio`: the largest subset whose domain counts match target ratios;
- `domain_token_budget`: at most `budget` response tokens (len(token_ids)) per domain;
- `domain_temperature`: down-sample to `total` rows with domain d drawn with probability
  p_d ∝ n_d^(1/T) (T = 1 keeps the mix, larger T flattens it towards uniform; as in
  multilingual mixing, Conneau et al. 2020 and Arivazhagan et al. 2019).

Which rows survive is seeded and deterministic: rows are ranked by a hash of
(seed, record_id) and each domain keeps a prefix of its ranking. Ranking by hash rather
than by position means no policy favours whatever came first in the input, and a row's
fate depends only on how many rows its domain keeps. Rows with no domain form "unknown".
The ratio, budget and temperature steps report per-domain counts before and after in
their summary.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason, domain_of


def rank_key(seed: int, record_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x1f{record_id}".encode()).digest()


class DomainCap(DatasetStep):
    name: Literal["domain_cap"] = "domain_cap"
    columns: ClassVar[tuple[str, ...]] = ("record_id", "domain")

    cap: int | None = Field(10_000, ge=0, description="rows kept per domain; None keeps every row")
    caps: dict[str, NonNegativeInt] = Field(
        default_factory=dict, description="per-domain overrides of `cap`, e.g. {'math': 500}"
    )
    seed: int = Field(0, description="changes which rows of an over-full domain survive")

    def cap_for(self, domain: str) -> int | None:
        return self.caps.get(domain, self.cap)

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        by_domain: dict[str, list[int]] = defaultdict(list)
        for index, domain in enumerate(columns["domain"]):
            by_domain[domain_of(domain)].append(index)
        decisions: Decisions = [None] * num_rows
        record_ids = columns["record_id"]
        for domain, indices in by_domain.items():
            cap = self.cap_for(domain)
            if cap is None or len(indices) <= cap:
                continue
            ranked = sorted(indices, key=lambda i: (rank_key(self.seed, record_ids[i]), i))
            for index in ranked[cap:]:
                decisions[index] = Drop(
                    RejectReason.DOMAIN_CAP,
                    {"domain": domain, "cap": cap, "domain_rows": len(indices)},
                )
        return decisions


def _by_domain(domains: list[str | None]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for index, domain in enumerate(domains):
        grouped[domain_of(domain)].append(index)
    return dict(sorted(grouped.items()))


def _ranked(indices: list[int], record_ids: list[str], seed: int) -> list[int]:
    return sorted(indices, key=lambda i: (rank_key(seed, record_ids[i]), i))


def largest_remainder(shares: dict[str, float], total: int) -> dict[str, int]:
    """Integers proportional to `shares` summing to `total` (ties broken by domain name)."""
    weight = sum(shares.values())
    exact = {d: total * s / weight for d, s in shares.items()}
    counts = {d: int(x) for d, x in exact.items()}
    left = total - sum(counts.values())
    for d in sorted(exact, key=lambda d: (-(exact[d] - counts[d]), d))[:left]:
        counts[d] += 1
    return counts


def ratio_counts(sizes: dict[str, int], ratios: dict[str, float]) -> dict[str, int]:
    """Rows per domain of the largest subset with counts in the ratios `ratios`.

    The scarcest domain relative to its ratio keeps every row; the others keep
    floor(ratio * scale). A ratio of 0 keeps nothing of its domain.
    """
    weight = sum(ratios.values())
    wanted = {d: r / weight for d, r in ratios.items() if r > 0}
    missing = sorted(d for d in wanted if sizes.get(d, 0) == 0)
    if missing:
        raise ValueError(f"domain_ratio: no rows for domain(s) {missing} that have a ratio")
    scale = min(sizes[d] / share for d, share in wanted.items())
    return {d: min(sizes[d], int(wanted.get(d, 0) * scale + 1e-9)) for d in ratios}


def temperature_counts(sizes: dict[str, int], temperature: float, total: int | None) -> dict:
    """Rows per domain when sampling domains with p_d ∝ n_d^(1/T), without upsampling.

    Returns {"probabilities", "counts"}. A domain whose share exceeds its rows keeps all
    of them and the rest of `total` is shared among the others in the same proportions
    (water-filling). `total` None: the largest total no domain has to upsample for.
    """
    weights = {d: n ** (1.0 / temperature) for d, n in sizes.items() if n > 0}
    norm = sum(weights.values())
    probabilities = {d: w / norm for d, w in weights.items()}
    if total is None:
        total = int(min(sizes[d] / p for d, p in probabilities.items()) + 1e-9)
    total = min(total, sum(sizes.values()))
    counts: dict[str, int] = {}
    open_domains, left = dict(probabilities), total
    while open_domains:
        mass = sum(open_domains.values())
        full = [d for d, p in open_domains.items() if left * p / mass >= sizes[d]]
        if not full:
            counts.update(largest_remainder(open_domains, left))
            break
        for d in full:
            counts[d] = sizes[d]
            left -= sizes[d]
            del open_domains[d]
    return {"probabilities": probabilities, "counts": counts}


class _Balance(DatasetStep):
    """Shared shape: a policy gives rows-to-keep per domain; the seeded ranking picks them."""

    columns: ClassVar[tuple[str, ...]] = ("record_id", "domain")

    seed: int = Field(0, description="changes which rows of a domain survive")

    def keep_counts(self, groups: dict[str, list[int]]) -> dict[str, int]:
        raise NotImplementedError

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        groups = _by_domain(columns["domain"])
        keep = self.keep_counts(groups)
        decisions: Decisions = [None] * num_rows
        for domain, indices in groups.items():
            kept = keep.get(domain, 0)
            for index in _ranked(indices, columns["record_id"], self.seed)[kept:]:
                decisions[index] = Drop(
                    RejectReason.DOMAIN_BALANCE,
                    {
                        "domain": domain,
                        "policy": self.name,
                        "domain_rows": len(indices),
                        "kept": kept,
                    },
                )
        return decisions

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        domains = [domain_of(d) for d in table.column("domain").to_pylist()]
        before = Counter(domains)
        after = Counter(d for d, x in zip(domains, decisions, strict=True) if x is None)
        return {
            "domains_before": dict(sorted(before.items())),
            "domains_after": {d: after.get(d, 0) for d in sorted(before)},
        }


class DomainRatio(_Balance):
    """Keep the largest subset whose domain counts follow `ratios`."""

    name: Literal["domain_ratio"] = "domain_ratio"

    ratios: dict[str, NonNegativeFloat] = Field(
        min_length=1, description="relative target share per domain, e.g. {math: 2, bio: 1}"
    )
    unlisted: Literal["drop", "keep"] = Field(
        "drop", description="what happens to domains without a ratio"
    )

    def keep_counts(self, groups: dict[str, list[int]]) -> dict[str, int]:
        if sum(self.ratios.values()) <= 0:
            raise ValueError("domain_ratio: at least one ratio must be positive")
        keep = ratio_counts({d: len(i) for d, i in groups.items()}, self.ratios)
        if self.unlisted == "keep":
            keep.update({d: len(i) for d, i in groups.items() if d not in self.ratios})
        return keep


class DomainTokenBudget(_Balance):
    """Per domain, keep ranked rows while their response tokens fit in the budget."""

    name: Literal["domain_token_budget"] = "domain_token_budget"

    budget: PositiveInt | None = Field(
        None, description="max response tokens per domain; None leaves a domain unbudgeted"
    )
    budgets: dict[str, NonNegativeInt] = Field(
        default_factory=dict, description="per-domain overrides of `budget`"
    )

    def read_columns(self, codec: Any) -> list[str]:
        return [*self.columns, "token_ids"]

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """record_id, domain and the response's token count."""
        # Token counts straight from Arrow: token_ids never becomes Python lists.
        tokens = pc.list_value_length(batch.column("token_ids"))
        return batch.select(list(self.columns)).append_column("tokens", tokens)

    def decide(self, table: pa.Table) -> Decisions:
        return self.decide_keys(self.keys(table))

    def decide_keys(self, keys: pa.Table) -> Decisions:
        columns = {name: keys.column(name).to_pylist() for name in self.columns}
        tokens = keys.column("tokens").to_pylist()
        return self.select_with_tokens(columns, tokens, keys.num_rows)

    def select_with_tokens(
        self, columns: dict[str, list[Any]], tokens: list[int], num_rows: int
    ) -> Decisions:
        groups = _by_domain(columns["domain"])
        decisions: Decisions = [None] * num_rows
        for domain, indices in groups.items():
            budget = self.budgets.get(domain, self.budget)
            if budget is None:
                continue
            used, full = 0, False
            for index in _ranked(indices, columns["record_id"], self.seed):
                # A prefix of the ranking: stopping at the first row that doesn't fit keeps
                # the kept rows a uniform sample, not one biased towards short responses.
                full = full or used + tokens[index] > budget
                if not full:
                    used += tokens[index]
                    continue
                decisions[index] = Drop(
                    RejectReason.DOMAIN_BALANCE,
                    {
                        "domain": domain,
                        "policy": self.name,
                        "budget": budget,
                        "tokens": tokens[index],
                    },
                )
        return decisions

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        return self.summarize_keys(self.keys(table), decisions)

    def summarize_keys(self, keys: pa.Table, decisions: Decisions) -> dict[str, Any]:
        summary = super().summarize(keys, decisions)
        domains = [domain_of(d) for d in keys.column("domain").to_pylist()]
        tokens = keys.column("tokens").to_pylist()
        before: Counter[str] = Counter()
        after: Counter[str] = Counter()
        for domain, n, decision in zip(domains, tokens, decisions, strict=True):
            before[domain] += n
            if decision is None:
                after[domain] += n
        summary["tokens_before"] = dict(sorted(before.items()))
        summary["tokens_after"] = {d: after.get(d, 0) for d in sorted(before)}
        return summary


class DomainTemperature(_Balance):
    """Down-sample to `total` rows, domain d getting a share p_d ∝ n_d^(1/T)."""

    name: Literal["domain_temperature"] = "domain_temperature"

    temperature: PositiveFloat = Field(
        2.0, description="1 keeps the current mix; larger flattens it towards uniform"
    )
    total: PositiveInt | None = Field(
        None, description="rows to keep; None: the most that needs no domain upsampled"
    )

    def keep_counts(self, groups: dict[str, list[int]]) -> dict[str, int]:
        sizes = {d: len(i) for d, i in groups.items()}
        return temperature_counts(sizes, self.temperature, self.total)["counts"]

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        summary = super().summarize(table, decisions)
        sizes = summary["domains_before"]
        plan = temperature_counts(sizes, self.temperature, self.total) if sizes else {}
        summary["probabilities"] = {
            d: round(p, 6) for d, p in plan.get("probabilities", {}).items()
        }
        return summary
