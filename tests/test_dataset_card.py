"""Dataset cards: `datasets` loads the kept rows (and the rejected ones) through the card's
configs; the front matter and licence warnings say what the manifests say."""

import shutil
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from distill.audit.verify import verify_dataset
from distill.codec import pack_dataset
from distill.curate import curate_dataset
from distill.dataset_card import (
    CARD_NAME,
    license_warnings,
    render_card,
    size_category,
    write_card,
)
from distill.schemas import LicenseInfo
from distill.store import load_manifest, read_table, save_manifest
from distill.store.lineage import default_rejected_dir
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_mmlu.parquet"


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("card")
    manifest = write_table_dataset(root / "gen", pq.read_table(FIXTURE))
    licences = [
        LicenseInfo(source="prompts", name="mmlu.jsonl", license="MIT", sha256="ab" * 32),
        LicenseInfo(source="teacher", name=manifest.teachers[0].teacher_id, license="Apache-2.0",
                    restricts_competing_models=False),
    ]  # fmt: skip
    save_manifest(root / "gen", manifest.model_copy(update={"licenses": licences}))
    curate_dataset(root / "gen", root / "curated")
    return root / "curated"


def test_load_dataset_reads_the_kept_and_rejected_rows_through_the_card(
    curated: Path, tmp_path: Path
) -> None:
    for path in (curated.parent / "gen", curated):
        write_card(path)
    cache = str(tmp_path / "hf-cache")
    for path, config, want in [
        (curated.parent / "gen", "default", read_table(curated.parent / "gen")),
        (curated, "default", read_table(curated)),
        (curated, "rejected", read_table(default_rejected_dir(curated))),
    ]:
        loaded = datasets.load_dataset(str(path), config, split="train", cache_dir=cache)
        assert loaded["record_id"] == want.column("record_id").to_pylist()


def test_front_matter_and_body_say_what_the_manifest_says(curated: Path) -> None:
    card = render_card(curated)
    meta = front_matter(card)
    rows = load_manifest(curated).counts["rows"]
    assert meta["license"] == ["apache-2.0", "mit"]
    assert meta["size_categories"] == [size_category(rows)] == ["n<1K"]
    assert [c["config_name"] for c in meta["configs"]] == ["default", "rejected"]
    assert meta["source_datasets"] == ["mmlu.jsonl"]
    for step in load_manifest(curated).steps:
        assert f"| {step['step']} | {step['input']} | {step['kept']} |" in card
    assert "## Lineage" in card and "## Teacher accuracy" in card
    assert render_card(curated) == card  # nothing from the clock


def test_licence_warnings_name_unknown_and_restrictive_terms() -> None:
    unknown = LicenseInfo(source="teacher", name="openai:x@u")
    restrictive = LicenseInfo(
        source="teacher", name="openai:gpt@api", terms="https://example.com/terms",
        restricts_competing_models=True,
    )  # fmt: skip
    fine = LicenseInfo(source="teacher", name="hf:a", license="Apache-2.0",
                       restricts_competing_models=False)  # fmt: skip
    warnings = license_warnings([unknown, restrictive, fine])
    assert len(warnings) == 3
    assert "openai:x@u's licence and terms are unknown" in warnings[0]
    assert "is unknown" in warnings[1] and "restrict training models" in warnings[2]
    assert license_warnings([fine]) == []


def test_a_card_without_licences_says_other_and_warns(tmp_path: Path, curated: Path) -> None:
    shutil.copytree(curated.parent / "gen", tmp_path / "gen")
    manifest = load_manifest(tmp_path / "gen")
    save_manifest(tmp_path / "gen", manifest.model_copy(update={"licenses": []}))
    card = render_card(tmp_path / "gen")
    assert front_matter(card)["license"] == "other"
    assert "No licence was recorded" in card


def test_curate_and_pack_write_their_card_and_a_rerun_writes_the_same_bytes(
    curated: Path, tmp_path: Path
) -> None:
    shutil.copytree(curated.parent / "gen", tmp_path / "gen")
    out, packed = tmp_path / "curated", tmp_path / "packed"
    cards, created = {}, []
    for _ in range(2):  # the same job again: cleared and redone
        curate_dataset(tmp_path / "gen", out)
        cards.setdefault(out, []).append((out / CARD_NAME).read_bytes())
        created.append(load_manifest(out).created_at)
    for _ in range(2):
        pack_dataset(out, packed)
        cards.setdefault(packed, []).append((packed / CARD_NAME).read_bytes())
    assert created[0] != created[1]  # the manifests differ: the card holds no clock
    assert cards[out][0] == cards[out][1] and cards[packed][0] == cards[packed][1]
    assert cards[out][0] != cards[packed][0]
    assert cards[out][0].decode() == render_card(out)  # what `distill card` rewrites
    # a packed copy of the kept rows has no rejected rows of its own to declare
    configs = front_matter(cards[packed][0].decode())["configs"]
    assert [c["config_name"] for c in configs] == ["default"]
    assert verify_dataset(packed).ok  # README.md is no unlisted shard
