"""`distill score` from a dataset reads a plain and a packed source the same.

Scoring reads the texts, ids and finish reasons of a dataset, never its top-k, so the
records scored from the packed copy of a dataset must equal those scored from the plain
one exactly (only the run's id and time differ). The source is real SmolLM2 output, the
embedded teacher's tokenizer, so the stored token ids are kept rather than re-tokenised.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from distill.gen.score import score_dataset
from distill.store import load_manifest, read_table
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
PER_RUN = {"run_id", "created_at"}


def test_scoring_a_packed_dataset_equals_scoring_the_plain_one(
    tmp_path: Path, embedded_teacher
) -> None:
    rows = pq.read_table(FIXTURE).slice(0, 3)
    scored = {}
    for codec in ("plain", "packed"):
        write_table_dataset(tmp_path / codec, rows, codec)
        out = tmp_path / f"scored-{codec}"
        score_dataset(tmp_path / codec, out, teacher=embedded_teacher, top_k=5, progress=False)
        assert load_manifest(out).codec == "plain"
        scored[codec] = read_table(out)
    plain, packed = (scored[c].drop_columns(list(PER_RUN)) for c in ("plain", "packed"))
    assert plain.num_rows == rows.num_rows
    assert packed.equals(plain)
    # The stored ids were kept, not re-tokenised from the text.
    stored = dict(zip(rows["record_id"].to_pylist(), rows["token_ids"].to_pylist(), strict=True))
    kept = zip(plain["record_id"].to_pylist(), plain["token_ids"].to_pylist(), strict=True)
    assert all(ids == stored[record_id] for record_id, ids in kept)
