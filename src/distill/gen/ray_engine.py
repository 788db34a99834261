"""gen and score on Ray Data: the same run, answered by a pool of teacher replicas.

The driver does what the local run does before any teacher work (`distill.gen.run`):
it checks the output may be resumed, reads the record ids already there (`read_existing`,
a `KeySet`) and streams the prompts through distill's own reader, so validation, ids,
invalid rows and error messages are the local run's, and a record already written
anywhere in the dataset is filtered out here, before it reaches Ray. The missing items
are cut into blocks of `shard_size` items, each put into Ray's object store as it is
made (the driver holds one block and the references; the store spills to disk), and the
blocks become a Ray dataset (`from_arrow_refs`). Why not Ray's file readers: distill's
prompt formats, field mapping, id rule and row-level errors would have to be rebuilt on
top of them, and the resume filter needs the whole dataset's ids in one place.

`map_batches` runs the blocks through a pool of `TeacherReplica` actors
(`distill.gen.ray_replica`), each loading the teacher once: one CPU each for the hf and
OpenAI backends (the OpenAI one keeps its own request concurrency inside each actor), and
`tensor_parallel_size` GPUs each for vLLM. A replica writes each block as one shard with a
number of its own (`first_shard + block`, past every shard on disk), so workers never
clash. The driver writes the manifest before the job (a rerun with other settings is
refused even after a crash), then merges each block's summary as it arrives (failed rows
to failed.jsonl, counts, progress) and writes the final manifest once at the end, with
the fields a local run writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from distill.engine import EngineConfig, ray_session
from distill.gen.failures import append_failures, cost_usd, start_failure_log
from distill.gen.progress import GenProgress
from distill.gen.ray_replica import ReplicaJob, TeacherReplica, item_block
from distill.gen.run import GenResult, Run, RunItem
from distill.gen.run_output import chunked
from distill.gen.shards import assert_unique_ids
from distill.schemas import ShardInfo
from distill.store import save_manifest, shard_number
from distill.teachers.backend import TeacherUnavailableError


def execute_on_ray(
    run: Run,
    items: Iterable[RunItem],
    job: ReplicaJob,
    total: int,
    engine: EngineConfig,
) -> GenResult:
    """`distill.gen.run.execute` on a Ray cluster (see the module docstring). `job`: from
    `replica_job`. A vLLM teacher on the driver is closed once every item is tokenised:
    its engine would hold a GPU the replicas need (its tokenizer stays; closing twice is
    safe)."""
    settings = run.settings
    save_manifest(run.out_dir, run.manifest())
    failed_log = (
        start_failure_log(run.out_dir, run.info.teacher_id) if job.per_row_failures else None
    )
    with ray_session(engine) as ray, GenProgress(total, settings.progress, settings.label) as bar:
        refs = [
            ray.put(item_block(number, chunk))
            for number, chunk in enumerate(chunked(items, settings.shard_size))
        ]
        bar.set_total(total - run.counts.get("skipped_existing", 0))
        close = getattr(run.model, "close", None)
        if job.teacher.startswith("vllm:") and close is not None:
            close()
        tokens, written, first_failure = 0, 0, None
        if refs:
            replicas, gpus = replica_plan(ray, job, len(refs))
            dataset = ray.data.from_arrow_refs(refs).map_batches(
                TeacherReplica,
                fn_constructor_args=(job,),
                batch_size=None,  # a whole block, one shard, per call
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=replicas),
                num_cpus=1,
                num_gpus=gpus,
            )
            try:
                for summary in dataset.iter_rows():
                    tokens += summary["tokens"]
                    written += summary["written"]
                    reason = merge_summary(run, summary, failed_log)
                    first_failure = first_failure or reason
                    bar.advance(summary["items"], summary["tokens"])
                    stop_if_nothing_works(run, failed_log, first_failure)
            except Exception as err:
                cause = user_error(err)
                if cause is err:
                    raise
                raise cause from None
            finally:
                run.shards.sort(key=lambda shard: shard_number(shard.file))
                save_manifest(run.out_dir, run.manifest())
        stop_if_nothing_works(run, failed_log, first_failure, ended=True)
    final = run.manifest()
    save_manifest(run.out_dir, final)
    assert_unique_ids(run.out_dir)
    return GenResult(
        out_dir=run.out_dir,
        records_total=final.counts["rows"],
        records_written=written,
        records_skipped_existing=run.counts["skipped_existing"],
        prompts=run.counts["prompts"],
        invalid_prompts=run.counts.get("invalid_prompts", 0),
        tokens_generated=tokens,
        seconds=bar.elapsed,
        counts=final.counts,
        failed=run.counts.get("failed", 0),
        stats=dict(run.stats),
    )


def replica_plan(ray: Any, job: ReplicaJob, blocks: int) -> tuple[int, float]:
    """(replicas, GPUs each): one replica per group of `gpus_per_replica` GPUs (vLLM's
    tensor-parallel group, an hf teacher on cuda), else one per CPU; never more replicas
    than blocks."""
    resources = ray.cluster_resources()
    group = job.gpus_per_replica
    if group:
        replicas = int(resources.get("GPU", 0) // group)
        if replicas < 1:
            raise TeacherUnavailableError(
                f"--teacher {job.teacher}: the Ray cluster has {resources.get('GPU', 0):g} GPUs, "
                f"a replica needs {group:g}"
            )
        return min(replicas, blocks), group
    return max(1, min(int(resources.get("CPU", 1)), blocks)), 0.0


def merge_summary(run: Run, summary: dict, failed_log: Path | None) -> str | None:
    """One replica's block into the run: its shard, counts and failed rows; returns the
    block's first failure reason."""
    if summary["shard"]:
        run.shards.append(ShardInfo.model_validate_json(summary["shard"]))
    for key, value in json.loads(summary["counts"]).items():
        run.counts[key] = run.counts.get(key, 0) + value
    cost = cost_usd(run.counts, run.settings.price_input, run.settings.price_output)
    if cost is not None:  # as the local run's tally does: the usage so far, priced
        run.stats["cost_usd"] = cost
    failures = json.loads(summary["failures"])
    if failed_log is not None and failures:
        append_failures(failed_log, failures)
    return failures[0]["reason"] if failures else None


def stop_if_nothing_works(
    run: Run, failed_log: Path | None, first_failure: str | None, ended: bool = False
) -> None:
    """The local run's rule (`RunOutput.stop_if_nothing_works`), asked per block."""
    if failed_log is None:
        return
    failed = run.counts.get("failed", 0)
    enough = failed >= run.settings.batch_size or (ended and failed > 0)
    if run.counts.get("written", 0) == 0 and enough:
        raise TeacherUnavailableError(
            f"all {failed} requests failed so far, none succeeded; first: {first_failure} "
            f"(every failure is in {failed_log})"
        )


def user_error(err: Exception) -> Exception:
    """The error a replica raised, out of Ray's wrappers: a refused key or a bad option
    reads as it does in a local run."""
    seen: Exception | None = err
    while seen is not None:
        if not type(seen).__module__.startswith("ray"):
            return seen
        cause = getattr(seen, "cause", None) or seen.__cause__
        seen = cause if isinstance(cause, Exception) else None
    return err
