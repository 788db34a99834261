"""Trainers that read distill records from an Arrow table: the shared base and hard-label SFT.

`RecordTrainer(SFTTrainer)` swaps in only the data path: the dataset the sampler iterates
is a column of row indices, and `RecordCollator` turns the sampled rows into padded tensors.
Optimiser, schedule, logging, gradient accumulation and saving stay SFTTrainer's.

Its `compute_loss` projects only the response positions through the LM head
(`student.logits_at`). TRL's own SFT loss (its fused, tiled LM head) gives the same
cross-entropy but on a CPU scores every position in Python-driven tiles and ran ~9x slower
(8.6 s vs 0.9 s per step at vocab 49k, batch 8, 250 tokens). `HardLabelTrainer` is
therefore the default SFT trainer; `TrainConfig(sft_backend="trl")` keeps TRL's
plain SFTTrainer for cross-checking (tests check the two losses agree).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from datasets import Dataset
from datasets.table import InMemoryTable
from trl import SFTConfig, SFTTrainer

from distill.train.collate import RecordCollator, shifted_labels
from distill.train.losses import hard_label_loss
from distill.train.student import logits_at


def index_dataset(table: pa.Table, rows: np.ndarray | None = None) -> Dataset:
    """What the Trainer's sampler iterates: item i is row `rows[i]` of `table` (default:
    every row). 8 bytes a row: the sampler shuffles these, never the records."""
    numbers = np.arange(table.num_rows) if rows is None else np.asarray(rows)
    return Dataset(InMemoryTable(pa.table({"row_index": pa.array(numbers, pa.int64())})))


class RecordTrainer(SFTTrainer):
    """SFTTrainer over an Arrow table of records (`distill.store.read_table(dir)`).

    Subclasses set `with_teacher` (whether batches carry the top-k targets) and
    implement `compute_loss`. `train_rows` (int64 row numbers) trains on those rows of
    `train_dataset` only, e.g. the train split of a memory-mapped table
    (`distill.train.rows`); default: every row.
    """

    with_teacher = False

    def __init__(
        self,
        model: Any,
        args: SFTConfig,
        train_dataset: pa.Table,
        processing_class: Any = None,
        train_rows: np.ndarray | None = None,
        **kwargs: Any,
    ):
        # The records are already token ids: TRL's text preparation must not touch them.
        args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
        pad_id = getattr(processing_class, "pad_token_id", None) or 0
        super().__init__(
            model=model,
            args=args,
            train_dataset=index_dataset(train_dataset, train_rows),
            data_collator=self.make_collator(train_dataset, pad_id),
            processing_class=processing_class,
            **kwargs,
        )

    def make_collator(self, table: pa.Table, pad_token_id: int) -> Any:
        """The collator of the sampled rows (called before SFTTrainer's init: no state)."""
        return RecordCollator(table, with_teacher=self.with_teacher, pad_token_id=pad_token_id)

    def _set_signature_columns_if_needed(self):
        # The only dataset column is the row index the collator resolves; keep it.
        if self._signature_columns is None:
            self._signature_columns = ["row_index"]

    @staticmethod
    def response_logits(model: Any, inputs: dict) -> tuple[Any, Any, Any]:
        """(logits `[N, V]`, shifted labels `[N]`, position mask `[B, L]`) at response positions."""
        labels = shifted_labels(inputs["labels"])
        where = inputs.get("target_mask", labels != -100)
        logits = logits_at(model, inputs["input_ids"], inputs["attention_mask"], where)
        return logits, labels[where], where


class HardLabelTrainer(RecordTrainer):
    """SFT on the teacher's sampled tokens: cross-entropy on response tokens only."""

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "distill-sft"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, labels, _ = self.response_logits(model, inputs)
        loss = hard_label_loss(logits, labels, num_items_in_batch=num_items_in_batch)
        return (loss, {"logits": logits}) if return_outputs else loss
