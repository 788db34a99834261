"""The resumable run that `distill gen` and `distill score` share.

Both turn input rows into teacher records in one output directory and can be killed and
re-run at any point. The run:
1. `open_run`: checks that the output may be resumed with this teacher and codec (plus what
   the caller checks), drops the temporaries of a killed writer and reads the record ids
   already in the shards, verifying every shard the manifest lists (`distill.gen.resume`);
2. the caller streams the items whose record id is not `Run.done` (the resume rule: a
   record's id is (prompt id, sample index, teacher id)); `done` asks a compact set of
   128-bit id hashes (`distill.gen.id_hashes`), not a set of strings;
3. `execute`: reads the items lazily. A batch backend gets them longest first within
   windows of `RunSettings.sort_window` items, batch by batch, through `work` (`generate`
   for gen, teacher-forcing `score` for score); a streaming backend (an API's
   `generate_stream`) gets them in input order and answers them as they complete, its
   window of requests kept full across batch boundaries. Records are written shard by
   shard with the manifest rewritten after each shard (`distill.gen.shards`); with a
   streaming backend a shard's rows are in the order they completed. Shows progress and
   returns a `GenResult`.

With `RunSettings.per_row_failures` (gen), a backend may fail rows one by one (an API):
each group of results is tallied (written, failed by kind, retries, usage, cost), failed
rows go to failed.jsonl (`distill.gen.failures`) instead of a record, the rows already
answered are written before an error stops the run (with a paid API they cost money), and
a run whose first batch (`batch_size` results, or all of a shorter run) all failed stops
with `TeacherUnavailableError` (`distill.gen.run_output`). Score's local teachers fail
whole or not at all, so it keeps none of that.

The output lock (`distill.locking.locks_output`) is taken by `generate_dataset` and
`score_dataset` themselves, before the teacher loads: a second writer fails at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from distill.gen.failures import FAILED_FILE, start_failure_log
from distill.gen.id_hashes import KeySet
from distill.gen.progress import GenProgress
from distill.gen.prompts import PromptRow
from distill.gen.resume import build_manifest, check_resumable, read_existing
from distill.gen.run_output import RunOutput, chunked, longest_first
from distill.gen.shards import ShardWriter, new_run_id
from distill.schemas import Manifest, ShardInfo, TeacherInfo, TeacherRecord, make_record_id
from distill.store import remove_stale_temporaries
from distill.teachers.backend import Generation, TeacherBackend


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
    failed: int = 0  # rows with no record, listed in failed.jsonl
    stats: dict[str, float] = field(default_factory=dict)  # cost_usd when prices were given

    @property
    def failed_path(self) -> Path:
        return self.out_dir / FAILED_FILE


@dataclass(frozen=True)
class RunSettings:
    """How a run writes: batches, shards, storage codec, progress and per-row failures."""

    batch_size: int
    shard_size: int
    codec: str = "plain"
    label: str = "gen"  # the progress bar's
    progress: bool = True
    per_row_failures: bool = False  # see the module docstring
    price_input: float | None = None  # USD per 1M prompt tokens, with per_row_failures
    price_output: float | None = None  # USD per 1M completion tokens
    # Batch backends get items longest first within each window of this many (memory:
    # one window of tokenised items); streaming backends get them in input order.
    sort_window: int = 4096


@dataclass(frozen=True)
class RunItem:
    """One record to make: its prompt row, sample index, record id and prompt ids."""

    row: PromptRow
    sample_index: int
    record_id: str
    prompt_ids: list[int]

    @property
    def length(self) -> int:
        """Tokens the backend reads; batches go longest first."""
        return len(self.prompt_ids)


Item = TypeVar("Item", bound=RunItem)
# A run's teacher work, bound to a loaded backend: a batch at a time, or streamed.
Work = Callable[[list[Any]], list[Generation]]
Stream = Callable[[Iterable[Any]], Iterator[tuple[Any, Generation]]]


@dataclass
class Run:
    """One run into `out_dir`: what it resumes, its id, params, counts and stats."""

    out_dir: Path
    model: TeacherBackend
    info: TeacherInfo
    params: dict
    settings: RunSettings
    previous: Manifest | None
    existing: KeySet  # the record ids already written, hashed (`distill.gen.id_hashes`)
    shards: list[ShardInfo] = field(default_factory=list)  # on disk, hashed once each
    run_id: str = field(default_factory=new_run_id)
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    # What the caller adds to every manifest of the run (licences; score's parent dataset).
    manifest_fields: dict[str, Any] = field(default_factory=dict)

    def record_id(self, row: PromptRow, sample_index: int) -> str:
        return make_record_id(row.prompt_id, sample_index, self.info.teacher_id)

    def done(self, record_id: str) -> bool:
        """The record is in the output already (a rerun skips it)."""
        return record_id in self.existing

    def manifest(self) -> Manifest:
        return build_manifest(
            self.out_dir,
            self.previous,
            self.model,
            self.info,
            self.params,
            self.run_id,
            self.counts,
            self.settings.codec,
            run_stats=self.stats,
            shards=self.shards,
        ).model_copy(update=self.manifest_fields)

    def record(self, item: RunItem, gen: Generation, now: datetime) -> TeacherRecord:
        return build_record(item, gen, self.model, self.info, self.run_id, now)


def open_run(
    out_dir: Path,
    model: TeacherBackend,
    info: TeacherInfo,
    params: dict,
    settings: RunSettings,
    check: Callable[[Manifest | None], None] | None = None,
) -> Run:
    """Start a run into `out_dir` (made if missing): refuse one that would mix settings
    (`check` adds the caller's own test of the existing manifest), drop stale temporaries
    and read, verified, the record ids already there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = check_resumable(out_dir, info, settings.codec)
    if check is not None:
        check(previous)
    remove_stale_temporaries(out_dir)
    existing, shards = read_existing(out_dir, previous)  # each shard read and hashed once
    return Run(out_dir, model, info, params, settings, previous, existing, shards)


def execute(
    run: Run,
    items: Iterable[Item],
    work: Callable[[list[Item]], list[Generation]],
    total: int,
    stream: Callable[[Iterable[Item]], Iterator[tuple[Item, Generation]]] | None = None,
) -> GenResult:
    """Make a record of every item (read lazily), `work` answering a batch at a time, or
    `stream` (a streaming backend) answering items as they complete. `total`: the samples
    the input may hold, for the progress bar (those found done are taken off). See the
    module docstring."""
    settings = run.settings
    writer = ShardWriter(run.out_dir, settings.codec, settings.shard_size, run.manifest, run.shards)
    failed_log = (
        start_failure_log(run.out_dir, run.info.teacher_id) if settings.per_row_failures else None
    )
    with GenProgress(total=total, enabled=settings.progress, label=settings.label) as bar:
        output = RunOutput(run, writer, failed_log, bar, total)
        try:
            if stream is not None:
                with closing(stream(items)) as results:  # closed: stops requests in flight
                    output.drain(results, settings.batch_size)
            else:
                batches = chunked(longest_first(items, settings.sort_window), settings.batch_size)
                for chunk in batches:
                    output.add(chunk, work(chunk))
                    output.stop_if_nothing_works()
                output.stop_if_nothing_works(ended=True)
        except Exception:
            if failed_log is not None:
                # Whatever stops the run (a refused key, or a bug), the rows already
                # answered are written first: with a paid API they cost money.
                writer.finish()
            raise
    final = writer.finish()
    return GenResult(
        out_dir=run.out_dir,
        records_total=final.counts["rows"],
        records_written=writer.written,
        records_skipped_existing=run.counts["skipped_existing"],
        prompts=run.counts["prompts"],
        invalid_prompts=run.counts.get("invalid_prompts", 0),
        tokens_generated=output.tokens,
        seconds=bar.elapsed,
        counts=final.counts,
        failed=run.counts.get("failed", 0),
        stats=dict(run.stats),
    )


def build_record(
    item: RunItem,
    gen: Generation,
    model: TeacherBackend,
    info: TeacherInfo,
    run_id: str,
    now: datetime,
) -> TeacherRecord:
    row = item.row
    return TeacherRecord(
        record_id=item.record_id,
        prompt_id=row.prompt_id,
        sample_index=item.sample_index,
        teacher_id=info.teacher_id,
        run_id=run_id,
        created_at=now,
        source_file=row.source_file,
        source_row=row.source_row,
        domain=row.domain,
        reference=row.reference,
        messages=row.messages,
        prompt_token_ids=item.prompt_ids,
        response_text=gen.text if gen.text is not None else model.decode(gen.token_ids),
        token_ids=gen.token_ids,
        topk_ids=gen.topk_ids,
        topk_logprobs=gen.topk_logprobs,
        sampled_logprob=gen.sampled_logprob,
        tail_mass=gen.tail_mass,
        finish_reason=gen.finish_reason,
        teacher=info,
    )
