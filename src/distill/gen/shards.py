"""Writing a gen (or score) output shard by shard, so a crash loses at most one shard."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc

from distill.codec import encode_table
from distill.schemas import Manifest, TeacherRecord, records_to_table, schema_for
from distill.store import read_table, save_manifest, write_shard


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class ShardWriter:
    """Buffers records and writes a shard (then rewrites the manifest) every `shard_size`,
    so a crash loses at most one shard's worth of work; `finish` flushes the rest, writes
    the final manifest and checks that no record id appears twice. Shared by gen and score.
    """

    def __init__(
        self, out_dir: Path, codec: str, shard_size: int, manifest: Callable[[], Manifest]
    ) -> None:
        self.out_dir, self.codec, self.shard_size = out_dir, codec, shard_size
        self.manifest = manifest  # builds the manifest from the shards on disk
        self.pending: list[TeacherRecord] = []
        self.written = 0

    def add(self, records: list[TeacherRecord]) -> None:
        self.pending.extend(records)
        if len(self.pending) >= self.shard_size:
            self._flush()
            save_manifest(self.out_dir, self.manifest())

    def _flush(self) -> None:
        if self.pending:
            table = encode_table(records_to_table(self.pending), self.codec)
            write_shard(self.out_dir, table, schema_for(self.codec))
            self.written += len(self.pending)
            self.pending = []

    def finish(self) -> Manifest:
        self._flush()
        final = self.manifest()
        save_manifest(self.out_dir, final)
        assert_unique_ids(self.out_dir)
        return final


def assert_unique_ids(out_dir: Path) -> None:
    ids = read_table(out_dir, columns=["record_id"], verify=False).column("record_id")
    if len(pc.unique(ids)) != len(ids):
        raise RuntimeError(f"{out_dir}: duplicate record ids after generation (a bug; report it)")
