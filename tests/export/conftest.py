"""Datasets to export: real SmolLM2 rows (tests/fixtures/smollm2_mmlu.parquet) in both codecs,
in shards of 16 rows, so a 7-row batch crosses shard boundaries."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distill.codec import pack_dataset
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "smollm2_mmlu.parquet"


@pytest.fixture(scope="module")
def plain_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("source") / "plain"
    write_table_dataset(out, pq.read_table(FIXTURE).slice(0, 40), rows_per_shard=16)
    return out


@pytest.fixture(scope="module")
def packed_dataset(plain_dataset: Path) -> Path:
    out = plain_dataset.parent / "packed"
    pack_dataset(plain_dataset, out)
    return out


@pytest.fixture(params=["plain", "packed"])
def source(request: pytest.FixtureRequest, plain_dataset: Path, packed_dataset: Path) -> Path:
    return plain_dataset if request.param == "plain" else packed_dataset
