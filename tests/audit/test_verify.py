"""`verify_dataset` names every missing or changed file up the lineage, and passes a sound one."""

import json
import shutil
from pathlib import Path

import pytest

from distill.audit.verify import verify_dataset
from distill.curate import curate_dataset
from distill.store import shard_paths
from distill.store.lineage import default_rejected_dir
from tests.factories import make_record, write_fake_dataset


@pytest.fixture
def copy(chain: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A private copy of the tree (the links follow a moved tree by folder name)."""
    names = ("gen", "curated", "curated-rejected", "packed")
    for name in names:
        shutil.copytree(chain[name], tmp_path / name)
    return {name: tmp_path / name for name in names}


def test_a_sound_lineage_passes_with_every_dataset_checked(copy: dict[str, Path]) -> None:
    report = verify_dataset(copy["packed"])
    assert report.ok, report.problems
    names = [p.name for p in report.datasets]
    assert names == ["packed", "curated", "curated-rejected", "gen"]
    assert report.shards == sum(len(shard_paths(p)) for p in report.datasets)


def test_a_flipped_byte_in_a_grandparent_shard_is_named(copy: dict[str, Path]) -> None:
    shard = shard_paths(copy["gen"])[1]
    data = bytearray(shard.read_bytes())
    data[100] ^= 0x04
    shard.write_bytes(bytes(data))
    problems = verify_dataset(copy["packed"]).problems
    assert problems == [f"{shard}: sha256 differs from {copy['gen']}/manifest.json"]


def test_a_removed_shard_and_an_unlisted_one_are_both_named(copy: dict[str, Path]) -> None:
    removed = shard_paths(default_rejected_dir(copy["curated"]))[0]
    removed.unlink()
    extra = copy["packed"] / "data" / "part-00099.parquet"
    shutil.copy(shard_paths(copy["packed"])[0], extra)
    problems = verify_dataset(copy["packed"]).problems
    assert f"{extra}: not listed in {copy['packed']}/manifest.json" in problems
    assert any(p.startswith(f"{removed}: listed in") and "missing" in p for p in problems)
    assert len(problems) == 2


def test_an_edited_parent_manifest_breaks_the_chain(copy: dict[str, Path]) -> None:
    path = copy["curated"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["counts"]["kept"] += 1  # a consistent-looking edit: shards still match
    path.write_text(json.dumps(manifest, indent=2))
    problems = verify_dataset(copy["packed"]).problems
    assert len(problems) == 1 and problems[0].startswith(f"{path}: changed since a child")
    assert verify_dataset(copy["curated"]).ok  # on its own, the edited dataset is consistent


def test_a_missing_parent_is_named(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "gen", [make_record(row=i) for i in range(4)])
    curate_dataset(tmp_path / "gen", tmp_path / "curated")
    assert verify_dataset(tmp_path / "curated").ok
    shutil.rmtree(tmp_path / "gen")
    problems = verify_dataset(tmp_path / "curated").problems
    assert len(problems) == 1 and "parent dataset" in problems[0] and "not found" in problems[0]
