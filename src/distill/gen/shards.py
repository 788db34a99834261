"""Writing a gen (or score) output shard by shard, so a crash loses at most one shard."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from distill.codec import encode_table
from distill.gen.id_hashes import KeySet, keys_of
from distill.schemas import Manifest, ShardInfo, TeacherRecord, records_to_table, schema_for
from distill.store import iter_batches, save_manifest, write_shard

MANIFEST_EVERY_SHARD_UP_TO = 256  # shards; past that the manifest is rewritten at most
MANIFEST_EVERY_S = 30.0  # every 30 s (see ShardWriter._checkpoint)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class ShardWriter:
    """Buffers records and writes a shard (then rewrites the manifest) every `shard_size`,
    so a crash loses at most one shard's worth of work; `finish` flushes the rest, writes
    the final manifest and checks that no record id appears twice. Shared by gen and score.
    """

    def __init__(
        self,
        out_dir: Path,
        codec: str,
        shard_size: int,
        manifest: Callable[[], Manifest],
        shards: list[ShardInfo] | None = None,
    ) -> None:
        self.out_dir, self.codec, self.shard_size = out_dir, codec, shard_size
        self.manifest = manifest  # builds the manifest from the shards on disk
        self.shards = shards  # the shards on disk, if the caller tracks them: each new one added
        self.pending: list[TeacherRecord] = []
        self.written = 0
        self.saved_at = time.monotonic()

    def add(self, records: list[TeacherRecord]) -> None:
        self.pending.extend(records)
        if len(self.pending) >= self.shard_size:
            self._flush()
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Rewrite the manifest after each shard while it is short, then at most every
        `MANIFEST_EVERY_S`: it lists every shard, so rewriting it after each one would cost
        time quadratic in the run's length. A shard written after the last manifest is
        still found and resumed from (`distill.gen.resume.existing_record_ids`); `finish`
        writes the complete one."""
        shards = len(self.shards) if self.shards is not None else 0
        now = time.monotonic()
        if shards <= MANIFEST_EVERY_SHARD_UP_TO or now - self.saved_at >= MANIFEST_EVERY_S:
            save_manifest(self.out_dir, self.manifest())
            self.saved_at = now

    def _flush(self) -> None:
        if self.pending:
            table = encode_table(records_to_table(self.pending), self.codec)
            info = write_shard(self.out_dir, table, schema_for(self.codec))
            if self.shards is not None:
                self.shards.append(info)
            self.written += len(self.pending)
            self.pending = []

    def finish(self) -> Manifest:
        self._flush()
        final = self.manifest()
        save_manifest(self.out_dir, final)
        assert_unique_ids(self.out_dir)
        return final


def assert_unique_ids(out_dir: Path) -> None:
    """No record id twice in the output: checked on their 128-bit hashes (16 bytes a row),
    the ids read a batch at a time."""
    batches = iter_batches(out_dir, columns=["record_id"], verify=False)
    keys = KeySet.concat([keys_of(batch.column(0).to_pylist()) for batch in batches])
    if keys.duplicates():
        raise RuntimeError(f"{out_dir}: duplicate record ids after generation (a bug; report it)")
