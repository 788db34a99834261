"""Kill `distill gen` mid-run, run it again: no duplicates, none missing, all shards read."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distill.store import load_manifest, read_table, shard_paths

pytestmark = pytest.mark.slow
N_PROMPTS = 16


def gen_command(prompts: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "distill.cli",
        "gen",
        str(prompts),
        "--out",
        str(out),
        "--max-new-tokens",
        "6",
        "--top-k",
        "5",
        "--batch-size",
        "2",
        "--shard-size",
        "2",
        "--temperature",
        "0.7",
        "--n",
        "1",
    ]


def test_killed_run_resumes_without_duplicates_or_gaps(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"prompt": f"Say the number {i} in words."}) + "\n" for i in range(N_PROMPTS)
        )
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        gen_command(prompts, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while len(shard_paths(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "gen finished before it could be killed; make the run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_table(out, columns=["record_id"], verify=False).num_rows  # unfinished
    assert 0 < partial < N_PROMPTS
    # A crash can leave a temporary behind mid-write; plant one to prove it is ignored.
    (out / "data" / ".part-00099.parquet.deadbeef.tmp").write_bytes(b"half a shard")

    done = subprocess.run(gen_command(prompts, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"({partial} already there)" in done.stderr.replace("\n", " ")

    for path in shard_paths(out):
        pq.read_table(path)  # every shard readable
    ids = read_table(out, columns=["record_id"]).column("record_id").to_pylist()
    assert len(ids) == N_PROMPTS and len(set(ids)) == N_PROMPTS
    manifest = load_manifest(out)
    assert manifest.counts["rows"] == N_PROMPTS and len(manifest.run_ids) >= 1
    assert sum(s.rows for s in manifest.shards) == N_PROMPTS
    assert not list((out / "data").glob(".*.tmp"))
