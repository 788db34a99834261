"""`distill gen`: prompts -> teacher -> sharded records with top-k, resumable.

Resume rule (every backend): a record's key is (prompt id, sample index, teacher id).
On start we read the record ids already in the output's shards and send only what is
missing, so re-running the same command after a crash or Ctrl-C completes the dataset
with no duplicates. A run that would mix settings (another teacher, k or sampling) into
an existing output is refused, naming what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc

from distill.gen.backend import Generation, TeacherBackend
from distill.gen.progress import GenProgress
from distill.gen.prompts import FieldMapping, PromptFormat, PromptRow, load_prompts
from distill.gen.sampled_targets import TARGETS
from distill.gen.teachers import DEFAULT_TEACHER, load_teacher
from distill.schemas import (
    CODECS,
    Manifest,
    SamplingParams,
    TeacherInfo,
    TeacherRecord,
    make_record_id,
    records_to_table,
    schema_for,
)
from distill.store import (
    load_manifest,
    new_dataset_id,
    read_table,
    remove_stale_temporaries,
    save_manifest,
    scan_shards,
    shard_paths,
    write_shard,
)

INVALID_PROMPTS_FILE = "invalid_prompts.jsonl"


@dataclass
class GenResult:
    out_dir: Path
    records_total: int
    records_written: int
    records_skipped_existing: int
    prompts: int
    invalid_prompts: int
    tokens_generated: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def sample_seed(seed: int, record_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()[:15], 16)


def check_resumable(out_dir: Path, info: TeacherInfo, codec: str = "plain") -> Manifest | None:
    """The existing manifest if out_dir may be resumed with these settings, else an error."""
    if not (out_dir / "manifest.json").is_file():
        return None  # a new output, or one that crashed before its first manifest
    manifest = load_manifest(out_dir)
    if manifest.kind != "generated":
        raise ValueError(f"{out_dir}: holds a '{manifest.kind}' dataset, not gen output")
    if manifest.codec != codec:
        raise ValueError(
            f"{out_dir}: holds records written with --codec {manifest.codec}; "
            f"resume with --codec {manifest.codec} or use another --out"
        )
    old = manifest.teachers[0] if manifest.teachers else None
    if old is not None and old != info:
        diffs = [
            f"{key}: existing {getattr(old, key)!r} vs now {getattr(info, key)!r}"
            for key in type(info).model_fields
            if getattr(old, key) != getattr(info, key)
        ]
        raise ValueError(
            f"{out_dir}: already holds records made with other settings; use another --out "
            "or the same settings to resume. Differences:\n  " + "\n  ".join(diffs)
        )
    return manifest


def existing_record_ids(out_dir: Path) -> set[str]:
    if not shard_paths(out_dir):
        return set()
    return set(read_table(out_dir, columns=["record_id"]).column("record_id").to_pylist())


def _write_invalid(out_dir: Path, invalid: list) -> None:
    path = out_dir / INVALID_PROMPTS_FILE
    with path.open("w", encoding="utf-8") as fh:
        for item in invalid:
            fh.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")


def build_manifest(
    out_dir: Path,
    previous: Manifest | None,
    teacher: TeacherBackend,
    info: TeacherInfo,
    params: dict,
    run_id: str,
    counts: dict[str, int],
    codec: str = "plain",
) -> Manifest:
    shards = scan_shards(out_dir)
    run_ids = [*(previous.run_ids if previous else []), run_id]
    return Manifest(
        schema_version=CODECS[codec],
        codec=codec,
        kind="generated",
        dataset_id=previous.dataset_id if previous else new_dataset_id(),
        teachers=[info],
        tokenizer=teacher.tokenizer_info(),
        top_k=info.top_k,
        params=params,
        targets=params.get("targets", "topk"),
        counts={**counts, "rows": sum(s.rows for s in shards)},
        shards=shards,
        run_ids=list(dict.fromkeys(run_ids)),
    )


def generate_dataset(
    prompts_path: Path,
    out_dir: Path,
    *,
    fmt: PromptFormat | None = None,
    teacher: str | TeacherBackend = DEFAULT_TEACHER,
    teacher_options: dict | None = None,
    api_key_env: str | None = None,
    top_k: int = 20,
    sampling: SamplingParams | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    mapping: FieldMapping | None = None,
    system_prompt: str | None = None,
    batch_size: int = 16,
    shard_size: int = 64,
    progress: bool = True,
    codec: str = "plain",
    targets: str = "topk",
) -> GenResult:
    """`codec`: "plain" (schema 1 lists) or "packed" (schema 2, see `distill.codec`).

    `targets`: "topk" (the teacher's k most likely ids) or "sampled" (k draws from its
    distribution with importance weights, `distill.gen.sampled_targets`; hf teachers only),
    recorded as the manifest's `targets` (and in `params`).

    `teacher` is a spec (`hf:PATH`, `vllm:DIR`, `openai:MODEL@URL`) or a loaded backend;
    `teacher_options` configure the backend (see `distill.gen.teachers.load_teacher`) and
    `api_key_env` names the environment variable an API backend reads its key from.
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    sampling = sampling or SamplingParams()
    out_dir = Path(out_dir)
    batch = load_prompts(prompts_path, fmt, mapping, system_prompt, skip_invalid, limit)
    if isinstance(teacher, str):
        model = load_teacher(teacher, teacher_options, top_k=top_k, api_key_env=api_key_env)
    else:
        model = teacher
    if targets not in TARGETS:
        raise ValueError(f"--targets {targets!r}: use one of {list(TARGETS)}")
    if targets != "topk":
        if not hasattr(model, "targets"):
            raise ValueError(f"--targets {targets}: only the hf teacher backend supports it")
        model = dataclasses.replace(model, targets=targets)
    info = model.info(top_k, sampling)
    if top_k < 1 or (info.vocab_size and top_k > info.vocab_size):  # 0: unknown (an API)
        raise ValueError(f"--top-k {top_k}: must be between 1 and the vocab size")
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = check_resumable(out_dir, info, codec)
    held = previous.targets if previous is not None else targets
    if held != targets:
        raise ValueError(
            f"{out_dir}: holds {held} targets; resume with --targets {held} or use another --out"
        )
    remove_stale_temporaries(out_dir)
    if batch.invalid:
        _write_invalid(out_dir, batch.invalid)
    existing = existing_record_ids(out_dir)
    run_id = new_run_id()
    params = {
        "prompts": str(prompts_path),
        "format": fmt,
        "limit": limit,
        "system_prompt": system_prompt,
        "skip_invalid": skip_invalid,
        "batch_size": batch_size,
        "targets": targets,
    }
    if getattr(model, "hard_labels", False):
        # No token ids from this teacher: records hold text only, and KD must refuse them.
        params["hard_labels"] = True
    work = [
        (row, index, model.encode_chat(row.messages))
        for row in batch.rows
        for index in range(sampling.n)
        if make_record_id(row.prompt_id, index, info.teacher_id) not in existing
    ]
    # Longest prompts first, in length order: less left-padding per batch, and the
    # slowest batches show up at the start of the progress bar, not the end.
    work.sort(key=lambda item: -len(item[2]))
    counts = {
        "prompts": len(batch.rows),
        "invalid_prompts": len(batch.invalid),
        "skipped_header_rows": batch.skipped_headers,
        "skipped_existing": len(batch.rows) * sampling.n - len(work),
    }
    writer = ShardWriter(
        out_dir,
        codec,
        shard_size,
        lambda: build_manifest(out_dir, previous, model, info, params, run_id, counts, codec),
    )
    tokens = 0
    with GenProgress(total=len(work), enabled=progress) as bar:
        for start in range(0, len(work), batch_size):
            chunk = work[start : start + batch_size]
            ids = [make_record_id(row.prompt_id, index, info.teacher_id) for row, index, _ in chunk]
            gens = model.generate(
                [p for _, _, p in chunk],
                sampling,
                top_k,
                seeds=[sample_seed(sampling.seed, rid) for rid in ids],
                messages=[row.messages for row, _, _ in chunk],
            )
            now = datetime.now(UTC)
            tokens += sum(len(g.token_ids) for g in gens)
            for gen in gens:
                for key, value in gen.usage.items():
                    counts[f"usage_{key}"] = counts.get(f"usage_{key}", 0) + value
            bar.advance(len(chunk), sum(len(g.token_ids) for g in gens))
            # after the usage sums: a flush rewrites the manifest from `counts`
            writer.add(
                [
                    build_record(row, index, rid, prompt_ids, gen, model, info, run_id, now)
                    for (row, index, prompt_ids), rid, gen in zip(chunk, ids, gens, strict=True)
                ]
            )
    final = writer.finish()
    return GenResult(
        out_dir=out_dir,
        records_total=final.counts["rows"],
        records_written=writer.written,
        records_skipped_existing=counts["skipped_existing"],
        prompts=len(batch.rows),
        invalid_prompts=len(batch.invalid),
        tokens_generated=tokens,
        seconds=bar.elapsed,
        counts=final.counts,
    )


def build_record(
    row: PromptRow,
    index: int,
    record_id: str,
    prompt_ids: list[int],
    gen: Generation,
    model: TeacherBackend,
    info: TeacherInfo,
    run_id: str,
    now: datetime,
) -> TeacherRecord:
    return TeacherRecord(
        record_id=record_id,
        prompt_id=row.prompt_id,
        sample_index=index,
        teacher_id=info.teacher_id,
        run_id=run_id,
        created_at=now,
        source_file=row.source_file,
        source_row=row.source_row,
        domain=row.domain,
        reference=row.reference,
        messages=row.messages,
        prompt_token_ids=prompt_ids,
        response_text=gen.text if gen.text is not None else model.decode(gen.token_ids),
        token_ids=gen.token_ids,
        topk_ids=gen.topk_ids,
        topk_logprobs=gen.topk_logprobs,
        sampled_logprob=gen.sampled_logprob,
        tail_mass=gen.tail_mass,
        finish_reason=gen.finish_reason,
        teacher=info,
    )


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class ShardWriter:
    """Buffers records and writes a shard (then rewrites the manifest) every `shard_size`,
    so a crash loses at most one shard's worth of work; `finish` flushes the rest, writes
    the final manifest and checks that no record id appears twice. Shared by gen and score.
    """

    def __init__(
        self, out_dir: Path, codec: str, shard_size: int, manifest: Callable[[], Manifest]
    ) -> None:
        self.out_dir, self.codec, self.shard_size = out_dir, codec, shard_size
        self.manifest = manifest  # builds the manifest from the shards on disk
        self.pending: list[TeacherRecord] = []
        self.written = 0

    def add(self, records: list[TeacherRecord]) -> None:
        self.pending.extend(records)
        if len(self.pending) >= self.shard_size:
            self._flush()
            save_manifest(self.out_dir, self.manifest())

    def _flush(self) -> None:
        if self.pending:
            table = records_to_table(self.pending, self.codec)
            write_shard(self.out_dir, table, schema_for(self.codec))
            self.written += len(self.pending)
            self.pending = []

    def finish(self) -> Manifest:
        self._flush()
        final = self.manifest()
        save_manifest(self.out_dir, final)
        assert_unique_ids(self.out_dir)
        return final


def assert_unique_ids(out_dir: Path) -> None:
    ids = read_table(out_dir, columns=["record_id"]).column("record_id")
    if len(pc.unique(ids)) != len(ids):
        raise RuntimeError(f"{out_dir}: duplicate record ids after generation (a bug; report it)")
