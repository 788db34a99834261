"""Provenance end to end on the real embedded teacher: `distill gen` (with licence flags) ->
`distill curate` -> two training runs -> `distill audit` traces kept and rejected rows to
their source lines and to the run that trained on them (not the one that held them out)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest
from rich.console import Console
from typer.testing import CliRunner

from distill.cli import app
from distill.dataset_card import CARD_NAME, render_card
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.report import collect_report, print_report
from distill.run_lineage import read_run_lineage
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table, sha256_file
from distill.store.lineage import default_rejected_dir
from distill.teachers.embedded import EMBEDDED_MODEL_ID
from distill.teachers.licenses import SMOLLM2_CARD, LicenseOptions
from distill.train import TrainConfig, train_student
from distill.train.heldout import split_heldout

pytestmark = pytest.mark.slow
runner = CliRunner()
QUESTIONS = [f"Name a {thing}." for thing in ("fruit", "colour", "animal", "planet", "river")]
QUESTIONS += ["Name a tree.", "Name a metal.", "Name a fruit."]  # one repeat: a duplicate
HELDOUT = 0.25


def _held_prompts(curated: Path, seed: int) -> set[str]:
    table = read_table(curated, columns=["prompt_id", "token_ids"])
    table = table.filter(pc.greater(pc.list_value_length(table.column("token_ids")), 0))
    return set(split_heldout(table, HELDOUT, seed=seed)[1].column("prompt_id").to_pylist())


def _seeds(curated: Path) -> tuple[int, int, str]:
    """Two seeds and a prompt the first run trains on and the second holds out."""
    for used in range(20):
        for held in range(20):
            only = _held_prompts(curated, held) - _held_prompts(curated, used)
            if only:
                return used, held, sorted(only)[0]
    raise AssertionError("no two seeds split the prompts differently")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_student: Path) -> dict:
    root = tmp_path_factory.mktemp("provenance")
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS))
    gen = runner.invoke(app, [
        "gen", str(prompts), "--out", str(root / "gen"), "--top-k", "5",
        "--max-new-tokens", "8", "--prompts-license", "CC-BY-4.0",
    ])  # fmt: skip
    assert gen.exit_code == 0, gen.output
    recipe = root / "recipe.yaml"
    recipe.write_text("steps:\n  - name: exact_dedup\n")
    curate = runner.invoke(app, [
        "curate", str(root / "gen"), "--out", str(root / "curated"), "--recipe", str(recipe),
    ])  # fmt: skip
    assert curate.exit_code == 0, curate.output
    used_seed, held_seed, prompt_id = _seeds(root / "curated")
    for name, seed in (("used", used_seed), ("held", held_seed)):
        config = TrainConfig(
            mode="kd", student=tiny_student, max_steps=1, batch_size=2, seed=seed,
            heldout_fraction=HELDOUT, use_cpu=True,
        )  # fmt: skip
        train_student(root / "curated", root / name, config)
    return {"root": root, "prompts": prompts, "prompt_id": prompt_id}


def audit_json(*args: str) -> list[dict]:
    result = runner.invoke(app, ["audit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_kept_row_names_the_run_that_trained_on_it_not_the_one_that_held_it_out(
    pipeline: dict,
) -> None:
    root = pipeline["root"]
    (row,) = audit_json(str(root / "curated"), "--prompt-id", pipeline["prompt_id"])
    assert row["status"] == "kept" and row["rejection"] is None
    runs = {Path(r["run_dir"]).name: (r["used"], r["held_out"]) for r in row["training_runs"]}
    assert runs == {"used": (True, False), "held": (False, True)}
    assert [link["kind"] for link in row["chain"]] == ["curated", "generated"]
    assert row["chain"][0]["steps_passed"] == ["exact_dedup"]
    assert row["teacher"]["model_id"] == EMBEDDED_MODEL_ID
    assert row["source"]["sha256_recorded"] == sha256_file(pipeline["prompts"])
    assert row["source"]["unchanged"] is True


def test_a_duplicate_names_its_step_reason_and_the_row_kept_instead(pipeline: dict) -> None:
    root = pipeline["root"]
    rejected = read_table(default_rejected_dir(root / "curated")).to_pylist()
    assert [r["reject_reason"] for r in rejected] == ["exact_duplicate"]
    (row,) = audit_json(str(root / "curated"), rejected[0]["record_id"])
    kept = read_table(root / "curated", columns=["record_id", "response_text"]).to_pylist()
    twin = next(r for r in kept if r["response_text"] == rejected[0]["response_text"])
    assert row["status"] == "rejected" and row["training_runs"] == []
    assert row["rejection"]["step"] == "exact_dedup"
    assert row["rejection"]["reason"] == "exact_duplicate"
    assert row["rejection"]["kept_instead"] == {"record_id": twin["record_id"], "status": "kept"}
    assert row["source"]["line"] == len(QUESTIONS)  # the repeat is the file's last line


def test_random_rows_are_their_prompt_file_lines(pipeline: dict) -> None:
    root = pipeline["root"]
    lines = pipeline["prompts"].read_text().splitlines()
    records = read_table(root / "gen", columns=["record_id"]).column(0).to_pylist()
    for record_id in random.Random(7).sample(records, 4):
        (row,) = audit_json(str(root / "curated"), record_id)
        source = row["source"]
        assert source["text"] == lines[source["line"] - 1]
        assert row["prompt"]["messages"][-1]["content"] == json.loads(source["text"])["prompt"]


def test_licences_are_recorded_carried_and_printed(pipeline: dict) -> None:
    root = pipeline["root"]
    gen, curated = load_manifest(root / "gen"), load_manifest(root / "curated")
    prompts, teacher = gen.licenses
    assert (prompts.source, prompts.license) == ("prompts", "CC-BY-4.0")
    assert prompts.sha256 == sha256_file(pipeline["prompts"])
    assert (teacher.license, teacher.terms, teacher.restricts_competing_models) == (
        "Apache-2.0", SMOLLM2_CARD, False,
    )  # fmt: skip
    assert curated.licenses == gen.licenses
    assert load_manifest(default_rejected_dir(root / "curated")).licenses == gen.licenses
    for dataset in (root / "gen", root / "curated"):  # written by the stage, as `card` would
        assert (dataset / CARD_NAME).read_text() == render_card(dataset)
    card = (root / "used" / CARD_NAME).read_text()
    assert "CC-BY-4.0" in card and "Apache-2.0" in card and "**Warning" not in card


def test_lineage_json_pins_the_data_and_the_model_card_its_metrics(pipeline: dict) -> None:
    root = pipeline["root"]
    run = read_run_lineage(root / "used")
    curated = load_manifest(root / "curated")
    metrics = json.loads((root / "used" / "metrics.json").read_text())
    assert run is not None and run.dataset_id == curated.dataset_id and run.mode == "kd"
    assert run.manifest_sha256 == sha256_file(root / "curated" / "manifest.json")
    assert run.shard_sha256 == [shard.sha256 for shard in curated.shards]
    assert run.heldout_prompt_ids == metrics["heldout_prompt_ids"]
    assert run.train_rows == metrics["train_rows"] and run.config == metrics["config"]
    card = (root / "used" / CARD_NAME).read_text()
    before, after = metrics["heldout_initial"]["kl"], metrics["heldout"]["kl"]
    assert f"| kl | {before:.4f} | {after:.4f} |" in card
    assert curated.dataset_id in card and load_manifest(root / "gen").dataset_id in card


def test_the_report_shows_lineage_licences_and_training_data(pipeline: dict) -> None:
    report = collect_report([pipeline["root"]])
    provenance = report["provenance"]
    gen, curated = (load_manifest(pipeline["root"] / n) for n in ("gen", "curated"))
    assert [link["dataset_id"] for link in provenance["lineage"]] == [
        gen.dataset_id, curated.dataset_id,
    ]  # fmt: skip
    assert provenance["lineage"][0]["manifest_sha256"] == curated.parents[0].manifest_sha256
    assert [info["license"] for info in provenance["licenses"]] == ["CC-BY-4.0", "Apache-2.0"]
    assert sorted(Path(run["path"]).name for run in provenance["training"]) == ["held", "used"]


def test_a_rerun_stating_a_licence_adds_it_without_refusing(
    pipeline: dict, tmp_path: Path, embedded_teacher
) -> None:
    shutil.copytree(pipeline["root"] / "gen", tmp_path / "gen")
    result = generate_dataset(
        pipeline["prompts"], tmp_path / "gen", teacher=embedded_teacher, top_k=5,
        sampling=SamplingParams(max_new_tokens=8), progress=False,
        licenses=LicenseOptions(teacher_terms="https://example.org/terms"),
    )  # fmt: skip
    assert result.records_written == 0
    prompts, teacher = load_manifest(tmp_path / "gen").licenses
    assert prompts.license == "CC-BY-4.0"  # stated before, not now: kept
    assert (teacher.license, teacher.terms) == ("Apache-2.0", "https://example.org/terms")


def test_score_from_a_dataset_names_it_as_parent_and_carries_its_licences(
    pipeline: dict, tmp_path: Path, embedded_teacher
) -> None:
    gen = pipeline["root"] / "gen"
    score_dataset(gen, tmp_path / "scored", teacher=embedded_teacher, top_k=5, progress=False)
    scored = load_manifest(tmp_path / "scored")
    assert [parent.dataset_id for parent in scored.parents] == [load_manifest(gen).dataset_id]
    assert scored.licenses == load_manifest(gen).licenses  # the same teacher scored them
    assert (tmp_path / "scored" / CARD_NAME).read_text() == render_card(tmp_path / "scored")
    check = runner.invoke(app, ["verify", str(tmp_path / "scored")])
    assert check.exit_code == 0 and "ok: 2 datasets" in check.output


def test_verify_passes_with_the_cards_and_the_report_prints_provenance(pipeline: dict) -> None:
    root = pipeline["root"]
    assert (root / "gen" / CARD_NAME).is_file() and (root / "curated" / CARD_NAME).is_file()
    check = runner.invoke(app, ["verify", str(root / "curated")])
    assert check.exit_code == 0 and "ok: 3 datasets" in check.output
    console = Console(record=True, width=250)
    print_report(collect_report([root]), console)
    text = console.export_text()
    for title in ("lineage", "licences", "training data"):
        assert f" {title} " in text
    assert "CC-BY-4.0" in text and SMOLLM2_CARD in text


def test_audited_in_gen_a_row_names_the_runs_on_the_curated_data_that_holds_it(
    pipeline: dict,
) -> None:
    root = pipeline["root"]
    (kept,) = audit_json(str(root / "gen"), "--prompt-id", pipeline["prompt_id"])
    runs = {Path(r["run_dir"]).name: r["used"] for r in kept["training_runs"]}
    assert runs == {"used": True, "held": False}
    curated_id = load_manifest(root / "curated").dataset_id
    assert {r["dataset_id"] for r in kept["training_runs"]} == {curated_id}
    duplicate = read_table(default_rejected_dir(root / "curated"), columns=["record_id"]).column(0)
    (dropped,) = audit_json(str(root / "gen"), duplicate[0].as_py())
    assert dropped["status"] == "kept"  # in gen it is, but curate dropped it before training
    assert dropped["training_runs"] == []
