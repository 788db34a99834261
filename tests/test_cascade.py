"""Cascade distillation: a trained student is itself a teacher for `distill gen`.

A per-domain "specialist" is trained on one domain's rows of a teacher dataset, then
generates new records with top-k in the same schema, and its manifest names it (not the
original teacher), so provenance stays auditable across the cascade."""

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table, write_dataset
from distill.train import TrainConfig, train_student

pytestmark = pytest.mark.slow


def test_a_domain_specialist_student_teaches_the_next_generation(
    tmp_path: Path, embedded_teacher
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        ("geo", "Name a river."),
        ("geo", "Name a mountain."),
        ("math", "What is 2+2?"),
        ("geo", "Name a desert."),
        ("math", "What is 3+3?"),
    ]
    prompts.write_text("".join(json.dumps({"prompt": p, "domain": d}) + "\n" for d, p in rows))
    generate_dataset(
        prompts,
        tmp_path / "gen",
        teacher=embedded_teacher,
        top_k=4,
        sampling=SamplingParams(max_new_tokens=6),
        progress=False,
    )

    # the specialist's training set: the geography rows only, as their own dataset
    table = read_table(tmp_path / "gen")
    geo = table.filter(pc.equal(table["domain"], "geo"))
    parent = load_manifest(tmp_path / "gen")
    write_dataset(tmp_path / "geo", geo, table.schema, parent.model_copy(update={"shards": []}))
    config = TrainConfig(mode="kd", max_steps=2, batch_size=2, heldout_fraction=0.0)
    specialist = train_student(tmp_path / "geo", tmp_path / "geo-kd", config)
    assert specialist.train_rows == 3

    generate_dataset(
        prompts,
        tmp_path / "gen2",
        teacher=f"hf:{specialist.model_dir}",
        top_k=4,
        sampling=SamplingParams(max_new_tokens=6),
        progress=False,
    )
    second = load_manifest(tmp_path / "gen2")
    (teacher,) = second.teachers
    assert teacher.backend == "hf" and teacher.model_id == "model"
    assert teacher.revision != parent.teachers[0].revision  # other weights, other id
    assert second.tokenizer == parent.tokenizer  # same vocabulary: its data trains students
    records = read_table(tmp_path / "gen2").to_pylist()
    assert len(records) == 5
    for record in records:
        assert len(record["topk_ids"]) == len(record["token_ids"]) > 0
        assert all(len(ids) == 4 for ids in record["topk_ids"])
