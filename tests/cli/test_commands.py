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


def test_curate_reports_each_step_in_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    from tests.factories import make_record, write_fake_dataset

    records = [make_record(row=i, response=f"Answer: B{'!' * i}") for i in range(3)]
    write_fake_dataset(tmp_path / "gen", records)
    result = runner.invoke(app, ["curate", str(tmp_path / "gen"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "curate 1/5 exact_dedup: started" in result.output
    # rows 1 and 2 ask row 0's question again under other prompt ids
    assert "curate 2/5 near_dedup: 3 in, 1 kept, dropped near_duplicate 2" in result.output
    assert "\x1b[" not in result.output.split("curate 1/5")[1].split("curate 5/5")[0]
