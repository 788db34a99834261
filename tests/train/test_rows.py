"""Training reads its rows from a memory-mapped file in the run dir, by row number: never a
whole-dataset table, and the same run, row for row, as the former in-memory path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback

import distill.store
import distill.store.read
import distill.train.collate
import distill.train.rows
import distill.train.runner
from distill.schemas import TeacherInfo, records_to_table
from distill.store import DatasetError, load_manifest, read_table, shard_paths
from distill.train import KDConfig, KDTrainer, TrainConfig, heldout_metrics, train_student
from distill.train.rows import ROWS_FILE, ROWS_META, open_rows, spool_rows, take_rows
from distill.train.runner import _trainer_args
from distill.train.student_check import row_id_stats
from tests.factories import make_record, write_table_dataset
from tests.train.test_heldout_cap import old_split_heldout

TRAINABLE = [
    "record_id", "prompt_id", "prompt_token_ids", "token_ids",
    "topk_ids", "topk_logprobs", "tail_mass",
]  # fmt: skip


@pytest.fixture(scope="module")
def prompts_dataset(real_teacher_info: TeacherInfo, tmp_path_factory) -> Path:
    """12 prompts of 1 to 3 samples over 5-row shards, one sample with an empty response."""
    records = [
        make_record(
            row=i, sample_index=j, n_tokens=0 if (i, j) == (4, 1) else 2 + (i + j) % 5,
            teacher=real_teacher_info,
        )
        for i in range(12)
        for j in range(1 + i % 3)
    ]  # fmt: skip
    out = tmp_path_factory.mktemp("prompts") / "ds"
    write_table_dataset(out, records_to_table(records), rows_per_shard=5)
    return out


def nonempty_rows(dataset: Path) -> pa.Table:
    """The former runner's in-memory table: every trainable row, read whole."""
    table = read_table(dataset, columns=TRAINABLE)
    return table.filter(pc.greater(pc.list_value_length(table.column("token_ids")), 0))


def mapped_table(tmp_path: Path, rows: int = 4000, chunk: int = 500) -> pa.Table:
    values = pa.array(np.arange(rows * 100, dtype=np.int32))
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, rows * 100 + 1, 100, np.int32)), values)
    table = pa.table({"token_ids": lists, "row": np.arange(rows)})
    with pa.ipc.new_file(str(tmp_path / "t.arrow"), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=chunk):
            writer.write_batch(batch)
    return table


def test_take_rows_copies_only_the_rows_of_a_mapped_table(tmp_path):
    table = mapped_table(tmp_path)
    before = pa.total_allocated_bytes()
    rows = open_rows(tmp_path / "t.arrow")
    assert rows.num_rows == 4000 and rows.column("token_ids").num_chunks == 8
    assert pa.total_allocated_bytes() - before < 10_000  # mapped, not read into memory
    wanted = np.array([3999, 0, 1700, 501, 1700, 2, 3500])  # across chunks, a repeat, unsorted
    got = take_rows(rows, wanted)
    assert got.equals(table.take(pa.array(wanted)))
    assert pa.total_allocated_bytes() - before < table.nbytes / 50
    assert take_rows(rows, []).num_rows == 0
    with pytest.raises(IndexError, match="row 4000 is out of range: the table has 4000 rows"):
        take_rows(rows, [1, 4000])


def test_spool_drops_empty_responses_and_is_reused_for_the_same_dataset(
    prompts_dataset, tmp_path, monkeypatch
):
    manifest = load_manifest(prompts_dataset)
    spooled = spool_rows(prompts_dataset, manifest, tmp_path, batch_rows=4)
    expected = nonempty_rows(prompts_dataset)
    rows = open_rows(spooled.path)
    assert rows.num_rows == expected.num_rows == 23  # 24 samples, one with no response
    assert rows.equals(expected.cast(rows.schema))
    assert spooled.stats == row_id_stats(expected)
    assert json.loads((tmp_path / ROWS_META).read_text())["stats"]["rows"] == 23

    def no_reading(*args, **kwargs):
        raise AssertionError("the dataset was read again")

    monkeypatch.setattr(distill.train.rows, "iter_batches", no_reading)
    assert spool_rows(prompts_dataset, manifest, tmp_path) == spooled
    # Another dataset (another manifest) in the same run dir is spooled afresh.
    other = tmp_path / "other"
    write_table_dataset(other, read_table(prompts_dataset).slice(0, 6))
    with pytest.raises(AssertionError, match="read again"):
        spool_rows(other, load_manifest(other), tmp_path)


def test_a_reused_spool_still_refuses_a_damaged_source(prompts_dataset, tmp_path):
    source = tmp_path / "ds"
    write_table_dataset(source, read_table(prompts_dataset).slice(0, 6))
    spool_rows(source, load_manifest(source), tmp_path / "run")
    (shard,) = shard_paths(source)
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x04
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256 differs"):
        spool_rows(source, load_manifest(source), tmp_path / "run")


class SeenRows(TrainerCallback):
    """The record and prompt ids of the rows the Trainer's dataset maps its items to."""

    def __init__(self, out: Path):
        self.out, self.record_ids, self.prompt_ids = out, [], []

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        rows = open_rows(self.out / ROWS_FILE)
        numbers = train_dataloader.dataset["row_index"]
        self.record_ids = [rows.column("record_id")[i].as_py() for i in numbers]
        self.prompt_ids = [rows.column("prompt_id")[i].as_py() for i in numbers]


def in_memory_run(dataset: Path, config: TrainConfig, out: Path) -> dict:
    """The former path, for reference: the whole table in memory, the split as tables."""
    train, heldout = old_split_heldout(
        nonempty_rows(dataset), fraction=config.heldout_fraction, seed=config.seed
    )
    model = AutoModelForCausalLM.from_pretrained(config.student)
    tokenizer = AutoTokenizer.from_pretrained(config.student)
    args = KDConfig(**_trainer_args(config, out), **config.kd.kd_config_fields())
    trainer = KDTrainer(model, args, train, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    initial = heldout_metrics(model, heldout)
    fed: list[list[int]] = []
    original = distill.train.collate.take_rows
    distill.train.collate.take_rows = lambda t, rows: fed.append(list(rows)) or original(t, rows)
    try:
        trainer.train()
    finally:
        distill.train.collate.take_rows = original
    ids = train.column("record_id").to_pylist()
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    return {
        "losses": losses, "initial": initial, "final": heldout_metrics(model, heldout),
        "fed": [[ids[i] for i in batch] for batch in fed],
    }  # fmt: skip


def test_training_reads_the_mapped_file_and_retraces_the_in_memory_run(
    prompts_dataset, tiny_student, tmp_path, monkeypatch
):
    config = TrainConfig(
        mode="kd", student=tiny_student, max_steps=4, batch_size=3, heldout_fraction=0.25
    )
    reference = in_memory_run(prompts_dataset, config, tmp_path / "ref")

    def refuse(*args, **kwargs):
        raise AssertionError("train_student read the whole dataset")

    for module in (distill.store, distill.store.read, pa.parquet):
        monkeypatch.setattr(module, "read_table", refuse)
    monkeypatch.setattr(distill.train.rows, "SPOOL_BATCH_ROWS", 4)  # several chunks
    mapped: list[pa.Table] = []

    def open_and_check(path):
        before = pa.total_allocated_bytes()
        mapped.append(distill.train.rows.open_rows(path))
        assert pa.total_allocated_bytes() - before < 10_000  # mapped, not read
        return mapped[-1]

    monkeypatch.setattr(distill.train.runner, "open_rows", open_and_check)
    fed: list[list[str]] = []
    original = distill.train.collate.take_rows

    def spy(table, rows):
        taken = original(table, rows)
        # The collator's table is the mapped one: its buffers are the file's.
        assert table.column("token_ids").chunk(0).buffers()[1].address == (
            mapped[0].column("token_ids").chunk(0).buffers()[1].address
        )
        fed.append([mapped[0].column("record_id")[int(i)].as_py() for i in rows])
        return taken

    monkeypatch.setattr(distill.train.collate, "take_rows", spy)
    seen = SeenRows(tmp_path / "run")
    result = train_student(prompts_dataset, tmp_path / "run", config, callbacks=[seen])
    assert mapped[0].column("token_ids").num_chunks > 1
    # The same rows in the same order, so the same losses, bit for bit.
    assert fed == reference["fed"] and len(fed) >= 4  # (the loader reads one batch ahead)
    assert result.loss_curve == reference["losses"]
    assert result.heldout_initial == reference["initial"]
    assert result.heldout == reference["final"]
    assert not set(seen.prompt_ids) & set(result.heldout_prompt_ids)
    assert len(seen.record_ids) == result.train_rows == 23 - result.heldout_rows
    # The spooled file lives as long as the run.
    assert not (tmp_path / "run" / ROWS_FILE).exists()
    assert not (tmp_path / "run" / ROWS_META).exists()


def test_the_cap_reaches_metrics_json_and_keeps_whole_prompts(
    prompts_dataset, tiny_student, tmp_path
):
    config = TrainConfig(
        mode="sft", student=tiny_student, max_steps=1, batch_size=2, heldout_fraction=0.5,
        heldout_max_rows=4, heldout_max_tokens=1000,
    )  # fmt: skip
    seen = SeenRows(tmp_path)
    uncapped = train_student(
        prompts_dataset, tmp_path / "all", config.model_copy(update={"heldout_max_rows": None})
    )
    result = train_student(prompts_dataset, tmp_path, config, callbacks=[seen])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["heldout_cap"] == {
        "max_rows": 4, "max_tokens": 1000,
        "prompts_over_cap": len(uncapped.heldout_prompt_ids) - len(result.heldout_prompt_ids),
    }  # fmt: skip
    assert metrics["heldout_cap"]["prompts_over_cap"] > 0
    assert metrics["config"]["heldout_max_rows"] == 4
    assert 0 < result.heldout_rows <= 4 < uncapped.heldout_rows
    assert set(result.heldout_prompt_ids) < set(uncapped.heldout_prompt_ids)
    # whole prompts: the held-out rows are every row of the held-out prompts
    table = nonempty_rows(prompts_dataset)
    held = pc.is_in(table.column("prompt_id"), pa.array(result.heldout_prompt_ids))
    assert pc.sum(held).as_py() == result.heldout_rows
    assert not set(seen.prompt_ids) & set(result.heldout_prompt_ids)
    assert result.train_rows == len(seen.prompt_ids) == table.num_rows - result.heldout_rows


class FailAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError(f"stopped at step {self.step}")


def test_a_failed_run_keeps_its_spool_only_when_it_can_resume(
    prompts_dataset, tiny_student, tmp_path, monkeypatch
):
    common = {"mode": "kd", "student": tiny_student, "max_steps": 3, "batch_size": 2}
    with pytest.raises(RuntimeError, match="stopped at step 2"):
        train_student(
            prompts_dataset, tmp_path / "plain", TrainConfig(**common), callbacks=[FailAt(2)]
        )
    assert not (tmp_path / "plain" / ROWS_FILE).exists()

    config = TrainConfig(save_steps=1, **common)
    with pytest.raises(RuntimeError, match="stopped at step 2"):
        train_student(prompts_dataset, tmp_path / "ckpt", config, callbacks=[FailAt(2)])
    assert (tmp_path / "ckpt" / ROWS_FILE).exists() and (tmp_path / "ckpt" / ROWS_META).exists()

    def no_reading(*args, **kwargs):
        raise AssertionError("the dataset was read again")

    monkeypatch.setattr(distill.train.rows, "iter_batches", no_reading)
    resumed = train_student(prompts_dataset, tmp_path / "ckpt", config)
    assert resumed.resumed_from_step == 1 and resumed.steps == 3
    assert not (tmp_path / "ckpt" / ROWS_FILE).exists()
