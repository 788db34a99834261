"""curate's two outputs are sibling datasets, so the common readers of the kept folder
(`datasets.load_dataset`, a DuckDB or Polars recursive glob) get exactly the kept rows, and
the same readers of `OUT-rejected` exactly the dropped ones. Old datasets (`OUT/rejected`)
still read, move out with `migrate_rejected_layout`, and a rerun of curate moves them too."""

import json
import shutil
from pathlib import Path

import datasets
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from distill.audit.verify import verify_dataset
from distill.curate import curate_dataset
from distill.curate.layout import migrate_rejected_layout
from distill.curate.recipe import recipe_from_dict
from distill.store import DatasetError, load_manifest, read_table, save_manifest
from distill.store.lineage import default_rejected_dir, rejected_path
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
RECIPE = recipe_from_dict({"steps": [{"name": "truncated"}, {"name": "mcq_verify"}]})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    write_table_dataset(root / "gen", pq.read_table(FIXTURE), rows_per_shard=100)
    return root / "gen"


@pytest.fixture(scope="module")
def curated(source: Path) -> Path:
    curate_dataset(source, source.parent / "curated", RECIPE)
    return source.parent / "curated"


def _ids(dataset: Path) -> list[str]:
    return read_table(dataset, columns=["record_id"]).column(0).to_pylist()


def test_common_readers_get_exactly_the_kept_rows(curated: Path, tmp_path: Path) -> None:
    rejected = Path(f"{curated}-rejected")
    assert (rejected / "manifest.json").is_file() and not (curated / "rejected").exists()
    cache = str(tmp_path / "hf-cache")
    for folder in (curated, rejected):
        want = _ids(folder)
        assert 0 < len(want) < load_manifest(curated).counts["input"]  # both hold some rows
        glob = f"{folder}/**/*.parquet"
        by_duckdb = [r for (r,) in duckdb.sql(f"SELECT record_id FROM '{glob}'").fetchall()]
        by_polars = pl.scan_parquet(glob).select("record_id").collect()["record_id"].to_list()
        loaded = datasets.load_dataset(str(folder), split="train", cache_dir=cache)
        assert sorted(by_duckdb) == sorted(by_polars) == sorted(loaded["record_id"])
        assert sorted(by_duckdb) == sorted(want)
    # the kept card's second config reads the sibling
    dropped = datasets.load_dataset(str(curated), "rejected", split="train", cache_dir=cache)
    assert dropped["record_id"] == _ids(rejected)
    assert set(dropped["reject_step"]) <= {"truncated", "mcq_verify"}


def test_each_output_records_the_other_relative_to_itself(curated: Path) -> None:
    kept, dropped = load_manifest(curated), load_manifest(default_rejected_dir(curated))
    assert kept.params["rejected_dir"] == "../curated-rejected"
    assert dropped.params["kept_dir"] == "../curated"
    assert rejected_path(curated, kept) == default_rejected_dir(curated)
    assert verify_dataset(curated).ok


def test_rejected_out_puts_them_elsewhere_and_a_rerun_clears_both(
    source: Path, tmp_path: Path
) -> None:
    out, elsewhere = tmp_path / "kept", tmp_path / "audit" / "dropped"
    first = curate_dataset(source, out, RECIPE, rejected_dir=elsewhere)
    assert first.rejected_dir == elsewhere and not default_rejected_dir(out).exists()
    assert load_manifest(out).params["rejected_dir"] == "../audit/dropped"
    assert rejected_path(out, load_manifest(out)) == elsewhere
    shards = {p.name: p.read_bytes() for p in (elsewhere / "data").iterdir()}
    (elsewhere / "data" / "part-00000.parquet").write_bytes(b"torn")  # a killed run's leftovers
    curate_dataset(source, out, RECIPE, rejected_dir=elsewhere)  # the same job: redone
    assert {p.name: p.read_bytes() for p in (elsewhere / "data").iterdir()} == shards
    with pytest.raises(DatasetError, match="other than --out"):
        curate_dataset(source, out, RECIPE, rejected_dir=out)
    with pytest.raises(DatasetError, match="must differ from the input"):
        curate_dataset(source, tmp_path / "x", RECIPE, rejected_dir=source)
    other = recipe_from_dict({"steps": [{"name": "truncated"}]})
    with pytest.raises(DatasetError, match="another `distill curate`"):
        curate_dataset(source, tmp_path / "y", other, rejected_dir=elsewhere)


def _as_old_layout(source: Path, out: Path) -> None:
    """A curated dataset as curate wrote it before: `OUT/rejected`, linked as "rejected"."""
    curate_dataset(source, out, RECIPE)
    shutil.move(default_rejected_dir(out), out / "rejected")
    links = [(out, "rejected_dir", "rejected"), (out / "rejected", "kept_dir", "..")]
    for path, key, link in links:
        manifest = load_manifest(path)
        save_manifest(path, manifest.model_copy(update={"params": {**manifest.params, key: link}}))
    (out / "rejected" / ".distill-job.json").unlink()
    (out / "rejected" / "README.md").unlink()


def test_an_old_layout_reads_and_migrates_in_place(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "curated"
    _as_old_layout(source, out)
    want = _ids(out / "rejected")
    assert rejected_path(out, load_manifest(out)) == out / "rejected"  # read as before
    kept_bytes = (out / "manifest.json").read_bytes()
    moved = migrate_rejected_layout(out)
    assert moved == default_rejected_dir(out) and not (out / "rejected").exists()
    assert (out / "manifest.json").read_bytes() == kept_bytes  # children's hashes still hold
    assert rejected_path(out, load_manifest(out)) == moved and _ids(moved) == want
    assert load_manifest(moved).params["kept_dir"] == "../curated"
    assert verify_dataset(out).ok
    front = (out / "README.md").read_text().split("---\n")[1]
    assert "../curated-rejected/data/*.parquet" in front
    assert migrate_rejected_layout(out) is None  # nothing left to move
    curate_dataset(source, out, RECIPE)  # a rerun of the same job recognises both folders
    assert _ids(moved) == want


def test_a_rerun_of_an_old_layout_job_writes_the_new_layout(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "curated"
    _as_old_layout(source, out)
    want = _ids(out / "rejected")
    curate_dataset(source, out, RECIPE)
    assert not (out / "rejected").exists()
    assert _ids(default_rejected_dir(out)) == want
    job = json.loads((out / ".distill-job.json").read_text())
    assert json.loads((default_rejected_dir(out) / ".distill-job.json").read_text()) == job


def test_the_cli_takes_rejected_out(source: Path, curated: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distill.cli import app

    out, dropped = tmp_path / "kept", tmp_path / "dropped"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("steps:\n  - name: truncated\n  - name: mcq_verify\n")
    args = ["curate", str(source), "--out", str(out), "--rejected-out", str(dropped)]
    result = CliRunner().invoke(app, [*args, "--recipe", str(recipe)], env={"COLUMNS": "500"})
    assert result.exit_code == 0, result.output
    assert f"rejected -> {dropped}" in " ".join(result.output.split())
    assert _ids(dropped) == _ids(default_rejected_dir(curated))
