"""What every export shares: lineage back to the source, streaming, kept or rejected rows,
and the CLI's one-line errors (one message, wrapped only by the console's width)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import distill.codec.dataset as codec_dataset
import distill.export.run as export_run
import distill.store.read as store_read
from distill.cli import app
from distill.curate import curate_dataset, default_recipe
from distill.export import ExportConfig, export_dataset, lineage_path
from distill.store import load_manifest, read_table, sha256_file

runner = CliRunner()


@pytest.mark.parametrize("fmt", ["chat", "axolotl-kd"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_file_exports_name_their_source(source: Path, tmp_path: Path, fmt: str, suffix: str):
    out = tmp_path / f"out{suffix}"
    result = export_dataset(source, ExportConfig(format=fmt, out=out))
    sidecar = json.loads(lineage_path(out).read_text())
    manifest = load_manifest(source)
    assert result.lineage == lineage_path(out) == tmp_path / f"out{suffix}.lineage.json"
    assert sidecar["format"] == fmt and sidecar["rows"] == 40 and sidecar["file"] == out.name
    assert sidecar["source"]["dataset_id"] == manifest.dataset_id
    assert sidecar["source"]["manifest_sha256"] == sha256_file(source / "manifest.json")
    assert sidecar["source"]["path"] == str(source.resolve())
    assert sidecar["source"]["codec"] == manifest.codec
    if suffix == ".parquet":
        embedded = json.loads(pq.read_schema(out).metadata[b"distill.export"])
        assert embedded == {k: v for k, v in sidecar.items() if k not in ("rows", "file")}
        assert pq.ParquetFile(out).metadata.num_rows == 40


@pytest.mark.parametrize("fmt", ["chat", "axolotl-kd", "plain"])
def test_exports_stream_a_batch_at_a_time(
    packed_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    def whole_table(*args: object, **kwargs: object) -> None:
        raise AssertionError("an export read a whole dataset or shard into memory")

    monkeypatch.setattr(store_read, "read_table", whole_table)
    monkeypatch.setattr(store_read, "read_shard", whole_table)
    sizes: list[int] = []
    real = export_run.iter_batches

    def counted(*args: object, **kwargs: object):
        for batch in real(*args, **kwargs):  # type: ignore[arg-type]
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(export_run, "iter_batches", counted)
    real_shard = codec_dataset.shard_batches  # plain keeps the source's shards: read by shard

    def counted_shard(*args: object, **kwargs: object):
        for batch in real_shard(*args, **kwargs):  # type: ignore[arg-type]
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(codec_dataset, "shard_batches", counted_shard)
    out = tmp_path / ("out" if fmt == "plain" else "out.jsonl")
    assert (
        export_dataset(packed_dataset, ExportConfig(format=fmt, out=out, batch_rows=5)).rows == 40
    )
    assert sum(sizes) == 40 and max(sizes) == 5 and len(sizes) >= 8


def test_kept_rows_by_default_rejected_rows_on_request(plain_dataset: Path, tmp_path: Path):
    curated = curate_dataset(plain_dataset, tmp_path / "curated", default_recipe())
    kept, dropped = read_table(curated.kept_dir), read_table(curated.rejected_dir)
    assert kept.num_rows and dropped.num_rows  # 4 samples per prompt: dedup drops some
    export_dataset(curated.kept_dir, ExportConfig(format="chat", out=tmp_path / "kept.jsonl"))
    rejected_out = tmp_path / "rejected.jsonl"
    export_dataset(curated.kept_dir, ExportConfig(format="chat", out=rejected_out, rejected=True))
    ids = [json.loads(line)["record_id"] for line in (tmp_path / "kept.jsonl").open()]
    assert ids == kept.column("record_id").to_pylist()
    ids = [json.loads(line)["record_id"] for line in rejected_out.open()]
    assert ids == dropped.column("record_id").to_pylist()
    sidecar = json.loads(lineage_path(rejected_out).read_text())
    assert sidecar["source"]["dataset_id"] == load_manifest(curated.rejected_dir).dataset_id
    plain_rejected = tmp_path / "rejected-plain"
    export_dataset(
        curated.kept_dir, ExportConfig(format="plain", out=plain_rejected, rejected=True)
    )
    assert read_table(plain_rejected).equals(dropped)  # with their reasons
    assert load_manifest(plain_rejected).kind == "rejected"


def test_cli_export_writes_and_reports(plain_dataset: Path, tmp_path: Path):
    out = tmp_path / "chat.parquet"
    result = runner.invoke(
        app, ["export", str(plain_dataset), "--format", "chat", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "40 rows (chat)" in result.output
    assert pq.read_table(out).num_rows == 40


def test_export_help_documents_every_option():
    result = runner.invoke(app, ["export", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--format", "--out", "--as", "--batch-rows", "--rejected"):
        assert option in result.output
    assert "default: 1024" in result.output or "[default: 1024]" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "alpaca", "--out", "x.jsonl"], "--format 'alpaca': use one of"),
        (["--format", "chat", "--out", "x.txt"], "end it in .jsonl or .parquet"),
        (["--format", "chat", "--out", "x.jsonl", "--as", "csv"], "--as 'csv'"),
        (["--format", "chat", "--out", "exists.jsonl"], "already exists"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    plain_dataset: Path, tmp_path: Path, args: list[str], message: str
):
    (tmp_path / "exists.jsonl").write_text("{}\n")
    args = [str(tmp_path / a) if a.startswith(("x.", "exists")) else a for a in args]
    result = runner.invoke(app, ["export", str(plain_dataset), *args], terminal_width=400)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # the console wraps at its own width
    assert said.startswith("error: ") and said.count("error") == 1, said
    assert message in said and "Traceback" not in said
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.txt").exists()


def test_not_a_dataset_is_one_line_and_exit_2(tmp_path: Path):
    out = tmp_path / "x.jsonl"
    result = runner.invoke(
        app, ["export", str(tmp_path), "--format", "chat", "--out", str(out)], terminal_width=400
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert said.startswith("error: ") and "no manifest.json" in said and "Traceback" not in said
    assert not out.exists()


def test_a_killed_file_export_leaves_no_file_and_the_next_clears_its_temporary(
    plain_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "chat.jsonl"

    def killed(*args: object, **kwargs: object):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(export_run, "chat_rows", killed)
        with pytest.raises(KeyboardInterrupt):
            export_dataset(plain_dataset, ExportConfig(format="chat", out=out))
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / ".chat.jsonl.0badf00d.tmp"  # what a kill -9 would leave
    stale.write_text("half a row")
    export_dataset(plain_dataset, ExportConfig(format="chat", out=out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl", "chat.jsonl.lineage.json"]
