"""What a section of the report page is and what its builder is given: the shapes shared
by `page` (which assembles the page) and any module that adds a section to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from distill.report.distributions import Distributions


class PageOptions(BaseModel):
    """What the page samples and where it may find the tokenizer."""

    model_config = ConfigDict(extra="forbid")
    rows_per_group: int = Field(6, ge=0, description="rows shown for kept and per reject reason")
    max_tokens: int = Field(120, ge=1, description="response tokens shown per row")
    alternatives: int = Field(6, ge=1, description="top-k entries shown on hover")
    tokenizer_dirs: list[Path] = Field(default_factory=list, description="tried first")


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor (the `id` the table of contents links to), its
    heading, and its HTML (charts from `charts.svg`, tables, text)."""

    anchor: str
    title: str
    body: str  # HTML


@dataclass
class PageContext:
    """What every section builder reads: the collected report (`collect_report`), the
    options, the dataset the page shows, and its distributions, streamed once for all."""

    report: dict[str, Any]
    options: PageOptions
    dataset: dict[str, Any] | None = None  # the curated (else generated) entry the page shows
    distributions: Distributions | None = None
