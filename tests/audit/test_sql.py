"""`distill sql`'s views answer the questions users ask, checked against pyarrow computations."""

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from distill.audit.sql import connect, sql_table
from distill.codec import decode_topk
from distill.store import load_manifest, read_table
from distill.store.lineage import default_rejected_dir


@pytest.mark.parametrize("curated", ["curated", "curated-packed"])
def test_rows_dropped_per_reason_per_domain(chain: dict[str, Path], curated: str) -> None:
    got = sql_table(
        "SELECT reject_reason, domain, count(*) AS n FROM rejected GROUP BY ALL ORDER BY ALL",
        [chain[curated]],
    ).to_pylist()
    rejected = read_table(default_rejected_dir(chain[curated]))
    want = Counter(
        zip(
            rejected.column("reject_reason").to_pylist(),
            rejected.column("domain").to_pylist(),
            strict=True,
        )
    )
    assert {(r["reject_reason"], r["domain"]): r["n"] for r in got} == dict(want)
    assert sum(want.values()) > 50  # the weak teacher: most answers are wrong


@pytest.mark.parametrize("dataset", ["gen", "gen-packed", "packed"])
def test_mean_tail_mass_per_teacher_reads_both_codecs(chain: dict[str, Path], dataset: str) -> None:
    got = sql_table(
        "SELECT teacher_id, avg(t) AS mean_tail, count(*) AS tokens "
        "FROM (SELECT teacher_id, unnest(tail_mass) AS t FROM records) GROUP BY teacher_id",
        [chain[dataset]],
    ).to_pylist()
    table = read_table(chain[dataset])
    topk = decode_topk(table)
    teacher_of_token = np.repeat(
        np.array(table.column("teacher_id").to_pylist()), topk.tokens_per_row
    )
    for row in got:
        mine = topk.tail[teacher_of_token == row["teacher_id"]]
        assert row["tokens"] == mine.size
        assert row["mean_tail"] == pytest.approx(float(mine.astype(np.float64).mean()), rel=1e-6)
    assert len(got) == len(set(teacher_of_token.tolist()))


def test_packed_topk_decodes_to_what_the_codec_decodes(chain: dict[str, Path]) -> None:
    """Through SQL, a packed dataset reads as the codec's own decoder reads it, and its ids
    as the plain dataset it was packed from holds them."""
    query = "SELECT record_id, topk_ids, topk_logprobs, tail_mass FROM records ORDER BY record_id"
    plain = sql_table(query, [chain["curated"]])
    packed = sql_table(query, [chain["packed"]])
    assert plain.column("record_id").equals(packed.column("record_id"))
    assert plain.column("topk_ids").to_pylist() == packed.column("topk_ids").to_pylist()
    table = read_table(chain["packed"])
    table = table.take(pc.sort_indices(table, [("record_id", "ascending")]))
    decoded = decode_topk(table)
    flat = pc.list_flatten(pc.list_flatten(packed.column("topk_logprobs"))).to_numpy()
    assert np.array_equal(flat, decoded.logprobs)
    assert np.array_equal(pc.list_flatten(packed.column("tail_mass")).to_numpy(), decoded.tail)


def test_prompts_where_every_sample_was_wrong(chain: dict[str, Path]) -> None:
    got = (
        sql_table(
            "SELECT prompt_id FROM (SELECT prompt_id, count(*) AS n, "
            "bool_and(reject_reason = 'wrong_answer') AS all_wrong "
            "FROM rejected GROUP BY prompt_id) "
            "WHERE all_wrong AND n = (SELECT max(sample_index) + 1 FROM records) "
            "ORDER BY prompt_id",
            [chain["curated"]],
        )
        .column("prompt_id")
        .to_pylist()
    )
    rejected = read_table(default_rejected_dir(chain["curated"])).to_pylist()
    gen = read_table(chain["gen"], columns=["prompt_id"]).column("prompt_id").to_pylist()
    samples = Counter(gen)
    reasons: dict[str, list[str]] = defaultdict(list)
    for row in rejected:
        reasons[row["prompt_id"]].append(row["reject_reason"])
    want = sorted(
        p for p, rs in reasons.items() if len(rs) == samples[p] and set(rs) == {"wrong_answer"}
    )
    assert got == want and want  # the weak teacher is wrong on every sample of some prompts


def test_steps_runs_manifests_and_lineage(chain: dict[str, Path]) -> None:
    connection = connect([chain["packed"]])
    curated = load_manifest(chain["curated"])
    steps = (
        connection.sql(
            "SELECT * FROM steps WHERE dataset_id = ? ORDER BY position",
            params=[curated.dataset_id],
        )
        .to_arrow_table()
        .to_pylist()
    )
    assert [s["step"] for s in steps] == [s["step"] for s in curated.steps]
    assert [dict(s["dropped"]) for s in steps] == [s["dropped"] for s in curated.steps]
    kinds = connection.sql("SELECT kind FROM manifests ORDER BY kind").fetchall()
    assert [k for (k,) in kinds] == ["curated", "curated", "generated", "rejected"]
    links = connection.sql("SELECT dataset, parent, depth FROM lineage ORDER BY depth").fetchall()
    assert [(Path(d).name, Path(p).name, depth) for d, p, depth in links] == [
        ("packed", "curated", 0),
        ("curated", "gen", 1),
        ("curated-rejected", "gen", 1),
    ]
    params = json.loads(
        connection.sql("SELECT params FROM manifests WHERE kind='curated'").fetchall()[0][0]
    )
    assert "recipe" in params or "codec" in params
