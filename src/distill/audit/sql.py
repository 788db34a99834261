"""`distill sql`: DuckDB over distill datasets, their rejected rows and their lineage.

    connection = connect([Path("data/curated")])
    connection.sql("SELECT reject_reason, domain, count(*) FROM rejected GROUP BY ALL")

Views, registered from the datasets given and (for the metadata views) every parent:

  records    the rows of each dataset given, with a leading `dataset` column (its path);
             packed top-k (schema 2) appears decoded as the plain list columns `topk_ids`,
             `topk_logprobs`, `tail_mass`, through the `distill_topk_*` functions, which
             DuckDB calls only when a query reads those columns
  rejected   the dropped rows of each curated dataset given, with reject_step/_reason/_details
  manifests  one row per dataset in the lineage: id, kind, codec, rows, teachers, sha256
  steps      one row per curation step: its position, params, input, kept, dropped counts
  runs       one row per gen/score run: teacher, written, failed, retries, cost
  lineage    one row per (dataset, parent) link, with the parent's recorded manifest sha256

DuckDB reads the shard files itself, so the shards are hashed against their manifests
before the views are made (`verify=False` skips that; `distill verify` checks a lineage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from distill.audit.topk_sql import register_topk_functions, topk_select
from distill.schemas import Manifest
from distill.store import DatasetError, load_manifest, verify_shards
from distill.store.lineage import lineage, manifest_sha256, rejected_path

VIEWS = ("records", "rejected", "manifests", "steps", "runs", "lineage")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def rows_view(connection: duckdb.DuckDBPyConnection, name: str, sources: list[tuple]) -> None:
    """`name` as the union (by column name) of each (label, dir, manifest) source's shards."""
    parts = []
    for label, path, manifest in sources:
        files = [str(Path(path) / shard.file) for shard in manifest.shards]
        if not files:
            continue
        scan = f"read_parquet([{', '.join(map(_quoted, files))}])"
        parts.append(
            f"SELECT {_quoted(str(label))} AS dataset, {topk_select(manifest)} FROM {scan}"
        )
    if parts:
        connection.sql(f"CREATE OR REPLACE VIEW {name} AS " + " UNION ALL BY NAME ".join(parts))
    else:  # no rows anywhere: an empty view that still has the columns a query names
        connection.sql(f"CREATE OR REPLACE VIEW {name} AS SELECT NULL::VARCHAR AS dataset LIMIT 0")


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


MANIFEST_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("dataset_id", pa.string()),
        ("kind", pa.string()),
        ("codec", pa.string()),
        ("schema_version", pa.int32()),
        ("created_at", pa.string()),
        ("rows", pa.int64()),
        ("top_k", pa.int32()),
        ("teachers", pa.list_(pa.string())),
        ("manifest_sha256", pa.string()),
        ("params", pa.string()),
        ("counts", pa.map_(pa.string(), pa.int64())),
    ]
)
STEP_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("dataset_id", pa.string()),
        ("position", pa.int32()),
        ("step", pa.string()),
        ("params", pa.string()),
        ("input", pa.int64()),
        ("kept", pa.int64()),
        ("dropped", pa.map_(pa.string(), pa.int64())),
        ("summary", pa.string()),
    ]
)
RUN_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("dataset_id", pa.string()),
        ("run_id", pa.string()),
        ("teacher_id", pa.string()),
        ("written", pa.int64()),
        ("failed", pa.int64()),
        ("retries", pa.int64()),
        ("skipped_existing", pa.int64()),
        ("cost_usd", pa.float64()),
        ("counts", pa.map_(pa.string(), pa.float64())),
    ]
)
LINEAGE_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("dataset_id", pa.string()),
        ("parent", pa.string()),
        ("parent_dataset_id", pa.string()),
        ("parent_manifest_sha256", pa.string()),
        ("depth", pa.int32()),
    ]
)


def _manifest_row(path: Path, manifest: Manifest) -> dict[str, Any]:
    return {
        "dataset": str(path),
        "dataset_id": manifest.dataset_id,
        "kind": manifest.kind,
        "codec": manifest.codec,
        "schema_version": manifest.schema_version,
        "created_at": manifest.created_at.isoformat(),
        "rows": sum(shard.rows for shard in manifest.shards),
        "top_k": manifest.top_k,
        "teachers": [t.teacher_id for t in manifest.teachers],
        "manifest_sha256": manifest_sha256(path),
        "params": json.dumps(manifest.params, sort_keys=True, default=str),
        "counts": list(manifest.counts.items()),
    }


def _step_rows(path: Path, manifest: Manifest) -> list[dict[str, Any]]:
    return [
        {
            "dataset": str(path),
            "dataset_id": manifest.dataset_id,
            "position": position,
            "step": step["step"],
            "params": json.dumps(step.get("params", {}), sort_keys=True),
            "input": step["input"],
            "kept": step["kept"],
            "dropped": list(step.get("dropped", {}).items()),
            "summary": json.dumps(step.get("summary", {}), sort_keys=True, default=str),
        }
        for position, step in enumerate(manifest.steps)
    ]


def _run_rows(path: Path, manifest: Manifest) -> list[dict[str, Any]]:
    named = ("run_id", "teacher_id", "written", "failed", "retries", "skipped_existing", "cost_usd")
    return [
        {
            "dataset": str(path),
            "dataset_id": manifest.dataset_id,
            **{key: run.get(key) for key in named},
            "counts": [(k, float(v)) for k, v in run.items() if k not in named],
        }
        for run in manifest.stats.get("runs", [])
    ]


def _metadata_tables(datasets: list[Path]) -> dict[str, pa.Table]:
    """The manifests, steps, runs and lineage views' rows, over every dataset's lineage."""
    rows: dict[str, list[dict[str, Any]]] = {
        "manifests": [],
        "steps": [],
        "runs": [],
        "lineage": [],
    }
    seen: set[str] = set()
    for start in datasets:
        for link in lineage(start).links:
            extra = rejected_path(link.path, link.manifest)
            members = [(link.path, link.manifest)]
            if extra is not None:
                members.append((extra, load_manifest(extra)))
            for path, manifest in members:
                if str(path.resolve()) in seen:
                    continue
                seen.add(str(path.resolve()))
                rows["manifests"].append(_manifest_row(path, manifest))
                if manifest.kind != "rejected":
                    rows["steps"].extend(_step_rows(path, manifest))
                rows["runs"].extend(_run_rows(path, manifest))
                rows["lineage"].extend(
                    {
                        "dataset": str(path),
                        "dataset_id": manifest.dataset_id,
                        "parent": parent.path,
                        "parent_dataset_id": parent.dataset_id,
                        "parent_manifest_sha256": parent.manifest_sha256,
                        "depth": link.depth,
                    }
                    for parent in manifest.parents
                )
    schemas = {
        "manifests": MANIFEST_SCHEMA,
        "steps": STEP_SCHEMA,
        "runs": RUN_SCHEMA,
        "lineage": LINEAGE_SCHEMA,
    }
    return {name: _table(rows[name], schemas[name]) for name in schemas}


def connect(datasets: list[Path], verify: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views of the module docstring."""
    if not datasets:
        raise DatasetError("distill sql: name at least one dataset")
    sources, rejected = [], []
    for path in map(Path, datasets):
        manifest = load_manifest(path)
        if verify:
            verify_shards(path, manifest)
        sources.append((path, path, manifest))
        extra = rejected_path(path, manifest)
        if extra is not None:
            extra_manifest = load_manifest(extra)
            if verify:
                verify_shards(extra, extra_manifest)
            rejected.append((path, extra, extra_manifest))
    connection = duckdb.connect()
    register_topk_functions(connection)
    rows_view(connection, "records", sources)
    rows_view(connection, "rejected", rejected)
    for name, table in _metadata_tables(list(map(Path, datasets))).items():
        connection.register(f"_{name}_rows", table)
        connection.sql(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_rows")
    return connection


def sql_table(query: str, datasets: list[Path], verify: bool = True) -> pa.Table:
    """The result of `query` over `datasets` (see `connect`) as an Arrow table."""
    return connect(datasets, verify).sql(query).to_arrow_table()
