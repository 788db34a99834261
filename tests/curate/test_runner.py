from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from distill.curate import RejectReason, curate_dataset, default_recipe, load_recipe
from distill.schemas import RECORD_SCHEMA, REJECTED_SCHEMA, TeacherRecord
from distill.store import DatasetError, load_manifest, read_table, shard_paths
from distill.store.lineage import default_rejected_dir
from tests.factories import make_record, write_fake_dataset

# A cap of 2 makes domain_cap drop one of the three bio rows, so every step drops something.
RECIPE = default_recipe(domain_cap=2)
METAL = "Which metal is liquid at room temperature?\nA. Iron\nB. Mercury\nC. Tin\nD. Lead"
VEHICLE = "Which vehicle is usually faster on a highway?\nA. Bike\nB. Car\nC. Skate\nD. Scooter"
NEAR_COPY = "What is 2+2, please?\nA. 3\nB. 4\nC. 5\nD. 6"


def _records() -> list[TeacherRecord]:
    """Every reason at least once, in an order that interleaves kept and dropped rows.

    Distinct questions have distinct prompts: the default recipe's near_dedup drops a
    question asked again under another prompt id, as row 10 is.
    """
    return [
        make_record(row=0, response="Two plus two is four. Answer: B"),  # kept
        # Truncated before the duplicate: a later step drops an earlier row, so the
        # rejected output must be re-sorted into input order.
        make_record(
            row=1, prompt="Name the largest planet.", response="It is", finish_reason="length"
        ),  # truncated
        make_record(row=2, response="two plus TWO is four.\n Answer: B"),  # dup of row 0
        make_record(row=3, prompt=METAL, response="I think it is C. Answer: C"),  # wrong
        make_record(row=4, prompt=VEHICLE, response="A car is faster than a bike."),  # no answer
        make_record(
            row=5,
            prompt="Tell me about your weekend.",
            response="Free text",
            reference=None,
            domain="chat",
        ),  # kept
        make_record(row=6, prompt="Other question", response="**B**", domain=None),  # kept
        make_record(row=7, prompt="Third", response="Answer: (B)", domain="bio"),  # kept
        make_record(row=8, prompt="Fourth", response="Answer: B", domain="bio"),  # kept
        make_record(row=9, prompt="Fifth", response="Answer: B", domain="bio", n_tokens=3),
        # Row 0's question with a word added, under its own prompt id: a near-duplicate.
        make_record(row=10, prompt=NEAR_COPY, response="Four. Answer: B"),
    ]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    write_fake_dataset(tmp_path / "gen", _records())
    return tmp_path / "gen"


def _by_id(table: pa.Table) -> dict[str, dict]:
    return {row["record_id"]: row for row in table.to_pylist()}


def test_every_row_kept_or_rejected_exactly_once(dataset: Path, tmp_path: Path) -> None:
    result = curate_dataset(dataset, tmp_path / "out", RECIPE)
    inputs = read_table(dataset)["record_id"].to_pylist()
    kept = read_table(result.kept_dir)["record_id"].to_pylist()
    rejected = read_table(result.rejected_dir)["record_id"].to_pylist()
    assert sorted(kept + rejected) == sorted(inputs)
    assert not set(kept) & set(rejected)
    # Both outputs keep input order.
    assert kept == [r for r in inputs if r in set(kept)]
    assert rejected == [r for r in inputs if r in set(rejected)]
    assert result.counts["input"] == 11
    assert result.counts["kept"] == len(kept) == 5
    assert result.counts["rejected"] == len(rejected) == 6


def test_rejected_rows_carry_step_reason_and_details(dataset: Path, tmp_path: Path) -> None:
    result = curate_dataset(dataset, tmp_path / "out", RECIPE)
    rejected = read_table(result.rejected_dir)
    assert rejected.schema.equals(REJECTED_SCHEMA, check_metadata=False)
    rows = rejected.to_pylist()
    ids = [r.record_id for r in _records()]
    got = {r["record_id"]: (r["reject_step"], r["reject_reason"]) for r in rows}
    capped = [rid for rid in got if rid in ids[7:10]]
    assert len(capped) == 1  # which bio row is seeded, not positional
    assert got == {
        ids[1]: ("truncated", RejectReason.TRUNCATED.value),
        ids[2]: ("exact_dedup", RejectReason.EXACT_DUPLICATE.value),
        ids[3]: ("mcq_verify", RejectReason.WRONG_ANSWER.value),
        ids[4]: ("mcq_verify", RejectReason.NO_ANSWER_FOUND.value),
        ids[10]: ("near_dedup", RejectReason.NEAR_DUPLICATE.value),
        capped[0]: ("domain_cap", RejectReason.DOMAIN_CAP.value),
    }
    details = {r["record_id"]: json.loads(r["reject_details"]) for r in rows}
    assert details[ids[2]] == {"duplicate_of": ids[0]}
    assert details[ids[3]] == {"extracted": "C", "reference": "B", "rule": "marker"}
    assert details[ids[4]] == {"reference": "B"}
    assert details[ids[10]]["duplicate_of"] == ids[0]
    assert details[capped[0]] == {"domain": "bio", "cap": 2, "domain_rows": 3}


def test_topk_payload_stays_aligned(dataset: Path, tmp_path: Path) -> None:
    result = curate_dataset(dataset, tmp_path / "out", RECIPE)
    source = _by_id(read_table(dataset))
    for output in (read_table(result.kept_dir), read_table(result.rejected_dir)):
        assert output.num_rows > 0
        for row in output.to_pylist():
            original = source[row["record_id"]]
            for column in ("topk_ids", "topk_logprobs", "token_ids", "response_text", "tail_mass"):
                assert row[column] == original[column], column


def test_manifests(dataset: Path, tmp_path: Path) -> None:
    result = curate_dataset(dataset, tmp_path / "out", RECIPE)
    parent = load_manifest(dataset)
    kept = load_manifest(result.kept_dir)
    rejected = load_manifest(result.rejected_dir)
    assert (kept.kind, rejected.kind) == ("curated", "rejected")
    for manifest in (kept, rejected):
        assert manifest.teachers == parent.teachers
        assert manifest.tokenizer == parent.tokenizer
        assert manifest.top_k == parent.top_k
        assert [p.dataset_id for p in manifest.parents] == [parent.dataset_id]
    assert kept.counts["rows"] == 5
    assert rejected.counts["rows"] == 6
    assert [s["step"] for s in kept.steps] == [
        "exact_dedup",
        "near_dedup",
        "truncated",
        "mcq_verify",
        "domain_cap",
    ]
    first = kept.steps[0]
    assert first["input"] == 11
    assert first["kept"] == 10
    assert first["dropped"] == {"exact_duplicate": 1}
    assert set(first) >= {"step", "params", "input", "kept", "dropped", "seconds"}
    # Each step's input is the previous step's kept rows.
    for before, after in zip(kept.steps, kept.steps[1:], strict=False):
        assert after["input"] == before["kept"]


def test_domains_and_accuracy(dataset: Path, tmp_path: Path) -> None:
    result = curate_dataset(dataset, tmp_path / "out", RECIPE)
    params = load_manifest(result.kept_dir).stats
    assert params["domains_before"] == {"bio": 3, "chat": 1, "math": 6, "unknown": 1}
    assert params["domains_after"] == {"bio": 2, "chat": 1, "math": 1, "unknown": 1}
    assert result.domains_after == params["domains_after"]
    # math: rows 0, 3, 4 reached mcq_verify with a reference (2 dups, 1 truncated did not).
    accuracy = params["accuracy_by_domain"]
    assert accuracy["math"] == {"graded": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)}
    assert accuracy["bio"]["accuracy"] == 1.0
    assert "chat" not in accuracy  # no reference: not graded
    assert result.accuracy_by_domain["math"].graded == 3


def test_rerun_writes_byte_identical_shards(dataset: Path, tmp_path: Path) -> None:
    first = curate_dataset(dataset, tmp_path / "a", RECIPE)
    second = curate_dataset(dataset, tmp_path / "b", RECIPE)
    pairs = [(first.kept_dir, second.kept_dir), (first.rejected_dir, second.rejected_dir)]
    for a_dir, b_dir in pairs:
        a_shards, b_shards = shard_paths(a_dir), shard_paths(b_dir)
        assert a_shards
        assert [p.name for p in a_shards] == [p.name for p in b_shards]
        for a, b in zip(a_shards, b_shards, strict=True):
            assert a.read_bytes() == b.read_bytes()
    assert [s.sha256 for s in first.kept_manifest.shards] == [
        s.sha256 for s in second.kept_manifest.shards
    ]


def test_recipe_from_file_and_empty_recipe(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("steps:\n  - name: truncated\n")
    result = curate_dataset(dataset, tmp_path / "out", load_recipe(path))
    assert result.counts == {"input": 11, "kept": 10, "rejected": 1, "dropped_truncated": 1}
    assert "accuracy_by_domain" not in result.kept_manifest.stats

    from distill.curate import Recipe

    nothing = curate_dataset(dataset, tmp_path / "out2", Recipe(steps=[]))
    assert nothing.counts["kept"] == 11
    assert read_table(nothing.rejected_dir).num_rows == 0


def test_empty_input(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "gen", [])
    result = curate_dataset(tmp_path / "gen", tmp_path / "out")
    assert result.counts["input"] == result.counts["kept"] == 0
    assert read_table(result.kept_dir).schema.equals(RECORD_SCHEMA, check_metadata=False)


def test_refuses_a_used_output(dataset: Path, tmp_path: Path) -> None:
    curate_dataset(dataset, tmp_path / "out", RECIPE)
    with pytest.raises(DatasetError, match="another `distill curate`"):
        curate_dataset(dataset, tmp_path / "out")  # another recipe: another job
    write_fake_dataset(tmp_path / "held", [make_record(row=0)])
    with pytest.raises(DatasetError, match="held: already holds a dataset"):
        curate_dataset(dataset, tmp_path / "held", RECIPE)
    with pytest.raises(DatasetError, match="must differ"):
        curate_dataset(dataset, dataset)
    with pytest.raises(DatasetError, match="rejected-rows dataset"):
        curate_dataset(default_rejected_dir(tmp_path / "out"), tmp_path / "again")


def test_refuses_a_changed_shard(dataset: Path, tmp_path: Path) -> None:
    shard = shard_paths(dataset)[0]
    shard.write_bytes(shard.read_bytes() + b"x")
    with pytest.raises(DatasetError, match="sha256 differs"):
        curate_dataset(dataset, tmp_path / "out", RECIPE)


def test_targets_and_codec_of_the_input_reach_both_outputs(tmp_path: Path) -> None:
    """A curated sampled-targets dataset must still train with the sampled loss."""
    records = [make_record(row=i, response=f"Answer: {'B' if i % 2 else 'C'}") for i in range(4)]
    write_fake_dataset(tmp_path / "gen", records, targets="sampled")
    result = curate_dataset(tmp_path / "gen", tmp_path / "out")
    assert result.counts["rejected"] > 0
    for path in (result.kept_dir, result.rejected_dir):
        manifest = load_manifest(path)
        assert (manifest.targets, manifest.codec) == ("sampled", "plain")
