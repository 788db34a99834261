"""`distill verify` and `distill sql`: check a dataset's lineage, and query datasets with SQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from distill.cli.app import console, fail

if TYPE_CHECKING:
    pass

OutputFormat = Literal["table", "csv", "json", "parquet"]


def verify(
    dataset: Annotated[Path, typer.Argument(help="a distill dataset", metavar="DATASET")],
) -> None:
    """Re-hash every shard and manifest of DATASET and of its parents; exit 1 naming each
    missing or changed file."""
    from distill.audit.verify import verify_dataset

    report = verify_dataset(dataset)
    for problem in report.problems:
        console.print(f"[red]bad:[/red] {problem}", soft_wrap=True)  # whole paths
    summary = f"{len(report.datasets)} datasets, {report.shards} shards"
    if not report.ok:
        console.print(f"{len(report.problems)} problems in {summary}")
        raise typer.Exit(code=1)
    console.print(f"ok: {summary} match their manifests")


def _print_table(result, limit: int) -> None:
    table = Table(*result.column_names, show_lines=False)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*(_cell(value) for value in row.values()))
    Console().print(table)
    if result.num_rows > limit:
        console.print(f"{result.num_rows} rows, the first {limit} shown (--limit, or --format)")


def _cell(value: object, width: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def sql(
    query: Annotated[str, typer.Argument(help="a DuckDB query over the views", metavar="QUERY")],
    datasets: Annotated[
        list[Path], typer.Argument(help="distill datasets to register", metavar="DATASET...")
    ],
    output_format: Annotated[
        str, typer.Option("--format", help="table (on the terminal) | csv | json | parquet")
    ] = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="the file for csv, json or parquet output")
    ] = None,
    limit: Annotated[int, typer.Option(help="rows shown with --format table")] = 50,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="skip hashing the shards before the query")
    ] = False,
) -> None:
    """SQL over datasets. Views: records, rejected, manifests, steps, runs, lineage; packed
    top-k reads as plain lists."""
    from distill.audit.sql import sql_table

    if output_format not in ("table", "csv", "json", "parquet"):
        fail(f"--format {output_format!r}: use table, csv, json or parquet")
    if output_format != "table" and out is None:
        fail(f"--format {output_format} needs --out FILE")
    try:
        result = sql_table(query, datasets, verify=not no_verify)
    except (OSError, ValueError) as err:
        fail(str(err))
        return
    except Exception as err:  # DuckDB's parser and binder errors: one line, not a traceback
        fail(f"query failed: {str(err).splitlines()[0]}")
        return
    if output_format == "table":
        _print_table(result, limit)
        return
    assert out is not None
    _write(result, output_format, out)
    console.print(f"{result.num_rows} rows -> {out}")


def _write(result, output_format: str, out: Path) -> None:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    if output_format == "parquet":
        pq.write_table(result, out)
    elif output_format == "csv":
        pa_csv.write_csv(result, out)
    else:
        import json

        with out.open("w") as fh:
            for row in result.to_pylist():
                fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")


def audit(
    dataset: Annotated[Path, typer.Argument(help="a distill dataset", metavar="DATASET")],
    record_id: Annotated[
        str | None, typer.Argument(help="the row's record_id", metavar="[RECORD_ID]")
    ] = None,
    prompt_id: Annotated[
        str | None, typer.Option("--prompt-id", help="every row (sample) of this prompt")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--where", help="a SQL condition over the row and reject columns"),
    ] = None,
    runs: Annotated[
        list[Path] | None,
        typer.Option("--runs", help="training runs, or folders of them, to search as well"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per row")] = False,
) -> None:
    """Where a row came from and why it is here or not: source line, prompt, teacher, run,
    lineage with the steps it passed, its rejection, the training runs that used it."""
    import json

    from distill.audit.row import audit_rows
    from distill.audit.show import print_audit

    try:
        audits = audit_rows(
            dataset, record_id=record_id, prompt_id=prompt_id, where=where, runs=runs
        )
    except (OSError, ValueError) as err:
        fail(str(err))
        return
    except Exception as err:  # DuckDB's errors on a bad --where: one line, not a traceback
        fail(f"--where failed: {str(err).splitlines()[0]}")
        return
    for one in audits:
        if as_json:
            typer.echo(json.dumps(one.to_json(), default=str, ensure_ascii=False))
        else:
            print_audit(one, Console())


def card(
    dataset: Annotated[Path, typer.Argument(help="a distill dataset", metavar="DATASET")],
) -> None:
    """Rewrite DATASET/README.md: a dataset card (licences, counts, lineage) that
    `datasets.load_dataset(DATASET)` reads."""
    from distill.dataset_card import write_card

    try:
        path = write_card(dataset)
    except (OSError, ValueError) as err:
        fail(str(err))
        return
    console.print(f"card -> {path}")
