import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from distill.curate import curate_dataset
from distill.report import collect_report, print_report, write_report
from distill.report.page import heldout_points
from tests.factories import make_record, write_fake_dataset

ROOTS = "How many real roots has x^2 + 1?\nA. Two\nB. Zero\nC. One\nD. Three"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    records = [
        make_record(response="Answer: B", row=0, domain="math"),
        # Another question (the default recipe's near_dedup drops a question asked twice).
        make_record(prompt=ROOTS, response="Answer: C", row=1, domain="math"),
        make_record(prompt="Which organ pumps blood?", response="Answer: B", row=2, domain="bio"),
    ]
    write_fake_dataset(tmp_path / "gen", records)
    curate_dataset(tmp_path / "gen", tmp_path / "curated")
    for mode, final in (("sft", 2.5), ("kd", 2.0)):
        (tmp_path / mode).mkdir()
        (tmp_path / mode / "metrics.json").write_text(
            json.dumps(
                {
                    "mode": mode,
                    "steps": 2,
                    "loss_curve": [[1, 5.0], [2, 4.0]],
                    "heldout": {"kl": final, "nll": 3.0, "tokens": 10},
                    "heldout_initial": {"kl": 9.0, "nll": 9.0, "tokens": 10},
                    "heldout_curve": [
                        {"step": 1, "kl": 4.0, "nll": 4.0, "tokens": 10},
                        {"step": 2, "kl": final, "nll": 3.0, "tokens": 10},
                    ],
                }
            )
        )
    return tmp_path


def test_report_collects_every_stage_from_a_run_folder(run_dir: Path) -> None:
    report = collect_report([run_dir])
    assert report["summary"] == {
        "generated_records": 3,
        "kept": 2,
        "rejected": 1,
        "sft_heldout_kl": 2.5,
        "sft_heldout_nll": 3.0,
        "kd_heldout_kl": 2.0,
        "kd_heldout_nll": 3.0,
    }
    stats = report["curated"][0]["stats"]
    assert stats["accuracy_by_domain"]["math"]["accuracy"] == 0.5


def test_report_renders_table_html_and_json(run_dir: Path) -> None:
    report = collect_report([run_dir / "gen", run_dir / "curated", run_dir / "kd"])
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "wrong_answer: 1" in text and "50.0% (1/2)" in text
    html_path, json_path = write_report(report, run_dir / "out" / "report.html")
    page = html_path.read_text()
    assert "<svg" in page
    # self-contained: nothing fetched (XML namespace names are not fetched)
    assert "http" not in re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert "<script src" not in page and "<link" not in page
    assert "each mode's own objective" in page
    # the held-out curve starts at the untrained student's KL (9.0), at step 0
    (kd,) = report["training"]
    assert heldout_points(kd, "kl") == [[0, 9.0], [1, 4.0], [2, 2.0]]
    assert json.loads(json_path.read_text())["summary"]["kd_heldout_kl"] == 2.0


def test_report_on_a_folder_with_nothing_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no distill dataset"):
        collect_report([tmp_path])


def test_every_teacher_of_a_dataset_is_named(tmp_path: Path) -> None:
    from tests.factories import fake_teacher

    first = fake_teacher()
    second = first.model_copy(update={"model_id": "second-teacher"})
    write_fake_dataset(
        tmp_path / "gen", [make_record(row=0, teacher=first)], teachers=[first, second]
    )
    report = collect_report([tmp_path / "gen"])
    entry = report["generated"][0]
    assert entry["teachers"] == [first.teacher_id, second.teacher_id]
    console = Console(record=True, width=200)
    print_report(report, console)
    assert second.teacher_id in console.export_text()


def test_gen_runs_table_shows_each_run_with_failures_and_cost(tmp_path: Path) -> None:
    runs = [
        {"run_id": "r1", "teacher_id": "openai:m@x", "written": 7, "failed": 5,
         "failed_timeout": 2, "failed_connection": 3, "retries": 11, "cost_usd": 0.0123},
        {"run_id": "r2", "teacher_id": "openai:m@x", "written": 5, "failed": 0, "retries": 0},
    ]  # fmt: skip
    write_fake_dataset(tmp_path / "gen", [make_record(row=0)], stats={"runs": runs})
    console = Console(record=True, width=200)
    print_report(collect_report([tmp_path / "gen"]), console)
    text = console.export_text()
    assert "5 (connection: 3, timeout: 2)" in text
    assert "0.0123" in text and "r2" in text
