"""`distill audit`: where a row came from, and why it is in a dataset or not.

For each row asked for (by record id, prompt id or a SQL condition) the audit gives:
- its status in the dataset's lineage: kept, or rejected by which step, for which reason
  and details (a duplicate names the row kept instead, and where that row is);
- its source: the prompt file and line, that file's sha256 as gen recorded it and as it
  is now, and the line's text;
- the prompt as sent (chat messages, prompt token count) and the teacher (model, weights
  hash, backend, tokenizer and chat-template hashes, log-prob mode, sampling);
- the run that made it (id, time) and every dataset of the lineage, with the curation
  steps the row passed;
- the training runs that used it: runs found (`lineage.json`) beside the dataset or in the
  folders given, whose dataset (this one, one above it, or one made from it) holds the
  row's record id and did not hold its prompt out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from distill.audit.runs import candidate_runs, runs_holding, training_data
from distill.audit.sql import rows_view
from distill.audit.topk_sql import register_topk_functions
from distill.store import DatasetError, load_manifest, sha256_file, verify_shards
from distill.store.lineage import Lineage, lineage, rejected_path

ROW_COLUMNS = (
    "record_id, prompt_id, sample_index, teacher_id, run_id, created_at, source_file, "
    "source_row, domain, reference, messages, len(prompt_token_ids) AS prompt_tokens, "
    "len(token_ids) AS response_tokens, response_text, finish_reason, teacher"
)


@dataclass
class RowAudit:
    record_id: str
    prompt_id: str
    status: str  # kept | rejected
    found_in: str  # the dataset holding the row (or its rejected rows)
    rejection: dict[str, Any] | None
    source: dict[str, Any]
    prompt: dict[str, Any]
    teacher: dict[str, Any]
    run: dict[str, Any]
    chain: list[dict[str, Any]] = field(default_factory=list)
    training_runs: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _connection(
    dataset: Path, chain: Lineage, verify: bool
) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """records: the dataset's rows; rejected: the dropped rows of every curated dataset of
    its lineage (a packed copy of curated rows has its rejections one level up)."""
    manifest = load_manifest(dataset)
    rejected = []
    for link in chain.links:
        extra = rejected_path(link.path, link.manifest)
        if extra is not None:
            rejected.append((link.path, extra, load_manifest(extra)))
    if verify:
        for _, path, extra_manifest in [(dataset, dataset, manifest), *rejected]:
            verify_shards(path, extra_manifest)
    connection = duckdb.connect()
    register_topk_functions(connection)
    rows_view(connection, "records", [(dataset, dataset, manifest)])
    rows_view(connection, "rejected", rejected)
    return connection, bool(rejected)


def _select(
    connection: duckdb.DuckDBPyConnection, has_rejected: bool, where: str, params: list
) -> list[dict]:
    """Rows of `records` and `rejected` together (reject columns NULL for kept rows), so a
    condition may name any column of either."""
    union = f"SELECT 'kept' AS status, dataset, {ROW_COLUMNS} FROM records"
    if has_rejected:
        columns = "'rejected' AS status, dataset, reject_step, reject_reason, reject_details"
        union += f" UNION ALL BY NAME SELECT {columns}, {ROW_COLUMNS} FROM rejected"
    else:
        union = (
            "SELECT *, NULL::VARCHAR AS reject_step, NULL::VARCHAR AS reject_reason, "
            f"NULL::VARCHAR AS reject_details FROM ({union})"
        )
    query = f"SELECT * FROM ({union}) WHERE {where}"
    return connection.sql(query, params=params).to_arrow_table().to_pylist()


def _source_line(path: Path, line: int) -> str | None:
    """The text of line `line` (1-based) of a line-based prompt file, read as a stream."""
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson", ".csv", ".tsv"):
        return None
    with path.open("rb") as fh:
        for number, data in enumerate(fh, start=1):
            if number == line:
                return data.decode("utf-8", "replace").rstrip("\r\n")
    return None


def _recorded_sha256(row: dict[str, Any], chain: Lineage) -> str | None:
    """The prompt file's sha256 as the gen (or score) run that made the row recorded it,
    in its manifest's licences."""
    path = Path(row["source_file"])
    for link in chain.links:
        if link.manifest.kind == "generated" and row["run_id"] in link.manifest.run_ids:
            for info in link.manifest.licenses:
                if info.source == "prompts" and (
                    info.name == row["source_file"] or Path(info.name).resolve() == path.resolve()
                ):
                    return info.sha256
    return None


def _source(row: dict[str, Any], chain: Lineage) -> dict[str, Any]:
    path = Path(row["source_file"])
    recorded = _recorded_sha256(row, chain)
    current = sha256_file(path) if path.is_file() else None
    return {
        "file": str(path),
        "line": row["source_row"],
        "sha256_recorded": recorded,
        "sha256_now": current,
        "unchanged": None if recorded is None or current is None else recorded == current,
        "text": _source_line(path, row["source_row"]) if current else None,
    }


def _chain(row: dict[str, Any], chain: Lineage) -> list[dict[str, Any]]:
    """Every dataset of the lineage (child first) and the curation steps the row passed
    there: all of them for a kept row, those before its rejecting step otherwise."""
    out = []
    for link in chain.links:
        steps = [step["step"] for step in link.manifest.steps]
        if row["status"] == "rejected" and row["dataset"] == str(link.path):
            position = next((i for i, s in enumerate(steps) if s == row["reject_step"]), len(steps))
            steps = steps[:position]
        out.append(
            {
                "path": str(link.path),
                "kind": link.manifest.kind,
                "dataset_id": link.manifest.dataset_id,
                "codec": link.manifest.codec,
                "steps_passed": steps,
            }
        )
    return out


def _rejection(row: dict[str, Any], connection: duckdb.DuckDBPyConnection) -> dict | None:
    if row["status"] != "rejected":
        return None
    details = json.loads(row["reject_details"] or "{}")
    rejection: dict[str, Any] = {
        "step": row["reject_step"],
        "reason": row["reject_reason"],
        "details": details,
    }
    instead = details.get("duplicate_of") or details.get("kept")
    if instead:
        kept = connection.sql(
            "SELECT 'kept' FROM records WHERE record_id = ? UNION ALL "
            "SELECT 'rejected: ' || reject_reason FROM rejected WHERE record_id = ?",
            params=[instead, instead],
        ).fetchall()
        rejection["kept_instead"] = {
            "record_id": instead,
            "status": kept[0][0] if kept else "not in this lineage",
        }
    return rejection


def audit_rows(
    dataset: Path,
    *,
    record_id: str | None = None,
    prompt_id: str | None = None,
    where: str | None = None,
    runs: list[Path] | None = None,
    verify: bool = True,
) -> list[RowAudit]:
    """The audit of every row matching one of `record_id`, `prompt_id` or `where` (SQL)."""
    given = [x is not None for x in (record_id, prompt_id, where)]
    if sum(given) != 1:
        raise ValueError("audit: give exactly one of RECORD_ID, --prompt-id or --where")
    dataset = Path(dataset)
    chain = lineage(dataset)
    connection, has_rejected = _connection(dataset, chain, verify)
    if where is not None:
        rows = _select(connection, has_rejected, f"({where})", [])
    else:
        column = "record_id" if record_id is not None else "prompt_id"
        rows = _select(connection, has_rejected, f"{column} = ?", [record_id or prompt_id])
    if not rows:
        raise DatasetError(f"{dataset}: no row matches (kept or rejected, in its lineage)")
    run_data = training_data(candidate_runs(dataset, runs or []), chain)
    audits = []
    for row in rows:
        used = runs_holding(row, run_data, connection)
        audits.append(
            RowAudit(
                record_id=row["record_id"],
                prompt_id=row["prompt_id"],
                status=row["status"],
                found_in=row["dataset"],
                rejection=_rejection(row, connection),
                source=_source(row, chain),
                prompt={"messages": row["messages"], "tokens": row["prompt_tokens"]},
                teacher=row["teacher"],
                run={"run_id": row["run_id"], "created_at": str(row["created_at"])},
                chain=_chain(row, chain),
                training_runs=used,
                response={
                    "text": row["response_text"],
                    "tokens": row["response_tokens"],
                    "finish_reason": row["finish_reason"],
                    "sample_index": row["sample_index"],
                },
            )
        )
    return audits
