"""The CLI explains itself: `--version`, `curate --help`, the default recipe, every help."""

from __future__ import annotations

import importlib.metadata

from typer.testing import CliRunner

from distill.cli import app

runner = CliRunner()


def test_version_prints_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"distill {importlib.metadata.version('distill')}\n"
