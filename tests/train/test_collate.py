"""Padding, labels and, above all, the alignment of the teacher's top-k with the logits."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from distill.schemas import records_to_table
from distill.train.collate import RecordCollator, collate_rows, shifted_labels
from tests.factories import make_record


def row(prompt, response, k=2):
    """Response token j has top-k ids [100 + j, 200 + j, ...] and tail 0.01 * (j + 1)."""
    return {
        "prompt_token_ids": prompt,
        "token_ids": response,
        "topk_ids": [[100 * (s + 1) + j for s in range(k)] for j in range(len(response))],
        "topk_logprobs": [[-0.1 * (s + 1) - j for s in range(k)] for j in range(len(response))],
        "tail_mass": [0.01 * (j + 1) for j in range(len(response))],
    }


def test_teacher_topk_is_aligned_with_the_logit_that_predicts_the_token():
    batch = collate_rows([row([5, 6, 7], [8, 9]), row([4], [10, 11, 12], k=3)], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [4, 10, 11, 12, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, -100, -100, 8, 9], [-100, 10, 11, 12, -100]]
    # Row 0: response token j=0 (id 8) is predicted from position len(prompt)-1 = 2.
    assert batch["target_mask"].tolist() == [
        [False, False, True, True, False],
        [True, True, True, False, False],
    ]
    assert batch["teacher_ids"][0, 2].tolist() == [100, 200, 0]  # k padded to 3
    assert batch["teacher_topk_mask"][0, 2].tolist() == [True, True, False]
    assert batch["teacher_ids"][0, 3].tolist() == [101, 201, 0]
    assert batch["teacher_ids"][1, 0].tolist() == [100, 200, 300]
    assert batch["teacher_ids"][1, 2].tolist() == [102, 202, 302]
    assert batch["teacher_tail"][0, 2:4].tolist() == pytest.approx([0.01, 0.02])
    assert batch["teacher_logprobs"][1, 1].tolist() == pytest.approx([-1.1, -1.2, -1.3])
    assert not batch["teacher_topk_mask"][~batch["target_mask"]].any()
    # The shifted labels (what logits[t] should predict) sit exactly where the targets are.
    shifted = shifted_labels(batch["labels"])
    assert ((shifted != -100) == batch["target_mask"]).all()
    assert shifted[batch["target_mask"]].tolist() == [8, 9, 10, 11, 12]


def test_alignment_matches_a_per_token_reference_on_real_records():
    records = [make_record(row=i, n_tokens=3 + i, top_k=4) for i in range(3)]
    table = records_to_table(records)
    batch = collate_rows(table)
    for b, rec in enumerate(records):
        p = len(rec.prompt_token_ids)
        for j, token in enumerate(rec.token_ids):
            t = p + j - 1
            assert batch["teacher_ids"][b, t].tolist() == rec.topk_ids[j]
            assert batch["input_ids"][b, t + 1] == token
            # the teacher's top-1 is the sampled token in these fake records
            assert batch["teacher_ids"][b, t, 0] == token
    # num_items_in_batch (Trainer counts labels[..., 1:]) equals the loss's valid positions
    assert int((batch["labels"][:, 1:] != -100).sum()) == int(batch["target_mask"].sum())


def test_dict_rows_table_rows_and_slices_agree():
    records = [make_record(row=i, n_tokens=2 + i, top_k=3) for i in range(4)]
    table = records_to_table(records)
    from_table = collate_rows(table.slice(1, 2))
    from_dicts = collate_rows(table.slice(1, 2).to_pylist())
    for key in from_table:
        assert torch.equal(from_table[key], from_dicts[key]), key
    from_collator = RecordCollator(table)([{"row_index": 1}, {"row_index": 2}])
    for key in from_table:
        assert torch.equal(from_table[key], from_collator[key]), key


def test_without_teacher_and_empty_prompt():
    batch = collate_rows([{"prompt_token_ids": [], "token_ids": [3, 4]}], with_teacher=False)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    # the first response token has no position to be predicted from
    assert batch["labels"].tolist() == [[-100, 4]]


def test_mismatched_topk_length_is_refused():
    bad = row([1], [2, 3])
    bad["topk_ids"] = bad["topk_ids"][:1]
    bad["topk_logprobs"] = bad["topk_logprobs"][:1]
    with pytest.raises(ValueError, match="one entry per response token"):
        collate_rows(pa.Table.from_pylist([bad]))
