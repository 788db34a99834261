"""Every reader checks the shards against the manifest's sha256: a truncated or bit-flipped
shard stops the run with the file's name and what to do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from distill.codec import pack_dataset
from distill.curate import curate_dataset
from distill.gen.resume import existing_record_ids
from distill.gen.score_inputs import load_dataset_responses
from distill.report import collect_report
from distill.store import (
    DatasetError,
    iter_batches,
    load_manifest,
    read_table,
    shard_paths,
    verify_shards,
)
from distill.train import StudentMismatch, TrainConfig, train_student
from tests.factories import make_record, write_fake_dataset


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x04  # inside the column data: Parquet itself may not notice
    path.write_bytes(bytes(data))


DAMAGE = {"truncated": (truncate, "no Parquet footer"), "bit-flipped": (flip_bit, "changed")}

READERS: dict[str, Callable[[Path, Path], object]] = {
    "read_table": lambda src, out: read_table(src),
    "iter_batches": lambda src, out: list(iter_batches(src)),
    "verify_shards": lambda src, out: verify_shards(src, load_manifest(src)),
    "curate": lambda src, out: curate_dataset(src, out),
    "pack": lambda src, out: pack_dataset(src, out),
    "score": lambda src, out: load_dataset_responses(src, "tok0"),
    "train": lambda src, out: train_student(src, out, TrainConfig(mode="kd", max_steps=1)),
    "report": lambda src, out: collect_report([src]),
    "gen-resume": lambda src, out: existing_record_ids(src, load_manifest(src)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("reader", list(READERS))
def test_a_damaged_shard_stops_every_reader(reader: str, damage: str, tmp_path: Path) -> None:
    src = tmp_path / "gen"
    write_fake_dataset(src, [make_record(row=i, n_tokens=40) for i in range(8)])
    with contextlib.suppress(StudentMismatch):  # train: the fake teacher's vocab, after reading
        READERS[reader](src, tmp_path / "ok")  # intact: reads
    shard = shard_paths(src)[0]
    corrupt, hint = DAMAGE[damage]
    corrupt(shard)
    with pytest.raises(DatasetError) as err:
        READERS[reader](src, tmp_path / "out")
    message = str(err.value)
    assert message.startswith(str(shard)) and "sha256 differs" in message and hint in message
    assert "re-run the command that wrote" in message and "\n" not in message
    assert not shard_paths(tmp_path / "out")  # nothing written from damaged data


def test_shards_missing_from_or_unknown_to_the_manifest_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "gen"
    write_fake_dataset(src, [make_record(row=0)])
    extra = src / "data" / "part-00001.parquet"
    extra.write_bytes(shard_paths(src)[0].read_bytes())  # a killed writer's newer shard
    with pytest.raises(DatasetError, match=r"not listed in .*has not finished"):
        read_table(src)
    assert read_table(src, verify=False).num_rows == 2  # the writer itself may read it
    extra.unlink()
    shard_paths(src)[0].unlink()
    with pytest.raises(DatasetError, match=r"listed in manifest\.json but missing"):
        read_table(src)
    assert len(existing_record_ids(src, load_manifest(src))) == 0  # gen: rows made again
