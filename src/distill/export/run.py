"""`distill export`: a dataset's kept rows in a trainer's format, a batch at a time.

Formats:
- `chat`: OpenAI-style messages with the assistant turn (`distill.export.chat`), JSONL or
  Parquet, for SFT in TRL, axolotl or LLaMA-Factory;
- `axolotl-kd`: pre-tokenized rows with offline top-k targets for axolotl's KD plugin
  (`distill.export.axolotl_kd`, which states the contract), JSONL or Parquet;
- `plain`: a distill dataset again, its top-k decoded to plain list columns (a packed
  dataset's decode; a plain one's verified copy), with the source as its parent.

Rows are read with `iter_batches` (every shard checked against its sha256), so memory holds
one shard's bytes and one batch, whatever the dataset's size. Only the dataset's own rows
are read: a curated dataset's rejected rows only with `rejected=True`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from distill.codec.dataset import recode_shards
from distill.dataset_card import write_card
from distill.export.axolotl_kd import AXOLOTL_KD_SCHEMA, axolotl_kd_rows
from distill.export.chat import CHAT_SCHEMA, chat_rows
from distill.export.sinks import FileSink, write_lineage
from distill.locking import output_lock
from distill.rerun import claim_output, derived_dataset_id, job_key
from distill.schemas import CODECS, Manifest
from distill.store import (
    DEFAULT_BATCH_ROWS,
    DatasetError,
    iter_batches,
    load_manifest,
    parent_ref,
)
from distill.store.lineage import rejected_path

ExportFormat = Literal["chat", "plain", "axolotl-kd"]
FORMATS: tuple[str, ...] = ("chat", "plain", "axolotl-kd")
FILE_FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}


class ExportConfig(BaseModel):
    """What to export and how; every field is a `distill export` option."""

    model_config = ConfigDict(extra="forbid")
    format: ExportFormat = Field(description="chat | plain | axolotl-kd")
    out: Path = Field(description="the file (chat, axolotl-kd) or dataset directory (plain)")
    file_format: Literal["jsonl", "parquet"] | None = Field(
        None, description="jsonl | parquet; default: from OUT's extension"
    )
    batch_rows: int = Field(DEFAULT_BATCH_ROWS, ge=1, description="rows read at a time")
    rejected: bool = Field(False, description="export a curated dataset's rejected rows instead")


@dataclass(frozen=True)
class ExportResult:
    out: Path
    format: str
    rows: int
    lineage: Path | None  # the sidecar of a file export; None for a dataset


def _file_format(config: ExportConfig) -> str:
    if config.file_format:
        return config.file_format
    found = FILE_FORMATS.get(config.out.suffix.lower())
    if found is None:
        raise ValueError(
            f"--out {config.out}: end it in .jsonl or .parquet, or pass --as jsonl|parquet"
        )
    return found


def _source(dataset: Path, rejected: bool) -> tuple[Path, Manifest]:
    dataset = Path(dataset)
    manifest = load_manifest(dataset)
    if not rejected:
        return dataset, manifest
    found = rejected_path(dataset, manifest)
    if found is None:
        raise DatasetError(f"{dataset}: --rejected needs a curated dataset with its rejected rows")
    return found, load_manifest(found)


def export_dataset(dataset: Path, config: ExportConfig) -> ExportResult:
    """Write `dataset`'s rows to `config.out` in `config.format`.

    A file export refuses an existing OUT. A plain export, like `pack`, refuses an OUT that
    holds another dataset, and redoes its own job when run again (after a kill, too).
    """
    if config.out.exists() and (config.format != "plain" or not config.out.is_dir()):
        raise DatasetError(f"{config.out}: already exists; choose a new --out")
    source, manifest = _source(dataset, config.rejected)
    if config.format == "plain":
        if config.out.resolve() == source.resolve():
            raise DatasetError(f"{config.out}: the output must differ from the input dataset")
        with output_lock(config.out):
            return _export_plain(source, manifest, config)
    file_format = _file_format(config)
    convert, schema = {
        "chat": (chat_rows, CHAT_SCHEMA),
        "axolotl-kd": (axolotl_kd_rows, AXOLOTL_KD_SCHEMA),
    }[config.format]
    ref = parent_ref(source)
    lineage = {
        "format": config.format,
        "file_format": file_format,
        "source": {**ref.model_dump(), "kind": manifest.kind, "codec": manifest.codec},
    }
    with FileSink(config.out, file_format, schema, lineage) as sink:
        for batch in iter_batches(source, config.batch_rows):
            sink.write(convert(pa.Table.from_batches([batch])))
        # The sidecar first: a kill between the two leaves no export without its source.
        sidecar = write_lineage(config.out, lineage, sink.rows)
        sink.commit()
    return ExportResult(config.out, config.format, sink.rows, sidecar)


def _export_plain(source: Path, manifest: Manifest, config: ExportConfig) -> ExportResult:
    """The dataset with plain top-k columns: same rows and order, the source as parent."""
    key = job_key("export", source, {"format": "plain"})
    claim_output(config.out, "export", key, [config.out])
    # The source's shard boundaries kept: plain of plain is a copy, and packing the export
    # again gives the packed source back byte for byte.
    writer = recode_shards(
        source, manifest, config.out, "plain", verified=False, batch_rows=config.batch_rows
    )
    exported = manifest.model_copy(
        update={
            "schema_version": CODECS["plain"],
            "codec": "plain",
            # a rerun of the same export names the same dataset, as `pack` does
            "dataset_id": derived_dataset_id(key, manifest.kind),
            "parents": [parent_ref(source, config.out)],
            "params": {**manifest.params, "codec": "plain", "exported_from": manifest.codec},
        }
    )
    exported = writer.close(exported)
    write_card(config.out, exported)
    return ExportResult(config.out, "plain", exported.counts["rows"], None)
