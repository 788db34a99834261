"""KD for a student on another tokenizer: its collator, trainer and held-out metrics.

The rows are `cross_rows`' (student ids, the teacher's top-k at aligned student tokens), so
`collate_rows` batches them as it batches any record; `collate_cross_rows` adds where a
teacher target was aligned (`kd_mask`: a non-empty top-k) and each top-k entry's one-to-one
student id (`teacher_student_ids`, -1: none). `CrossKDTrainer` is `KDTrainer`'s sibling:
the same data path and TRL machinery, the loss of `cross_tokenizer_losses`.

Held out, a student on another tokenizer can't be scored per teacher token, so
`CrossHeldoutEval` gives the NLL of the teacher's text per byte (nats), which is comparable
across tokenizers, beside the per-token NLL and both KD terms at the aligned tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import torch
from trl import SFTConfig

from distill.train.collate import TOKEN_COLUMNS, collate_rows, shifted_labels
from distill.train.cross_tokenizer_losses import (
    CrossLossSpec,
    CrossTargets,
    cross_distill_loss,
    cross_kd_per_token,
)
from distill.train.kd_trainer import KDConfig
from distill.train.losses import TeacherTargets
from distill.train.record_trainer import RecordTrainer
from distill.train.rows import take_rows
from distill.train.schedules import scheduled_alpha
from distill.train.student import logits_at

CROSS_COLUMNS = [*TOKEN_COLUMNS, "topk_ids", "topk_logprobs", "tail_mass"]


def collate_cross_rows(
    rows: pa.Table | Sequence[Mapping[str, Any]], mapping: np.ndarray, pad_token_id: int = 0
) -> dict[str, torch.Tensor]:
    """`collate_rows` of student rows, plus `kd_mask` `[B, L]` and `teacher_student_ids`
    `[B, L, k]` (the student id of each stored teacher id; -1 where none is one-to-one)."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
    batch = collate_rows(table.select(CROSS_COLUMNS), pad_token_id=pad_token_id)
    ids = batch["teacher_ids"].numpy()
    inside = ids < mapping.size
    student_ids = np.where(inside, mapping[np.where(inside, ids, 0)], -1)
    mask = batch["teacher_topk_mask"]
    batch["teacher_student_ids"] = torch.from_numpy(np.where(mask.numpy(), student_ids, -1))
    batch["kd_mask"] = batch["target_mask"] & mask.any(-1)
    return batch


class CrossCollator:
    """Trainer collator over student rows: `{"row_index": i}` -> `collate_cross_rows`."""

    def __init__(self, table: pa.Table, mapping: np.ndarray, pad_token_id: int = 0):
        self.table, self.mapping, self.pad_token_id = (
            table.select(CROSS_COLUMNS),
            mapping,
            pad_token_id,
        )

    def __call__(self, examples: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rows = take_rows(self.table, [int(e["row_index"]) for e in examples])
        return collate_cross_rows(rows, self.mapping, self.pad_token_id)


class CrossKDTrainer(RecordTrainer):
    """SFTTrainer whose loss is ULD or the hybrid against teacher targets aligned by bytes.

    `args` is a `KDConfig` (alpha and its schedule are read; temperature stays 1).
    `mapping` is `CrossVocab.mapping`, `loss` "uld" | "hybrid".
    """

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "distill-kd", "cross-tokenizer"]

    def __init__(
        self,
        model: Any,
        args: SFTConfig,
        train_dataset: pa.Table,
        *,
        mapping: np.ndarray,
        loss: str,
        **kwargs: Any,
    ):
        if not isinstance(args, KDConfig):
            raise TypeError("CrossKDTrainer needs a KDConfig (alpha lives there)")
        self.mapping, self.cross_loss = mapping, loss
        super().__init__(model, args, train_dataset, **kwargs)
        vocab = int(model.get_output_embeddings().weight.shape[0])
        self.unmatched_student = unmatched_student_ids(mapping, vocab)

    def make_collator(self, table: pa.Table, pad_token_id: int) -> CrossCollator:
        return CrossCollator(table, self.mapping, pad_token_id)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits, labels, where = self.response_logits(model, inputs)
        progress = self.state.global_step / max(int(self.state.max_steps or 0), 1)
        alpha = scheduled_alpha(
            self.args.alpha_schedule, progress, self.args.alpha, self.args.alpha_end
        )
        spec = CrossLossSpec(self.cross_loss, alpha, self.unmatched_student.to(logits.device))
        targets = CrossTargets(
            TeacherTargets.from_batch(inputs).at(where), inputs["teacher_student_ids"][where]
        )
        parts = cross_distill_loss(
            logits, targets, labels, inputs["kd_mask"][where], spec,
            num_items_in_batch=num_items_in_batch,
        )  # fmt: skip
        mode = "train" if model.training else "eval"
        scale = float(num_items_in_batch or parts.num_tokens) / max(int(parts.num_tokens), 1)
        self._metrics[mode][f"kd_{self.cross_loss}"].append(float(parts.kd.detach()) * scale)
        self._metrics[mode]["ce"].append(float(parts.ce.detach()) * scale)
        self._metrics[mode]["kd_alpha"].append(alpha)
        return (parts.loss, {"logits": logits}) if return_outputs else parts.loss


def unmatched_student_ids(mapping: np.ndarray, student_vocab: int) -> torch.Tensor:
    """`[V_student]` bool: the student ids no teacher id maps to (the hybrid's ULD side)."""
    free = np.ones(student_vocab, dtype=bool)
    free[mapping[(mapping >= 0) & (mapping < student_vocab)]] = False
    return torch.from_numpy(free)


class CrossHeldoutEval:
    """`heldout_eval` for a cross-tokenizer run: `{"nll_per_byte", "nll", "uld", "hybrid",
    "tokens", "aligned_tokens", "bytes"}` over the held-out student rows (no grad).

    NLL per byte: the student's summed NLL of the response tokens over the response's UTF-8
    bytes (nats per byte). ULD and hybrid: per aligned token, at T = 1.
    """

    def __init__(self, mapping: np.ndarray, batch_size: int = 8):
        self.mapping, self.batch_size = mapping, batch_size

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, table: pa.Table) -> dict:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        vocab = int(model.get_output_embeddings().weight.shape[0])
        free = unmatched_student_ids(self.mapping, vocab).to(device)
        sums = {"nll": 0.0, "uld": 0.0, "hybrid": 0.0}
        tokens = aligned = 0
        try:
            for start in range(0, table.num_rows, self.batch_size):
                batch = collate_cross_rows(table.slice(start, self.batch_size), self.mapping)
                batch = {k: v.to(device) for k, v in batch.items()}
                where = batch["target_mask"]
                logits = logits_at(model, batch["input_ids"], batch["attention_mask"], where)
                log_q = torch.log_softmax(logits.float(), dim=-1)
                labels = shifted_labels(batch["labels"])[where]
                sums["nll"] -= float(log_q.gather(-1, labels.unsqueeze(-1)).sum())
                at = batch["kd_mask"][where]
                targets = CrossTargets(
                    TeacherTargets.from_batch(batch).at(where).at(at),
                    batch["teacher_student_ids"][where][at],
                )
                for loss in ("uld", "hybrid"):
                    sums[loss] += float(cross_kd_per_token(log_q[at], targets, loss, free).sum())
                tokens += int(where.sum())
                aligned += int(at.sum())
        finally:
            model.train(was_training)
        n_bytes = int(np.asarray(table.column("response_bytes")).sum()) if table.num_rows else 0
        return {
            "nll_per_byte": sums["nll"] / max(n_bytes, 1),
            "nll": sums["nll"] / max(tokens, 1),
            "uld": sums["uld"] / max(aligned, 1),
            "hybrid": sums["hybrid"] / max(aligned, 1),
            "tokens": tokens,
            "aligned_tokens": aligned,
            "bytes": n_bytes,
        }
