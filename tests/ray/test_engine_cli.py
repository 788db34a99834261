"""`--engine` and `--ray-address` on gen, score and pack: bad choices and a missing Ray are
one-line errors that say what to do, before any input is read or teacher loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app

runner = CliRunner()
EXTRA = "pip install 'distill[ray]'"


def command(verb: str, tmp_path: Path) -> list[str]:
    # Inputs that don't exist: the engine check must come first.
    return [verb, str(tmp_path / "missing-input"), "--out", str(tmp_path / "out")]


@pytest.mark.parametrize("verb", ["gen", "score", "pack"])
def test_missing_ray_is_one_line_naming_the_extra(
    verb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as uninstalled
    result = runner.invoke(app, [*command(verb, tmp_path), "--engine", "ray"])
    assert result.exit_code == 2, result.output
    # One message (the console wraps it at the test terminal's 80 columns).
    assert " ".join(result.output.split()) == (
        f"error: --engine ray needs Ray Data (ray is not installed): {EXTRA}"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("verb", ["gen", "score", "pack"])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--engine", "spark"], "error: --engine 'spark': expected one of local, ray"),
        (["--ray-address", "auto"], "error: --ray-address needs --engine ray"),
    ],
)
def test_bad_engine_options_are_one_line(
    verb: str, options: list[str], message: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, [*command(verb, tmp_path), *options])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == message


@pytest.mark.parametrize("verb", ["gen", "score", "pack"])
def test_help_offers_both_engines(verb: str) -> None:
    result = runner.invoke(app, [verb, "--help"], env={"COLUMNS": "200"})
    assert "--engine" in result.output and "--ray-address" in result.output
    assert f"local: this process | ray: a Ray cluster ({EXTRA})" in result.output
