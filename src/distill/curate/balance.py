"""Cap how many rows each domain keeps, so one large source can't swamp the mix.

Which rows survive is seeded and deterministic: rows are ranked by a hash of
(seed, record_id) and the first `cap` of each domain are kept. Ranking by hash rather
than by position means the cap doesn't favour whatever came first in the input, and
a row's fate doesn't depend on the other domains. Rows with no domain form "unknown".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt

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
