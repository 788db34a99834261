"""What a curation run reports per step and per domain (the manifest's `steps` and stats)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StepStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str
    params: dict[str, Any] = Field(default_factory=dict)
    input: int
    kept: int
    dropped: dict[str, int] = Field(default_factory=dict, description="reason -> rows")
    seconds: float
    summary: dict[str, Any] = Field(default_factory=dict, description="e.g. accuracy_by_domain")


class DomainAccuracy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graded: int
    correct: int
    accuracy: float
