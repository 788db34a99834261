"""One writer per output: a second writer is refused at once, naming the holder; a lock
left by a killed holder never blocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.codec import pack_dataset
from distill.curate import curate_dataset
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.locking import LOCK_NAME, OutputLockedError, output_lock
from distill.report import collect_report, write_report
from distill.store import shard_paths
from distill.train import TrainConfig, train_student
from tests.factories import make_record, write_fake_dataset

HOLDER = (
    "import sys, time; from pathlib import Path; from distill.locking import output_lock\n"
    "with output_lock(Path(sys.argv[1]), command='distill gen prompts.jsonl --out held'):\n"
    "    print('locked', flush=True); time.sleep(120)\n"
)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """tmp_path/out locked by another live process (a stand-in for a running `distill gen`)."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield out, proc
    proc.kill()
    proc.wait()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    write_fake_dataset(tmp_path / "gen", [make_record(row=i) for i in range(3)])
    return tmp_path / "gen"


WRITERS: dict[str, Callable[[Path, Path], object]] = {
    "gen": lambda src, out: generate_dataset(src / "no-prompts.jsonl", out, progress=False),
    "score": lambda src, out: score_dataset(src, out, progress=False),
    "curate": lambda src, out: curate_dataset(src, out),
    "pack": lambda src, out: pack_dataset(src, out),
    "train": lambda src, out: train_student(src, out, TrainConfig(mode="kd", max_steps=1)),
    "report": lambda src, out: write_report(collect_report([src]), out / "report.html"),
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_second_writer_is_refused_naming_the_holder(command, held, dataset) -> None:
    out, proc = held
    started = time.monotonic()
    with pytest.raises(OutputLockedError) as err:
        WRITERS[command](dataset, out)
    assert time.monotonic() - started < 5  # at once, before any model or data is loaded
    assert f"in use by pid {proc.pid} (distill gen prompts.jsonl --out held)" in str(err.value)
    assert "\n" not in str(err.value)
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == proc.pid  # untouched


def test_the_cli_prints_one_line_naming_pid_and_command(held, dataset) -> None:
    out, proc = held
    result = CliRunner().invoke(app, ["curate", str(dataset), "--out", str(out)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())  # rich wraps at the terminal's width
    assert text.startswith("error:") and text.count("error:") == 1, result.output
    assert f"in use by pid {proc.pid} (distill gen prompts.jsonl --out held)" in text


def test_a_killed_holders_lock_never_blocks(held, dataset) -> None:
    out, proc = held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_NAME).is_file()  # the stale file stays; the kernel dropped the lock
    result = curate_dataset(dataset, out)
    assert result.counts["input"] == 3 and (out / "manifest.json").is_file()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_lock_file_is_not_a_shard_and_a_failed_run_leaves_no_folder(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "gen", [make_record(row=0)])
    with output_lock(tmp_path / "gen"):
        assert [p.name for p in shard_paths(tmp_path / "gen")] == ["part-00000.parquet"]
        assert collect_report([tmp_path / "gen"])["generated"]
    with pytest.raises(FileNotFoundError), output_lock(tmp_path / "new"):
        raise FileNotFoundError("bad prompts")
    assert not (tmp_path / "new").exists()  # created for the run, left with only the lock
