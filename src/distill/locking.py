"""One writer per output: an exclusive `flock` on `OUT/.distill.lock`.

Every command that writes a dataset or a run directory (gen, score, curate, pack, train,
report) holds this lock while it writes. A second writer fails at once, naming the holder's
pid and command line, which the holder wrote into the lock file. The kernel releases a
`flock` when its holder dies, so a lock left by a killed process never blocks: the next
writer takes it and overwrites the stale pid. The lock file is hidden and is not a shard,
so nothing that lists a dataset sees it.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from distill.store import DatasetError

LOCK_NAME = ".distill.lock"
F = TypeVar("F", bound=Callable[..., Any])


class OutputLockedError(DatasetError):
    """Another live process is writing this output."""


def _holder(path: Path) -> str:
    # The holder writes its pid right after taking the lock; give it a moment to do so.
    for _ in range(10):
        try:
            info = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid"):
            return f"pid {info['pid']} ({info.get('command', '?')})"
        time.sleep(0.02)
    return "another process (pid unknown)"


@contextmanager
def output_lock(out_dir: Path, command: str | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of `out_dir` (created if missing) for the `with` block.

    Raises `OutputLockedError` at once if another process holds it. A directory this
    call created and left holding nothing but the lock file is removed on exit, so a run
    that fails before writing leaves no trace.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputLockedError(
            f"{out_dir}: in use by {_holder(path)}; wait for it to finish, or use another --out"
        ) from None
    try:
        holder = {"pid": os.getpid(), "command": command or " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)
        yield path
    finally:
        if created and [p.name for p in out_dir.iterdir()] == [LOCK_NAME]:
            path.unlink()
            out_dir.rmdir()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def locks_output(param: str) -> Callable[[F], F]:
    """Decorator: the function holds `output_lock` on its argument `param` while it runs."""

    def wrap(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            out_dir = signature.bind(*args, **kwargs).arguments[param]
            with output_lock(Path(out_dir)):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
