"""`audit_rows` traces kept and rejected rows through their lineage and to training runs."""

import json
from pathlib import Path

import pytest

from distill.audit.row import audit_rows
from distill.run_lineage import write_run_lineage
from distill.store import DatasetError, load_manifest, read_table
from distill.store.lineage import default_rejected_dir


def test_a_kept_row_passed_every_step_and_names_the_runs_that_used_it(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    kept = read_table(chain["curated"], columns=["record_id", "prompt_id"]).to_pylist()
    row, other = kept[0], kept[1]
    used, held = tmp_path / "kd", tmp_path / "sft"
    for run, heldout in ((used, [other["prompt_id"]]), (held, [row["prompt_id"]])):
        run.mkdir()
        write_run_lineage(run, chain["curated"], "kd", heldout, 10, {})
    (audit,) = audit_rows(chain["curated"], record_id=row["record_id"], runs=[tmp_path])
    assert audit.status == "kept" and audit.rejection is None
    curated = load_manifest(chain["curated"])
    assert [link["kind"] for link in audit.chain] == ["curated", "generated"]
    assert audit.chain[0]["steps_passed"] == [step["step"] for step in curated.steps]
    runs = {Path(r["run_dir"]).name: r["used"] for r in audit.training_runs}
    assert runs == {"kd": True, "sft": False}
    assert audit.teacher["model_id"] and audit.run["run_id"]
    assert audit.prompt["messages"][-1]["role"] == "user" and audit.prompt["tokens"] > 0


def test_a_duplicate_names_its_step_reason_and_the_row_kept_instead(
    chain: dict[str, Path],
) -> None:
    rejected = read_table(default_rejected_dir(chain["curated"])).to_pylist()
    duplicate = next(r for r in rejected if r["reject_reason"] == "exact_duplicate")
    (audit,) = audit_rows(chain["packed"], record_id=duplicate["record_id"])
    assert audit.status == "rejected"
    details = json.loads(duplicate["reject_details"])
    assert audit.rejection == {
        "step": "exact_dedup",
        "reason": "exact_duplicate",
        "details": details,
        "kept_instead": {
            "record_id": details["duplicate_of"],
            # the first of its kind can itself fall to a later step
            "status": audit.rejection["kept_instead"]["status"],
        },
    }
    instead = audit.rejection["kept_instead"]["status"]
    kept_ids = set(read_table(chain["packed"], columns=["record_id"]).column(0).to_pylist())
    assert (instead == "kept") == (details["duplicate_of"] in kept_ids)
    # rejected at the first step: it passed none of the curated dataset's steps
    curated_link = next(link for link in audit.chain if link["kind"] == "curated" and
                        link["path"] == audit.found_in)  # fmt: skip
    assert curated_link["steps_passed"] == []


def test_prompt_id_and_where_select_every_matching_row(chain: dict[str, Path]) -> None:
    gen = read_table(chain["gen"], columns=["prompt_id", "record_id"]).to_pylist()
    prompt = gen[0]["prompt_id"]
    audits = audit_rows(chain["curated"], prompt_id=prompt)
    want = {r["record_id"] for r in gen if r["prompt_id"] == prompt}
    assert {a.record_id for a in audits} == want and len(want) == 4  # kept or rejected, all
    wrong = audit_rows(chain["curated"], where="reject_reason = 'wrong_answer'")
    assert wrong and all(a.rejection["reason"] == "wrong_answer" for a in wrong)
    with pytest.raises(DatasetError, match="no row matches"):
        audit_rows(chain["curated"], record_id="no-such-row")
    with pytest.raises(ValueError, match="exactly one"):
        audit_rows(chain["curated"], record_id="x", prompt_id="y")


def test_a_row_with_an_empty_response_was_not_used_by_a_run(tmp_path: Path) -> None:
    from distill.schemas import records_to_table
    from tests.factories import make_record, write_table_dataset

    records = [make_record(row=0), make_record(row=1, response="", n_tokens=0)]
    dataset = tmp_path / "data"
    write_table_dataset(dataset, records_to_table(records))
    run = tmp_path / "kd"
    run.mkdir()
    write_run_lineage(run, dataset, "kd", [], 1, {})
    full, empty = (audit_rows(dataset, record_id=r.record_id, runs=[run])[0] for r in records)
    assert [(r["used"], r["empty_response"]) for r in full.training_runs] == [(True, False)]
    # Training skips a row with no response token: the run never saw it.
    assert [(r["used"], r["empty_response"]) for r in empty.training_runs] == [(False, True)]
