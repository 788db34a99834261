"""Deterministic fake records for tests that don't need the real teacher."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distill.codec import encode_table
from distill.schemas import (
    CODECS,
    RECORD_SCHEMA,
    SCHEMA_VERSION,
    Manifest,
    SamplingParams,
    TeacherInfo,
    TeacherRecord,
    make_record_id,
    records_to_table,
    schema_for,
)
from distill.schemas.manifest import TokenizerInfo
from distill.store import new_dataset_id, write_dataset

FAKE_VOCAB = 64


def fake_teacher(top_k: int = 4, vocab_size: int = FAKE_VOCAB) -> TeacherInfo:
    return TeacherInfo(
        model_id="fake-teacher",
        revision="0" * 64,
        backend="fake",
        tokenizer_hash="tok0",
        vocab_size=vocab_size,
        chat_template_hash="tpl0",
        top_k=top_k,
        sampling=SamplingParams(max_new_tokens=16),
    )


def teacher_for_tokenizer(tokenizer_dir: Path, top_k: int, vocab_size: int) -> TeacherInfo:
    """A fake teacher whose tokenizer fingerprints are those of the tokenizer saved in
    `tokenizer_dir`, so a student built on that tokenizer passes the compat check."""
    from transformers import AutoTokenizer

    from distill.tokenizer_info import describe_tokenizer

    info = describe_tokenizer(AutoTokenizer.from_pretrained(tokenizer_dir))
    return fake_teacher(top_k=top_k, vocab_size=vocab_size).model_copy(
        update={
            "tokenizer_hash": info.tokenizer_hash,
            "chat_template_hash": info.chat_template_hash,
        }
    )


def make_record(
    prompt: str = "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6",
    response: str = "Two plus two is four. Answer: B",
    *,
    row: int = 0,
    sample_index: int = 0,
    domain: str | None = "math",
    reference: str | None = "B",
    finish_reason: str = "stop",
    n_tokens: int | None = None,
    top_k: int = 4,
    seed: int = 0,
    teacher: TeacherInfo | None = None,
) -> TeacherRecord:
    """A record whose top-k payload is a valid, seeded log-softmax over the teacher's vocab.

    `record_id` depends on `row`, `sample_index` and the teacher only: give distinct rows
    distinct `row` values, or they collide.
    """
    teacher = teacher or fake_teacher(top_k=top_k)
    rng = np.random.default_rng(seed + 1000 * row + sample_index)
    n = n_tokens if n_tokens is not None else max(1, len(response.split()))
    logits = rng.normal(size=(n, teacher.vocab_size)) * 2
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    # argpartition, then sort only the k winners: a full argsort over a 49k vocab per
    # token made building 200-token records take a second each.
    part = np.argpartition(-logp, top_k - 1, axis=-1)[:, :top_k]
    part_lp = np.take_along_axis(logp, part, -1)
    order = np.take_along_axis(part, np.argsort(-part_lp, axis=-1), -1)
    top_lp = np.take_along_axis(logp, order, -1)
    token_ids = order[:, 0].tolist()
    prompt_id = f"p{row:05d}"
    return TeacherRecord(
        record_id=make_record_id(prompt_id, sample_index, teacher.teacher_id),
        prompt_id=prompt_id,
        sample_index=sample_index,
        teacher_id=teacher.teacher_id,
        run_id="run-test",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        source_file="prompts.jsonl",
        source_row=row,
        domain=domain,
        reference=reference,
        messages=[{"role": "user", "content": prompt}],
        prompt_token_ids=[1, 2, 3],
        response_text=response,
        token_ids=token_ids,
        topk_ids=order.tolist(),
        topk_logprobs=top_lp.astype(np.float32).tolist(),
        sampled_logprob=top_lp[:, 0].astype(np.float32).tolist(),
        tail_mass=[max(0.0, 1.0 - float(np.exp(r).sum())) for r in top_lp],
        finish_reason=finish_reason,
        teacher=teacher,
    )


def write_fake_dataset(
    dataset_dir: Path,
    records: list[TeacherRecord],
    tokenizer: TokenizerInfo | None = None,
    **manifest_fields: Any,
) -> Manifest:
    teacher = records[0].teacher if records else fake_teacher()
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        kind="generated",
        dataset_id=new_dataset_id(),
        teachers=manifest_fields.pop("teachers", [teacher]),
        tokenizer=tokenizer
        or TokenizerInfo(
            tokenizer_hash=teacher.tokenizer_hash,
            vocab_size=teacher.vocab_size,
            chat_template_hash=teacher.chat_template_hash,
        ),
        top_k=teacher.top_k,
        **manifest_fields,
    )
    return write_dataset(dataset_dir, records_to_table(records), RECORD_SCHEMA, manifest)


def write_table_dataset(
    dataset_dir: Path,
    table: pa.Table,
    codec: str = "plain",
    rows_per_shard: int = 4096,
    **manifest_fields: Any,
) -> Manifest:
    """A dataset of `table`'s records (any codec in, `codec` out), its manifest naming every
    teacher of the `teacher` column: e.g. rows of tests/fixtures/smollm2_mmlu.parquet."""
    teachers: dict[str, TeacherInfo] = {}
    for teacher in table.column("teacher").to_pylist():
        teachers.setdefault(teacher["model_id"], TeacherInfo(**teacher))
    first = next(iter(teachers.values()))
    manifest = Manifest(
        schema_version=CODECS[codec],
        codec=codec,
        kind="generated",
        dataset_id=new_dataset_id(),
        teachers=list(teachers.values()),
        tokenizer=TokenizerInfo(
            tokenizer_hash=first.tokenizer_hash,
            vocab_size=first.vocab_size,
            chat_template_hash=first.chat_template_hash,
        ),
        top_k=first.top_k,
        **manifest_fields,
    )
    table = encode_table(table, codec)
    return write_dataset(dataset_dir, table, schema_for(codec), manifest, rows_per_shard)


def write_toy_checkpoint(out_dir: Path, vocab: int, **config: Any) -> Path:
    """A checkpoint dir with only a Llama config and a word-level toy tokenizer ("w2"...):
    the template `build_random_student` copies, when no real tokenizer file is at hand
    (a GPU machine with nothing to download)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    words = {"<pad>": 0, "<eos>": 1, **{f"w{i}": i for i in range(2, vocab)}}
    core = Tokenizer(WordLevel(words, unk_token="<pad>"))
    core.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tokenizer.save_pretrained(out_dir)
    LlamaConfig(
        vocab_size=vocab, bos_token_id=1, eos_token_id=1, pad_token_id=0, **config
    ).save_pretrained(out_dir)
    return Path(out_dir)
