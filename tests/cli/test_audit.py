"""`distill verify` and `distill sql` on the command line: exit codes, output files, errors."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.curate import curate_dataset
from distill.store import read_table, shard_paths
from distill.store.lineage import default_rejected_dir
from tests.factories import make_record, write_fake_dataset

runner = CliRunner()


@pytest.fixture
def curated(tmp_path: Path) -> Path:
    records = [make_record(row=i, response="Answer: B" if i % 3 else "Answer: C") for i in range(9)]
    write_fake_dataset(tmp_path / "gen", records)
    curate_dataset(tmp_path / "gen", tmp_path / "curated")
    return tmp_path / "curated"


def test_verify_passes_then_names_a_damaged_parent_shard(curated: Path) -> None:
    ok = runner.invoke(app, ["verify", str(curated)])
    assert ok.exit_code == 0 and "ok: 3 datasets" in ok.output
    shard = shard_paths(curated.parent / "gen")[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    bad = runner.invoke(app, ["verify", str(curated)])
    assert bad.exit_code == 1
    assert f"{shard}: sha256 differs" in bad.output


@pytest.mark.parametrize("output_format", ["csv", "json", "parquet"])
def test_sql_writes_each_format(curated: Path, tmp_path: Path, output_format: str) -> None:
    out = tmp_path / f"wrong.{output_format}"
    query = "SELECT record_id, reject_reason FROM rejected ORDER BY record_id"
    result = runner.invoke(
        app, ["sql", query, str(curated), "--format", output_format, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    want = sorted(read_table(default_rejected_dir(curated)).column("record_id").to_pylist())
    if output_format == "parquet":
        got = pq.read_table(out).column("record_id").to_pylist()
    elif output_format == "json":
        got = [json.loads(line)["record_id"] for line in out.read_text().splitlines()]
    else:
        got = [line.split(",")[0].strip('"') for line in out.read_text().splitlines()[1:]]
    # all 9 share one prompt: 7 exact and 1 near duplicate, and the survivor is wrong
    assert got == want and len(want) == 9


def test_sql_errors_are_one_line_with_exit_2(curated: Path, tmp_path: Path) -> None:
    bad_query = runner.invoke(app, ["sql", "SELEC 1", str(curated)])
    assert bad_query.exit_code == 2 and "query failed: Parser Error" in bad_query.output
    no_out = runner.invoke(app, ["sql", "SELECT 1", str(curated), "--format", "csv"])
    assert no_out.exit_code == 2 and "needs --out" in no_out.output
    shutil.rmtree(default_rejected_dir(curated))
    missing = runner.invoke(app, ["sql", "SELECT 1", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no manifest.json" in " ".join(missing.output.split())


def test_audit_prints_a_row_or_json_and_refuses_a_bad_where(curated: Path) -> None:
    row = read_table(default_rejected_dir(curated)).to_pylist()[0]
    shown = runner.invoke(app, ["audit", str(curated), row["record_id"]])
    assert shown.exit_code == 0, shown.output
    assert row["record_id"] in shown.output and row["reject_reason"] in shown.output
    as_json = runner.invoke(app, ["audit", str(curated), "--prompt-id", row["prompt_id"], "--json"])
    (parsed,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert parsed["rejection"]["reason"] == row["reject_reason"]
    bad = runner.invoke(app, ["audit", str(curated), "--where", "no_such_column = 1"])
    assert bad.exit_code == 2 and "--where failed" in bad.output
