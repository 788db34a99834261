"""A window of requests kept in flight while a synchronous caller reads the answers.

The API teacher's streaming path (`OpenAITeacher.generate_stream`): an asyncio loop runs in
a background thread (`BackgroundLoop`); `stream_window` submits requests to it from the
caller's thread, `limit` at a time, and yields each answer as it completes, submitting the
next request at once. The caller may be slow between answers (writing a shard): the loop
goes on with what was submitted, so a backend that admits `concurrency` requests at a time
(its own semaphore) and is given `limit = 2 * concurrency` keeps its window full.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

Tag = TypeVar("Tag")
Request = TypeVar("Request")
Result = TypeVar("Result")


class BackgroundLoop:
    """An asyncio event loop in a daemon thread, for as long as the `with` block lasts."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def submit(self, coro: Coroutine[Any, Any, Result]) -> concurrent.futures.Future[Result]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Result]) -> Result:
        return self.submit(coro).result()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.run(cancel_others())  # requests still in flight unwind before the loop stops
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def cancel_others() -> None:
    """Cancel every task of the running loop but this one, and wait for them to unwind."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stream_window(
    requests: Iterable[tuple[Tag, Request]],
    ask: Callable[[Request], Coroutine[Any, Any, Result]],
    limit: int,
    loop: BackgroundLoop,
) -> Iterator[tuple[Tag, Result]]:
    """(tag, answer) for every request, as each completes; at most `limit` submitted and
    unanswered at a time. An exception, from an answer or from `requests` itself, stops
    new submissions and is raised once the answers in flight are in: those that succeed
    are yielded first (they may be paid for), later exceptions are dropped for the first.
    A request whose coroutine was cancelled (the backend halted it) yields nothing."""
    done: queue.SimpleQueue[tuple[Tag, concurrent.futures.Future[Result]]] = queue.SimpleQueue()
    pending: set[concurrent.futures.Future[Result]] = set()
    source = iter(requests)
    failed: BaseException | None = None
    try:
        while True:
            while failed is None and len(pending) < limit:
                try:
                    tag, request = next(source)
                except StopIteration:
                    break
                except Exception as err:  # a bad input row: finish what is in flight first
                    failed = err
                    break
                future = loop.submit(ask(request))
                pending.add(future)
                future.add_done_callback(lambda f, tag=tag: done.put((tag, f)))
            if not pending:
                break
            tag, future = done.get()
            pending.discard(future)
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                yield tag, future.result()
            elif failed is None:
                failed = error
        if failed is not None:
            raise failed
    finally:
        for future in pending:
            future.cancel()
