import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app

runner = CliRunner()


def bad_prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps({"prompt": "Say hi."}) + "\n" + "{not json\n" + json.dumps({"q": "x"}) + "\n"
    )
    return path


def test_gen_names_file_line_and_field_of_a_bad_row(tmp_path: Path) -> None:
    path = bad_prompts(tmp_path)
    result = runner.invoke(app, ["gen", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{path}:2: field '<line>': not a JSON object" in " ".join(result.output.split())
    assert not (tmp_path / "o" / "data").exists()


@pytest.mark.slow
def test_gen_skip_invalid_writes_the_rejects_file_and_goes_on(tmp_path: Path) -> None:
    path, out = bad_prompts(tmp_path), tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "gen",
            str(path),
            "--out",
            str(out),
            "--skip-invalid",
            "--max-new-tokens",
            "3",
            "--top-k",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    rejects = [
        json.loads(line) for line in (out / "invalid_prompts.jsonl").read_text().splitlines()
    ]
    assert [(r["source_row"], r["field"], r["reason"]) for r in rejects] == [
        (2, "<line>", "not a JSON object"),
        (3, "prompt", "missing"),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["rows"] == 1 and manifest["counts"]["invalid_prompts"] == 2


def test_unknown_teacher_backend_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "hi"}) + "\n")
    result = runner.invoke(
        app, ["gen", str(path), "--out", str(tmp_path / "o"), "--teacher", "nope:model"]
    )
    assert result.exit_code == 2
    assert "unknown backend 'nope'" in result.output
