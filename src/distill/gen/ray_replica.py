"""A teacher replica on a Ray worker: the work one block of gen or score items needs.

Ray Data gives each replica (an actor of `map_batches`) blocks of pickled run items; a
block is one output shard. The replica loads its teacher once, answers the block the way
the local run answers a batch (`distill.gen.run.execute`: longest first, `batch_size` at a
time, or through a streaming backend's window), builds the same records and writes them
as shard number `first_shard + block` into the one output dataset. It returns a one-row
summary (the shard, counts, failed rows, tokens) that the driver merges into the manifest
and failed.jsonl. Nothing here imports Ray: this module is the function Ray runs.
"""

from __future__ import annotations

import json
import pickle
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from distill.codec import encode_table
from distill.engine import require_ray
from distill.gen.failures import failure_entry, tally
from distill.gen.run import Run, RunItem, Stream, Work, build_record
from distill.gen.run_output import chunked, longest_first
from distill.schemas import TeacherInfo, records_to_table, schema_for
from distill.store import atomic_write_bytes, next_shard_number, write_shard
from distill.teachers.backend import Generation, TeacherBackend

# The blocks the driver puts into Ray, and the summaries the replicas give back.
BLOCK_SCHEMA = pa.schema([("block", pa.int64()), ("item", pa.binary())])
SUMMARY_SCHEMA = pa.schema(
    [
        ("block", pa.int64()),
        ("items", pa.int64()),
        ("written", pa.int64()),
        ("tokens", pa.int64()),
        ("shard", pa.string()),  # the ShardInfo as JSON; "" when no row was written
        ("counts", pa.string()),  # JSON: the tally of a per-row-failures run (gen)
        ("failures", pa.string()),  # JSON list of failed.jsonl entries
    ]
)


@dataclass(frozen=True)
class ReplicaJob:
    """What every replica of one run needs: how to load its teacher and answer items, and
    where and how to write its shards. Pickled once to each replica."""

    teacher: str
    load: Callable[[str], TeacherBackend]  # the spec -> a backend, as the local run loads it
    work: Callable[[TeacherBackend], Work]  # the run's batch work, bound to a loaded backend
    stream: Callable[[TeacherBackend], Stream | None]  # a streaming backend's, or None
    out_dir: Path
    codec: str
    batch_size: int
    sort_window: int
    info: TeacherInfo
    run_id: str
    first_shard: int  # block b is written as shard first_shard + b: never a clash
    per_row_failures: bool
    gpus_per_replica: float = 0.0  # `replica_gpus`; 0: one CPU a replica
    claim: str = ""  # the run's claim on out_dir (`claim_output_for_ray`)


# Whose shards may land in OUT: the token of the Ray run that last claimed it. A killed
# driver's replicas may outlive it by seconds (the cluster kills a dead job's actors when
# it notices); a rerun claims OUT before reading what is there, so a late replica of the
# old run finds the claim gone and writes nothing: a record can't be written twice.
RUN_CLAIM = ".distill.ray-run"


def claim_output_for_ray(out_dir: Path) -> str:
    """Make this Ray run the only one whose replicas may write into `out_dir` (called
    before the shards already there are read); returns the run's claim token."""
    token = uuid.uuid4().hex
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / RUN_CLAIM, token.encode())
    return token


def holds_claim(out_dir: Path, token: str) -> bool:
    try:
        return (out_dir / RUN_CLAIM).read_text() == token
    except OSError:
        return False


class RunSupersededError(RuntimeError):
    """A later run claimed the output: this replica's run is over (its driver died)."""


def ray_job_checks(teacher: str | TeacherBackend) -> None:
    """Before anything loads: Ray is installed (else a one-line error naming the extra),
    and the teacher is a spec, which each replica loads for itself."""
    require_ray()
    if not isinstance(teacher, str):
        raise ValueError("--engine ray: give the teacher as a spec; each replica loads its own")


def replica_job(
    run: Run,
    teacher: str,
    load: Callable[[str], TeacherBackend],
    work: Callable[[TeacherBackend], Work],
    stream: Callable[[TeacherBackend], Stream | None],
    teacher_options: dict | None,
    claim: str,
) -> ReplicaJob:
    """The job of `run`'s replicas: its shards numbered past every shard on disk, and the
    GPUs each replica takes (`replica_gpus`)."""
    settings = run.settings
    gpus = replica_gpus(teacher, teacher_options or {})
    return ReplicaJob(
        teacher=teacher,
        load=load,
        work=work,
        stream=stream,
        out_dir=run.out_dir,
        codec=settings.codec,
        batch_size=settings.batch_size,
        sort_window=settings.sort_window,
        info=run.info,
        run_id=run.run_id,
        first_shard=next_shard_number(run.out_dir),
        per_row_failures=settings.per_row_failures,
        gpus_per_replica=gpus,
        claim=claim,
    )


def replica_gpus(teacher: str, options: dict) -> float:
    """GPUs a replica takes: vLLM its tensor-parallel group; the hf teacher one when told
    `device=cuda` (Ray hides GPUs from an actor that asks for none, so `device=auto`
    runs on CPU there); an API teacher none."""
    if teacher.startswith("vllm:"):
        return float(options.get("tensor_parallel_size", 1))
    if teacher.startswith("hf:") and str(options.get("device", "")).startswith("cuda"):
        return 1.0
    return 0.0


def item_block(number: int, items: list[RunItem]) -> pa.Table:
    """One block of the Ray dataset: the items of one future shard, pickled."""
    return pa.table(
        {"block": [number] * len(items), "item": [pickle.dumps(item) for item in items]},
        schema=BLOCK_SCHEMA,
    )


TALLIED = ("written", "failed", "retries")  # the counts `tally` adds to


class TeacherReplica:
    """The actor class `map_batches` runs: loads the teacher once, then answers blocks."""

    def __init__(self, job: ReplicaJob) -> None:
        self.job = job
        self.model = job.load(job.teacher)
        self.work = job.work(self.model)
        self.stream = job.stream(self.model)

    def __call__(self, batch: pa.Table) -> pa.Table:
        # One call is normally one block; rows of several blocks are split back apart.
        numbers = batch.column("block").to_pylist()
        blobs = batch.column("item").to_pylist()
        summaries = []
        for number in dict.fromkeys(numbers):
            items = [pickle.loads(b) for n, b in zip(numbers, blobs, strict=True) if n == number]
            summaries.append(self.answer_block(number, items))
        return pa.Table.from_pylist(summaries, schema=SUMMARY_SCHEMA)

    def answer_block(self, number: int, items: list[RunItem]) -> dict:
        answered = list(self._answer(items))
        block = BlockOutput(self.job, self.model)
        block.add(answered)
        return block.summary(number, len(items))

    def _answer(self, items: list[RunItem]) -> Iterator[tuple[RunItem, Generation]]:
        if self.stream is not None:
            yield from self.stream(items)
            return
        window = longest_first(items, self.job.sort_window)
        for chunk in chunked(window, self.job.batch_size):
            yield from zip(chunk, self.work(chunk), strict=True)

    def __del__(self) -> None:
        close = getattr(getattr(self, "model", None), "close", None)
        if close is not None:
            close()


@dataclass
class BlockOutput:
    """One block's answers as a shard plus what the driver tallies (as `RunOutput` does)."""

    job: ReplicaJob
    model: TeacherBackend
    counts: dict[str, int] = field(
        default_factory=lambda: {"written": 0, "failed": 0, "retries": 0}
    )
    failures: list[dict] = field(default_factory=list)
    records: list = field(default_factory=list)
    tokens: int = 0

    def add(self, answered: list[tuple[RunItem, Generation]]) -> None:
        job, now = self.job, datetime.now(UTC)
        gens = [gen for _, gen in answered]
        self.tokens += sum(len(gen.token_ids) for gen in gens)
        if job.per_row_failures:
            tally(self.counts, gens)
        for item, gen in answered:
            if gen.failure is None:
                self.records.append(build_record(item, gen, self.model, job.info, job.run_id, now))
            elif job.per_row_failures:
                self.failures.append(
                    failure_entry(
                        item.row.prompt_id,
                        item.sample_index,
                        item.record_id,
                        job.info.teacher_id,
                        gen,
                        job.run_id,
                    )
                )

    def summary(self, number: int, items: int) -> dict:
        shard = ""
        if self.records:
            table = encode_table(records_to_table(self.records), self.job.codec)
            index = self.job.first_shard + number
            if not holds_claim(self.job.out_dir, self.job.claim):
                raise RunSupersededError(f"{self.job.out_dir}: claimed by a later run")
            info = write_shard(self.job.out_dir, table, schema_for(self.job.codec), index=index)
            shard = info.model_dump_json()
        return {
            "block": number,
            "items": items,
            "written": len(self.records),
            "tokens": self.tokens,
            "shard": shard,
            "counts": json.dumps(self.counts if self.job.per_row_failures else {}),
            "failures": json.dumps(self.failures, ensure_ascii=False),
        }
