"""The manifest that travels with every dataset directory (`manifest.json`).

Training reads it to refuse a student whose tokenizer differs from the teacher's;
`distill report` reads it to show where every row came from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from distill.schemas.records import TeacherInfo

DatasetKind = Literal["generated", "curated", "rejected", "invalid"]


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = Field(description="path relative to the dataset directory")
    rows: int
    sha256: str


class ParentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="the parent's absolute path when the child was made")
    dataset_id: str
    manifest_sha256: str = Field(description="sha256 of the parent's manifest.json, then")
    relative_path: str | None = Field(
        None, description="the parent's path relative to the child's directory"
    )


class TokenizerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokenizer_hash: str
    vocab_size: int
    chat_template_hash: str
    special_tokens: dict[str, str | None] = Field(default_factory=dict)


class LicenseInfo(BaseModel):
    """The licence and terms that apply to one source of a dataset: a prompt file or a teacher.

    Distillation passes a teacher's outputs into a student, so a dataset carries the terms
    of every teacher that wrote it as well as its prompts' licence; unknown is recorded as
    None, never guessed.
    """

    model_config = ConfigDict(extra="forbid")
    source: Literal["prompts", "teacher"]
    name: str = Field(description="the prompt file's path, or the teacher id")
    license: str | None = Field(None, description="an SPDX identifier; None: unknown")
    terms: str | None = Field(None, description="URL of the terms of use, if any")
    sha256: str | None = Field(None, description="the prompt file's sha256 when gen read it")
    restricts_competing_models: bool | None = Field(
        None,
        description="whether the terms forbid training models that compete with the teacher's "
        "maker on its outputs; None: unknown",
    )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int
    targets: Literal["topk", "sampled"] = Field(
        "topk",
        description="what the top-k columns hold: the teacher's k most likely ids (topk) or "
        "k draws with importance weights (sampled, distill.teachers.sampled_targets); describes "
        "the data, so curation and packing carry it to their outputs",
    )
    codec: Literal["plain", "packed"] = Field(
        "plain",
        description="how the shards store the top-k: plain lists (schema 1) or packed (schema 2)",
    )
    kind: DatasetKind
    dataset_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    teachers: list[TeacherInfo] = Field(default_factory=list)
    tokenizer: TokenizerInfo | None = None
    top_k: int | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="the job's settings")
    counts: dict[str, int] = Field(default_factory=dict)
    shards: list[ShardInfo] = Field(default_factory=list)
    parents: list[ParentRef] = Field(default_factory=list)
    run_ids: list[str] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list, description="curation steps")
    stats: dict[str, Any] = Field(
        default_factory=dict, description="results that are not counts, e.g. domains_before"
    )
    licenses: list[LicenseInfo] = Field(
        default_factory=list, description="prompts' and teachers' licences, carried downstream"
    )
