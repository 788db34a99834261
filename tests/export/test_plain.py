"""plain exports: a packed dataset decoded to list columns, a dataset again with its source as
parent; of a plain dataset, a verified copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distill.audit.verify import verify_dataset
from distill.codec import LOGPROB_BOUND, encode_table, pack_dataset
from distill.export import ExportConfig, export_dataset
from distill.schemas import PLAIN_TOPK_COLUMNS, RECORD_SCHEMA
from distill.store import DatasetError, load_manifest, read_table, sha256_file, shard_paths

PAYLOAD = {"topk_ids", "topk_logprobs", "tail_mass"}


def export_plain(source: Path, out: Path) -> pa.Table:
    export_dataset(source, ExportConfig(format="plain", out=out, batch_rows=7))
    return read_table(out)


def test_plain_of_plain_is_an_equal_copy_with_its_source_as_parent(
    plain_dataset: Path, tmp_path: Path
):
    out = tmp_path / "copy"
    table = export_plain(plain_dataset, out)
    assert table.equals(read_table(plain_dataset))
    manifest, source = load_manifest(out), load_manifest(plain_dataset)
    assert (manifest.codec, manifest.schema_version, manifest.kind) == ("plain", 1, "generated")
    assert manifest.parents[0].dataset_id == source.dataset_id
    assert manifest.parents[0].manifest_sha256 == sha256_file(plain_dataset / "manifest.json")
    assert manifest.dataset_id != source.dataset_id
    assert (out / "README.md").is_file()
    assert verify_dataset(out).ok, verify_dataset(out).problems


def test_gen_plain_pack_export_plain_round_trip(plain_dataset: Path, tmp_path: Path):
    """The packed codec is lossy in its log-probs (8-bit codes) and tail (float16), so the
    pre-pack log-probs come back within the codec's bound, ids and every other column equal;
    what is bit for bit: the export equals distill's own decode (`pack --codec plain`), and
    packing the export again gives the packed payload back byte for byte."""
    packed = plain_dataset.parent / "packed-rt"
    pack_dataset(plain_dataset, packed)
    exported = export_plain(packed, tmp_path / "plain")
    original = read_table(plain_dataset)
    assert exported.schema.equals(RECORD_SCHEMA)
    assert exported.schema.metadata == RECORD_SCHEMA.metadata
    for name in set(RECORD_SCHEMA.names) - PAYLOAD:
        assert exported.column(name).equals(original.column(name)), name
    assert exported.column("topk_ids").equals(original.column("topk_ids"))  # ids: exact
    got = np.concatenate(
        exported.column("topk_logprobs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    )
    want = np.concatenate(
        original.column("topk_logprobs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    )
    assert np.abs(got - want).max() <= LOGPROB_BOUND + 1e-6
    pack_dataset(packed, tmp_path / "decoded", codec="plain")
    assert exported.equals(read_table(tmp_path / "decoded"))
    # The source's shard boundaries are kept, so the export's shards are the decoded
    # ones byte for byte, and packing the export again gives the packed shards back.
    sha = [s.sha256 for s in load_manifest(tmp_path / "plain").shards]
    assert sha == [s.sha256 for s in load_manifest(tmp_path / "decoded").shards]
    pack_dataset(tmp_path / "plain", tmp_path / "repacked")
    repacked_sha = [s.sha256 for s in load_manifest(tmp_path / "repacked").shards]
    assert repacked_sha == [s.sha256 for s in load_manifest(packed).shards]
    repacked = encode_table(exported, "packed")
    packed_table = read_table(packed)
    for name in repacked.column_names:
        assert repacked.column(name).equals(packed_table.column(name)), name


def test_a_changed_source_shard_is_refused_and_nothing_is_left(plain_dataset: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    pack_dataset(plain_dataset, broken, codec="packed")
    shard = shard_paths(broken)[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256 differs"):
        export_dataset(broken, ExportConfig(format="chat", out=tmp_path / "chat.jsonl"))
    assert not any(tmp_path.glob("*chat.jsonl*"))


def test_plain_columns_are_the_plain_topk(packed_dataset: Path, tmp_path: Path):
    table = export_plain(packed_dataset, tmp_path / "p")
    assert [n for n in table.column_names if n in PAYLOAD] == PLAIN_TOPK_COLUMNS


def test_a_plain_export_run_again_redoes_its_job_and_refuses_another_dataset(
    packed_dataset: Path, plain_dataset: Path, tmp_path: Path
):
    out = tmp_path / "p"
    first = export_plain(packed_dataset, out)
    shard_bytes = [p.read_bytes() for p in shard_paths(out)]
    (out / "manifest.json").unlink()  # as a kill before the manifest would leave it
    again = export_plain(packed_dataset, out)
    assert again.equals(first)
    assert [p.read_bytes() for p in shard_paths(out)] == shard_bytes
    with pytest.raises(DatasetError, match="another"):
        export_dataset(plain_dataset, ExportConfig(format="plain", out=out))
    with pytest.raises(DatasetError, match="already holds a dataset"):
        export_dataset(packed_dataset, ExportConfig(format="plain", out=plain_dataset))
    with pytest.raises(DatasetError, match="must differ"):
        export_dataset(packed_dataset, ExportConfig(format="plain", out=packed_dataset))
