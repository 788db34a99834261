"""Export files written a batch at a time, and the lineage that names their source.

A file export (JSONL or Parquet) is written to a temporary name beside PATH and renamed
when complete, so a failed or killed export leaves no half file under PATH (and the next
export to PATH removes a killed one's temporary). Its lineage goes
into `PATH.lineage.json`, and for Parquet into the schema metadata too (`distill.export`):
the source dataset's id, path and manifest sha256, the format and the row count. Nothing of
the source's settings is copied, so nothing secret can leak into it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill.store import write_json
from distill.store.files import temporary

LINEAGE_SUFFIX = ".lineage.json"


def lineage_path(out: Path) -> Path:
    return out.with_name(out.name + LINEAGE_SUFFIX)


class FileSink:
    """Rows appended as Arrow tables, written as JSON Lines or Parquet; `commit` renames."""

    def __init__(self, out: Path, file_format: str, schema: pa.Schema, lineage: dict[str, Any]):
        self.out, self.file_format, self.rows = Path(out), file_format, 0
        self.out.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.out.parent.glob(f".{self.out.name}.*.tmp"):  # a killed export's
            stale.unlink()
        self.tmp = temporary(self.out)
        if file_format == "parquet":
            metadata = {b"distill.export": json.dumps(lineage, sort_keys=True).encode()}
            self.parquet: pq.ParquetWriter | None = pq.ParquetWriter(
                self.tmp, schema.with_metadata(metadata), compression="zstd"
            )
            self.jsonl = None
        else:
            self.parquet = None
            self.jsonl = self.tmp.open("w", encoding="utf-8")

    def write(self, rows: pa.Table) -> None:
        self.rows += rows.num_rows
        if self.parquet is not None:
            self.parquet.write_table(rows.replace_schema_metadata(self.parquet.schema.metadata))
            return
        assert self.jsonl is not None
        self.jsonl.writelines(
            json.dumps(row, ensure_ascii=False) + "\n" for row in rows.to_pylist()
        )

    def _close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        elif self.jsonl is not None:
            self.jsonl.flush()
            os.fsync(self.jsonl.fileno())
            self.jsonl.close()

    def commit(self) -> None:
        self._close()
        os.replace(self.tmp, self.out)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:  # the export failed: leave nothing behind
            self._close()
            self.tmp.unlink(missing_ok=True)


def write_lineage(out: Path, lineage: dict[str, Any], rows: int) -> Path:
    path = lineage_path(out)
    write_json(path, {**lineage, "rows": rows, "file": out.name})
    return path
