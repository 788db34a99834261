"""axolotl-kd exports against the contract in `distill.export.axolotl_kd` (axolotl 0.19.0):
target position p holds the teacher's distribution over input_ids[p + 1], renormalised over
its k entries; the mask covers exactly the positions that predict a response token."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from distill.codec import LOGPROB_BOUND, decode_topk
from distill.export import ExportConfig, axolotl_kd_rows, export_dataset
from distill.export.axolotl_kd import PAD_LOGPROB
from distill.schemas import records_to_table
from distill.store import load_manifest, read_table
from tests.factories import make_record


def check_row(row: dict, source: dict, ids: list, logprobs: list, tol: float) -> int:
    """`row` (exported) against `source` (the record), its decoded top-k `ids`/`logprobs`;
    returns how many sampled tokens the top-k held (each of which was checked): its target
    log-prob is `sampled_logprob` renormalised, within `tol` (the codec's rounding)."""
    prompt, response = source["prompt_token_ids"], source["token_ids"]
    found = 0
    P, n = len(prompt), len(response)
    assert row["input_ids"] == prompt + response
    assert row["attention_mask"] == [1] * (P + n)
    assert row["labels"] == [-100] * P + response
    assert row["record_id"] == source["record_id"]
    mask = np.array(row["target_mask"])
    assert mask.shape == (P + n, len(ids[0]))
    predicting = np.flatnonzero(mask.any(axis=1))
    assert predicting.tolist() == list(range(P - 1, P + n - 1))
    for j in range(n):
        p = P - 1 + j
        # axolotl's loss pairs target[p] with the student's logits at p, whose hard label is
        # labels[p + 1] (liger.py shifts the labels): the response token j.
        assert row["labels"][p + 1] == response[j]
        assert row["target_token_ids"][p] == list(ids[j])
        stored = np.asarray(logprobs[j], np.float64)
        want = stored - np.log(np.exp(stored).sum())
        np.testing.assert_allclose(row["target_logprobs"][p], want, atol=2e-6)
        assert abs(np.exp(row["target_logprobs"][p]).sum() - 1) < 1e-5
        if response[j] in ids[j]:  # the sampled token, where the teacher's top-k holds it
            s = list(ids[j]).index(response[j])
            got = row["target_logprobs"][p][s]
            assert abs(got - (source["sampled_logprob"][j] - np.log(np.exp(stored).sum()))) <= tol
            found += 1
    for p in set(range(P + n)) - set(predicting):
        assert row["target_logprobs"][p] == [PAD_LOGPROB] * len(ids[0])
        assert row["target_token_ids"][p] == list(range(len(ids[0])))
    return found


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_axolotl_kd_rows_follow_the_contract(source: Path, tmp_path: Path, suffix: str):
    out = tmp_path / f"kd{suffix}"
    export_dataset(source, ExportConfig(format="axolotl-kd", out=out, batch_rows=7))
    loader = "json" if suffix == ".jsonl" else "parquet"
    rows = datasets.load_dataset(loader, data_files=str(out), split="train").to_list()
    table = read_table(source)
    topk = decode_topk(table)
    ids, lps, _ = topk.padded()
    starts = np.concatenate([[0], np.cumsum(topk.tokens_per_row)])
    tol = 1e-5 if load_manifest(source).codec == "plain" else LOGPROB_BOUND + 1e-5
    assert len(rows) == table.num_rows == 40
    sampled_in_topk = 0
    for i, (row, record) in enumerate(zip(rows, table.to_pylist(), strict=True)):
        row_ids, row_lps = ids[starts[i] : starts[i + 1]], lps[starts[i] : starts[i + 1]]
        sampled_in_topk += check_row(row, record, row_ids, row_lps, tol)
    assert sampled_in_topk > 0.9 * int(topk.tokens_per_row.sum())  # the check above ran


def test_positions_with_fewer_entries_are_padded_and_masked():
    record = make_record(n_tokens=3, top_k=4)
    record.topk_ids[1] = record.topk_ids[1][:2]  # a token whose top-k lost two entries
    record.topk_logprobs[1] = record.topk_logprobs[1][:2]
    row = axolotl_kd_rows(records_to_table([record])).to_pylist()[0]
    P = len(record.prompt_token_ids)
    assert row["target_mask"][P] == [1, 1, 0, 0]
    assert row["target_token_ids"][P] == record.topk_ids[1] + [2, 3]
    assert row["target_logprobs"][P][2:] == [PAD_LOGPROB, PAD_LOGPROB]
    assert abs(np.exp(row["target_logprobs"][P][:2]).sum() - 1) < 1e-6
    assert row["target_mask"][P - 1] == row["target_mask"][P + 1] == [1, 1, 1, 1]


def test_axolotl_collator_reads_the_export(plain_dataset: Path, tmp_path: Path):
    """axolotl's own DataCollatorForKD on exported rows, where axolotl imports (a venv with
    it); the batch must hold the targets at the positions the contract names."""
    collator_module = pytest.importorskip("axolotl.integrations.kd.collator")
    from axolotl.utils.data.wrappers import _is_dataset_already_tokenized
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    out = tmp_path / "kd.parquet"
    export_dataset(plain_dataset, ExportConfig(format="axolotl-kd", out=out))
    loaded = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert _is_dataset_already_tokenized(loaded)  # axolotl runs no prompt strategy on it
    rows = pq.read_table(out).slice(0, 3).to_pylist()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0})))
    tokenizer.pad_token = "<pad>"
    collator = collator_module.DataCollatorForKD(tokenizer=tokenizer)
    features = [{k: v for k, v in r.items() if k != "record_id"} for r in rows]
    batch = collator(features)
    longest = max(len(r["input_ids"]) for r in rows)
    assert tuple(batch["target_token_ids"].shape[:2]) == (3, longest)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        assert batch["target_token_ids"][i, :n].tolist() == row["target_token_ids"]
        assert batch["target_mask"][i, :n].tolist() == row["target_mask"]
        assert batch["labels"][i, :n].tolist() == row["labels"]


def test_axolotl_kd_loss_is_zero_for_a_student_that_predicts_the_teacher(
    plain_dataset: Path, tmp_path: Path
):
    """axolotl's own KD loss (liger kernel, as `AxolotlKDTrainer` calls it) on the export.

    The student is built from the records alone, by what a causal LM means: its hidden
    state at position p (one-hot p) reads input_ids[: p + 1], so its logits there are the
    teacher's renormalised top-k over input_ids[p + 1] (-30 elsewhere). If the export put
    each target where the loss looks for it, the KL is ~0; one position off, it is not."""
    liger = pytest.importorskip("axolotl.integrations.kd.kernels.liger")
    import torch

    out = tmp_path / "kd.parquet"
    export_dataset(plain_dataset, ExportConfig(format="axolotl-kd", out=out))
    loss_fn = liger.LigerFusedLinearKLTopKLogprobLoss(
        0.0, 1.0, 1.0, 0.0, compiled=False, compute_ce_loss=False, normalize_topk=False
    )
    vocab = load_manifest(plain_dataset).tokenizer.vocab_size
    for row, record in zip(
        pq.read_table(out).slice(0, 2).to_pylist(),
        read_table(plain_dataset).slice(0, 2).to_pylist(),
        strict=True,
    ):
        P, n = len(record["prompt_token_ids"]), len(record["token_ids"])
        weight = torch.full((vocab, P + n), -30.0)
        for j in range(n):
            stored = torch.tensor(record["topk_logprobs"][j], dtype=torch.float64)
            weight[record["topk_ids"][j], P - 1 + j] = (stored - stored.logsumexp(0)).float()
        hidden = torch.eye(P + n)[None]
        targets = [
            torch.tensor(row[k])[None]
            for k in ("target_token_ids", "target_logprobs", "target_mask")
        ]
        labels = torch.tensor(row["labels"])[None]
        aligned = loss_fn(weight, hidden, *targets, labels) / n
        shifted = loss_fn(weight.roll(1, dims=1), hidden, *targets, labels) / n
        assert aligned.item() < 1e-4
        assert shifted.item() > 0.1
