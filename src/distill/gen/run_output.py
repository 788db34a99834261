"""How the shared run (`distill.gen.run.execute`) feeds its backend and takes in what comes
back: windows of items longest first for batch backends, and `RunOutput`, which tallies,
writes and checks each group of answered items, whichever way they were answered.

A group is a batch (`generate`, `score`) or, for a streaming backend (`generate_stream`,
an API), the next `batch_size` results in the order they completed: a group of results is
tallied (written, failed by kind, retries, usage, cost), its failed rows go to
failed.jsonl and its records to the shard writer, and if nothing has worked by then (no
row written and a batch's worth failed, or every row of a shorter run) the run stops
with `TeacherUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar

from distill.gen.failures import append_failures, cost_usd, failure_entry, tally
from distill.gen.progress import GenProgress
from distill.gen.shards import ShardWriter
from distill.teachers.backend import Generation, TeacherUnavailableError

T = TypeVar("T")
RunItem = Any  # a `distill.gen.run.RunItem` (not imported: that module imports this one)


class Run(Protocol):
    """What `RunOutput` uses of a `distill.gen.run.Run`."""

    counts: dict[str, int]
    stats: dict[str, float]
    settings: Any
    info: Any
    run_id: str

    def record(self, item: Any, gen: Generation, now: datetime) -> Any: ...


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter), read lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def longest_first(items: Iterable[T], window: int) -> Iterator[T]:
    """The items, longest first within each window of `window` consecutive ones.

    Longest first means less padding per batch and the slowest batches early in the progress
    bar; sorting a window at a time (not the whole input) keeps one window of tokenised
    items in memory, whatever the number of prompts. `length` is the item's token count.
    """
    for chunk in chunked(items, window):
        yield from sorted(chunk, key=lambda item: -item.length)  # type: ignore[attr-defined]


class RunOutput:
    """The writing side of one run: shards, failed.jsonl, the tally and the progress bar."""

    def __init__(
        self,
        run: Run,
        writer: ShardWriter,
        failed_log: Path | None,
        bar: GenProgress,
        total: int,
    ) -> None:
        self.run, self.writer, self.failed_log, self.bar = run, writer, failed_log, bar
        self.total = total  # samples the input may hold; those found done are taken off
        self.tokens = 0
        self.first_failure: str | None = None

    def add(self, chunk: Sequence[RunItem], gens: Sequence[Generation]) -> None:
        """One group of answered items: tallied, failures listed, records to the writer."""
        now = datetime.now(UTC)
        group_tokens = sum(len(g.token_ids) for g in gens)
        self.tokens += group_tokens
        if self.failed_log is not None:
            self._account(chunk, gens)
        self.bar.set_total(self.total - self.run.counts.get("skipped_existing", 0))
        self.bar.advance(len(chunk), group_tokens)
        # after the tally: a flush rewrites the manifest from `counts`
        self.writer.add(
            [
                self.run.record(item, gen, now)
                for item, gen in zip(chunk, gens, strict=True)
                if gen.failure is None  # a failed row has no record
            ]
        )

    def _account(self, chunk: Sequence[RunItem], gens: Sequence[Generation]) -> None:
        """Count one group (and its cost) and list its failed rows in failed.jsonl."""
        run = self.run
        tally(run.counts, list(gens))
        cost = cost_usd(run.counts, run.settings.price_input, run.settings.price_output)
        if cost is not None:
            run.stats["cost_usd"] = cost
        failed = [(item, gen) for item, gen in zip(chunk, gens, strict=True) if gen.failure]
        if failed and self.first_failure is None:
            self.first_failure = failed[0][1].failure.reason  # type: ignore[union-attr]
        assert self.failed_log is not None
        append_failures(
            self.failed_log,
            [
                failure_entry(
                    item.row.prompt_id,
                    item.sample_index,
                    item.record_id,
                    run.info.teacher_id,
                    gen,
                    run.run_id,
                )
                for item, gen in failed
            ],
        )

    def stop_if_nothing_works(self, ended: bool = False) -> None:
        """Nothing has worked (wrong URL, server down): stop rather than fail every row.
        Asked after each group, and once more when the input has `ended`."""
        if self.failed_log is None:
            return
        counts = self.run.counts
        failed = counts.get("failed", 0)
        enough = failed >= self.run.settings.batch_size or (ended and failed > 0)
        if counts.get("written", 0) == 0 and enough:
            raise TeacherUnavailableError(
                f"all {failed} requests failed so far, none succeeded; first: "
                f"{self.first_failure} (every failure is in {self.failed_log})"
            )

    def drain(self, results: Iterable[tuple[RunItem, Generation]], size: int) -> None:
        """A streaming backend's results, taken in groups of `size` as they complete. If the
        stream raises, the results already received are still tallied and written."""
        group: list[tuple[RunItem, Generation]] = []
        try:
            for pair in results:
                group.append(pair)
                if len(group) >= size:
                    done, group = group, []
                    self.add([item for item, _ in done], [gen for _, gen in done])
                    self.stop_if_nothing_works()
        finally:
            if group:  # the tail, or what came before an error
                self.add([item for item, _ in group], [gen for _, gen in group])
        self.stop_if_nothing_works(ended=True)
