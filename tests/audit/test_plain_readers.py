"""The plain columns are ordinary Parquet: DuckDB and Polars read a dataset's kept rows with
no distill code, as the README shows."""

from pathlib import Path

import duckdb
import polars as pl

from distill.store import read_table


def test_duckdb_and_polars_read_the_kept_rows(chain: dict[str, Path]) -> None:
    curated = chain["curated"]
    want = read_table(curated, columns=["record_id", "domain", "topk_ids"])
    glob = str(curated / "data" / "*.parquet")
    by_duckdb = duckdb.sql(f"SELECT record_id, domain, topk_ids FROM '{glob}'").to_arrow_table()
    by_polars = pl.scan_parquet(glob).select("record_id", "domain", "topk_ids").collect()
    assert by_duckdb.column("record_id").to_pylist() == want.column("record_id").to_pylist()
    assert by_polars["record_id"].to_list() == want.column("record_id").to_pylist()
    assert by_polars["topk_ids"].to_list() == want.column("topk_ids").to_pylist()
    counts = duckdb.sql(f"SELECT domain, count(*) n FROM '{glob}' GROUP BY ALL").fetchall()
    assert sum(n for _, n in counts) == want.num_rows
