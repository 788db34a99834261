"""`distill pack` on Ray (one task per shard) writes the local pack's bytes, both ways:
every shard, the manifest and the dataset card, on 300 real SmolLM2 rows in 3 shards."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from distill.codec import pack_dataset
from distill.engine import EngineConfig
from distill.store import load_manifest
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "smollm2_mmlu.parquet"


def dataset_bytes(dataset_dir: Path) -> dict[str, bytes]:
    """Every file of a dataset (shards, manifest, card) by its relative path."""
    return {
        str(path.relative_to(dataset_dir)): path.read_bytes()
        for path in sorted(dataset_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def test_ray_pack_is_byte_identical_to_local_pack_both_ways(tmp_path: Path, ray_cluster) -> None:
    plain = tmp_path / "plain"
    write_table_dataset(plain, pq.read_table(FIXTURE), rows_per_shard=100)
    for codec, source in [("packed", plain), ("plain", tmp_path / "local-packed")]:
        outputs = {}
        for engine in ("local", "ray"):
            out = tmp_path / f"{engine}-{codec}"
            result = pack_dataset(source, out, codec, EngineConfig(kind=engine))
            assert result.rows == 300
            outputs[engine] = dataset_bytes(out)
        assert [s.rows for s in load_manifest(out).shards] == [100, 100, 100]
        assert sorted(outputs["ray"]) == sorted(outputs["local"])
        assert "manifest.json" in outputs["ray"] and "data/part-00002.parquet" in outputs["ray"]
        for name, data in outputs["local"].items():
            assert outputs["ray"][name] == data, f"{codec}: {name} differs"
