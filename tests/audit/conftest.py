"""A real lineage to audit: SmolLM2 outputs (the fixture) -> curate -> pack, both codecs."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distill.codec import pack_dataset
from distill.curate import curate_dataset
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """gen (plain, 3 shards) -> curated (default recipe) -> packed copy of the curated rows."""
    root = tmp_path_factory.mktemp("chain")
    write_table_dataset(root / "gen", pq.read_table(FIXTURE), rows_per_shard=100)
    curate_dataset(root / "gen", root / "curated")
    pack_dataset(root / "curated", root / "packed")
    pack_dataset(root / "gen", root / "gen-packed")
    curate_dataset(root / "gen-packed", root / "curated-packed")
    return {p.name: p for p in root.iterdir()}
