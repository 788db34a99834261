"""What a training run was trained on: `OUT/lineage.json`, written by `distill train`.

It pins the dataset by content (its id, the sha256 of its manifest and of every shard), so
an audit can tell which runs saw a given row, and that their data has not changed since:
a run used a row when the row is in its dataset and the row's prompt is not among the
run's held-out prompts. It also carries the licences of every source up the dataset's
lineage (prompts and teachers), which the run's model card (`distill.model_card`) prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from distill.dataset_card import lineage_licenses
from distill.schemas import LicenseInfo
from distill.store import MANIFEST_NAME, load_manifest, sha256_file, write_json

LINEAGE_NAME = "lineage.json"


class RunLineage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_dir: str
    dataset: str = Field(description="the dataset's path when the run started")
    dataset_id: str
    manifest_sha256: str
    shard_sha256: list[str]
    parents: list[str] = Field(default_factory=list, description="the dataset's parents' ids")
    mode: str
    heldout_prompt_ids: list[str]
    train_rows: int
    config: dict[str, Any] = Field(default_factory=dict)
    teachers: list[str] = Field(default_factory=list, description="the dataset's teacher ids")
    licenses: list[LicenseInfo] = Field(
        default_factory=list, description="of every source up the dataset's lineage"
    )


def write_run_lineage(
    out_dir: Path,
    dataset_dir: Path,
    mode: str,
    heldout_prompt_ids: list[str],
    train_rows: int,
    config: dict[str, Any],
) -> RunLineage:
    manifest = load_manifest(dataset_dir)
    lineage = RunLineage(
        run_dir=str(Path(out_dir).resolve()),
        dataset=str(Path(dataset_dir).resolve()),
        dataset_id=manifest.dataset_id,
        manifest_sha256=sha256_file(Path(dataset_dir) / MANIFEST_NAME),
        shard_sha256=[shard.sha256 for shard in manifest.shards],
        parents=[parent.dataset_id for parent in manifest.parents],
        mode=mode,
        heldout_prompt_ids=sorted(heldout_prompt_ids),
        train_rows=train_rows,
        config=config,
        teachers=[teacher.teacher_id for teacher in manifest.teachers],
        licenses=lineage_licenses(dataset_dir),
    )
    write_json(Path(out_dir) / LINEAGE_NAME, lineage.model_dump(mode="json"))
    return lineage


def read_run_lineage(run_dir: Path) -> RunLineage | None:
    path = Path(run_dir) / LINEAGE_NAME
    if not path.is_file():
        return None
    return RunLineage.model_validate_json(path.read_text())
