"""`distill verify`: every file of a dataset and of its lineage is what its manifest says.

For the dataset, its rejected rows (when curated) and every parent up the chain:
- each listed shard is there, its sha256 is the manifest's, its row count is the listed
  one (from the Parquet footer), and no unlisted shard sits beside them;
- the manifest's schema version is one this distill reads, and its `rows` count is the
  sum of its shards';
- each parent's manifest still has the sha256 its child recorded (an edited or replaced
  parent breaks the chain even when its own shards are consistent with it).

Nothing stops at the first problem: every missing or changed file is named, so a user
restores them in one go. Hashing streams each file; nothing is parsed but footers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from distill.schemas import LATEST_SCHEMA_VERSION, Manifest
from distill.store import DatasetError, load_manifest, sha256_file, shard_paths
from distill.store.lineage import ChainLink, lineage, manifest_sha256, rejected_path


@dataclass
class VerifyReport:
    """What was checked and what is wrong (an empty `problems` means all is well)."""

    datasets: list[Path] = field(default_factory=list)
    shards: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_shards(path: Path, manifest: Manifest, report: VerifyReport) -> None:
    listed = {shard.file for shard in manifest.shards}
    for shard in manifest.shards:
        file = path / shard.file
        report.shards += 1
        if not file.is_file():
            report.problems.append(f"{file}: listed in {path}/manifest.json but missing")
            continue
        if sha256_file(file) != shard.sha256:
            report.problems.append(f"{file}: sha256 differs from {path}/manifest.json")
            continue
        rows = pq.ParquetFile(file).metadata.num_rows
        if rows != shard.rows:
            report.problems.append(f"{file}: {rows} rows, manifest.json says {shard.rows}")
    for file in shard_paths(path):
        if str(file.relative_to(path)) not in listed:
            report.problems.append(f"{file}: not listed in {path}/manifest.json")
    total = sum(shard.rows for shard in manifest.shards)
    if manifest.counts.get("rows", total) != total:
        report.problems.append(
            f"{path}/manifest.json: counts.rows is {manifest.counts['rows']}, its shards hold "
            f"{total}"
        )
    if manifest.schema_version > LATEST_SCHEMA_VERSION:
        report.problems.append(
            f"{path}/manifest.json: schema_version {manifest.schema_version} is newer than "
            f"this distill reads ({LATEST_SCHEMA_VERSION})"
        )


def _check_link(link: ChainLink, report: VerifyReport) -> None:
    report.datasets.append(link.path)
    if link.via is not None and manifest_sha256(link.path) != link.via.manifest_sha256:
        report.problems.append(
            f"{link.path}/manifest.json: changed since a child dataset was made from it "
            f"(its sha256 is not the {link.via.manifest_sha256[:12]}... the child recorded)"
        )
    _check_shards(link.path, link.manifest, report)
    rejected = rejected_path(link.path, link.manifest)
    if rejected is not None:
        report.datasets.append(rejected)
        _check_shards(rejected, load_manifest(rejected), report)


def verify_dataset(dataset_dir: Path) -> VerifyReport:
    """Check `dataset_dir` and its whole lineage; see the module docstring."""
    report = VerifyReport()
    try:
        chain = lineage(Path(dataset_dir))
    except DatasetError as err:
        report.problems.append(str(err))
        return report
    for link in chain.links:
        _check_link(link, report)
    for child, parent in chain.missing:
        report.problems.append(
            f"{child}: parent dataset {parent.path} (id {parent.dataset_id}) not found"
        )
    return report
