"""`distill curate`, `pack`, `report` and `demo`: datasets in, datasets and reports out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from distill.cli.app import console, fail
from distill.cli.engine_options import EngineOption, RayAddressOption, engine_from_options


def default_recipe_yaml() -> str:
    """`default_recipe()` as a YAML recipe, every parameter written out to edit from."""
    import yaml

    from distill.curate import default_recipe

    recipe = default_recipe().model_dump(mode="json")
    header = "# distill's default curation recipe; edit it and pass it with --recipe\n"
    return header + yaml.safe_dump(recipe, sort_keys=False)


def print_default_recipe(requested: bool) -> None:
    if requested:
        typer.echo(default_recipe_yaml(), nl=False)
        raise typer.Exit()


def curate_help() -> str:
    """curate's help, with the step names from the registry (a new step shows up by itself)."""
    from distill.curate.steps import STEP_TYPES

    return (
        f"{curate.__doc__}\n\nSteps a recipe can name: {', '.join(sorted(STEP_TYPES))}.\n\n"
        "Without --recipe the default recipe runs; to start your own from it: "
        "distill curate --print-default-recipe > recipe.yaml"
    )


def curate(
    dataset: Annotated[Path, typer.Argument(help="a dataset written by distill gen")],
    out: Annotated[
        Path, typer.Option("--out", help="kept rows; rejected rows go beside it, to OUT-rejected")
    ],
    rejected_out: Annotated[
        Path | None,
        typer.Option(
            "--rejected-out",
            metavar="PATH",
            help="rejected rows (default: OUT-rejected, beside OUT)",
        ),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option(help="YAML or TOML recipe (default: the default recipe)")
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(min=1, help="rows read at a time (default 1024); the output is the same"),
    ] = None,
    print_recipe: Annotated[
        bool,
        typer.Option(
            "--print-default-recipe",
            callback=print_default_recipe,
            is_eager=True,
            help="write the default recipe as YAML to stdout and exit",
        ),
    ] = False,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Keep or drop rows with a recipe of steps; every drop is kept with its reason."""
    from distill.curate import curate_dataset, default_recipe, load_recipe
    from distill.curate.progress import CurateProgress
    from distill.engine import EngineError
    from distill.report.render import print_curation

    try:
        config = engine_from_options(engine, ray_address)
        steps = load_recipe(recipe) if recipe else default_recipe()
        with CurateProgress(len(steps.steps), console.file) as progress:
            batching = {} if batch_rows is None else {"batch_rows": batch_rows}
            result = curate_dataset(
                dataset,
                out,
                steps,
                progress=progress,
                rejected_dir=rejected_out,
                engine=config,
                **batching,
            )
    except (OSError, ValueError, EngineError) as err:
        fail(str(err))
        return
    print_curation(result, Console())
    console.print(f"kept -> {result.kept_dir}; rejected -> {result.rejected_dir}")


def pack(
    dataset: Annotated[Path, typer.Argument(help="a distill dataset (any kind)")],
    out: Annotated[Path, typer.Option("--out", help="the rewritten dataset")],
    codec: Annotated[str, typer.Option(help="packed (schema 2) | plain (schema 1)")] = "packed",
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
) -> None:
    """Rewrite a dataset's top-k with another codec; same rows, SRC recorded as parent."""
    from distill.codec import pack_dataset
    from distill.engine import EngineError

    try:
        result = pack_dataset(dataset, out, codec, engine_from_options(engine, ray_address))
    except (OSError, ValueError, EngineError) as err:
        fail(str(err))
        return
    console.print(
        f"{result.rows} rows, {result.bytes_before} -> {result.bytes_after} bytes "
        f"({result.codec}) -> {result.out_dir}"
    )


def export(
    dataset: Annotated[
        Path, typer.Argument(metavar="DATASET", help="a distill dataset (plain or packed)")
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="chat (messages with the assistant turn, for SFT) | axolotl-kd (pre-tokenized "
            "rows with top-k targets for axolotl's KD plugin) | plain (a dataset with plain "
            "top-k columns)",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="PATH", help="a new .jsonl/.parquet file, or for plain a new directory"
        ),
    ],
    as_: Annotated[
        str | None,
        typer.Option(
            "--as", metavar="jsonl|parquet", help="file type (default: from PATH's extension)"
        ),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option(min=1, help="rows read at a time (default 1024); the output is the same")
    ] = 1024,
    rejected: Annotated[
        bool,
        typer.Option("--rejected", help="export a curated dataset's rejected rows (default: kept)"),
    ] = False,
) -> None:
    """Write a dataset's rows for other trainers; PATH.lineage.json names the source."""
    from distill.export import FORMATS, ExportConfig, export_dataset

    if format_ not in FORMATS:
        fail(f"--format {format_!r}: use one of {', '.join(FORMATS)}")
    if as_ not in (None, "jsonl", "parquet"):
        fail(f"--as {as_!r}: use jsonl or parquet")
    options = {"format": format_, "out": out, "file_format": as_, "rejected": rejected}
    config = ExportConfig.model_validate({**options, "batch_rows": batch_rows})
    try:
        result = export_dataset(dataset, config)
    except (OSError, ValueError) as err:
        fail(str(err))
        return
    sidecar = f" (lineage: {result.lineage})" if result.lineage else ""
    console.print(f"{result.rows} rows ({result.format}) -> {result.out}{sidecar}")


def report(
    dirs: Annotated[list[Path], typer.Argument(help="datasets, training runs, or a demo dir")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--html",
            help="the HTML page (its figures go beside it as .json); default: report.html "
            "beside the first input (in a demo dir: inside it), never inside a dataset",
        ),
    ] = None,
    rows: Annotated[
        int, typer.Option("--rows", help="rows shown for kept and for each reject reason")
    ] = 6,
    tokenizer: Annotated[
        list[Path] | None,
        typer.Option(
            "--tokenizer",
            help="a tokenizer folder to show token strings with (used only when it is the "
            "dataset's); default: the teacher's, when found offline",
        ),
    ] = None,
) -> None:
    """Charts of every step (funnel, domains, confidence, lengths, training) and a browser
    of sampled kept and rejected rows with the teacher's top-k per token."""
    from distill.report import (
        PageOptions,
        check_report_path,
        collect_report,
        default_report_path,
        print_report,
        write_report,
    )

    try:
        options = PageOptions(rows_per_group=rows, tokenizer_dirs=tokenizer or [])
        collected = collect_report(dirs)
        html_path = out or default_report_path(dirs)
        check_report_path(collected, html_path)  # before any output: a bad --out is one line
        print_report(collected, Console())
        html_path, json_path = write_report(collected, html_path, options)
    except (OSError, ValueError) as err:
        fail(str(err))
        return
    console.print(f"report -> {html_path} (figures: {json_path})")


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="output directory: prompts, datasets, students, report")
    ] = Path("distill-demo"),
    questions_per_topic: Annotated[
        int, typer.Option("--per-topic", help="MMLU questions sampled per topic")
    ] = 25,
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="training steps of each student (SFT and KD)")
    ] = 150,
) -> None:
    """The main job: MMLU -> embedded teacher with top-k -> curate -> SFT and KD -> report."""
    from distill.demo import run_demo

    run_demo(out, per_topic=questions_per_topic, max_steps=max_steps, console=console)
