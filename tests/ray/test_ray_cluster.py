"""gen and curate on a cluster made by `ray start` (a head and one worker, one CPU each,
loopback), driven from a subprocess with `--ray-address`: the local run's records and
decisions; and a gen driver killed once some shards are written, then run again: every
record exactly once.

The kill leaves the cluster up, as a crashed driver does on a real cluster; the replicas
of the dead job may still be answering a block when the rerun starts, which is what the
rerun's claim on the output (`distill.gen.ray_replica.RUN_CLAIM`) is for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distill.store import load_manifest, read_table, shard_paths
from tests.ray.cluster import cluster_env, ray_start_cluster
from tests.ray.compare import PROMPTS, assert_same_records, gen_command, local_gen, write_prompts

pytestmark = pytest.mark.slow
MANY = [f"{prompt} ({i})" for i in range(2) for prompt in PROMPTS]  # 8 prompts, 8 shards


@pytest.fixture(scope="module")
def address() -> str:
    with ray_start_cluster(workers=1) as address:
        yield address


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("local")
    return local_gen(write_prompts(root / "p.jsonl", MANY), root / "out")


def drive(prompts: Path, out: Path, address: str) -> subprocess.CompletedProcess:
    command = gen_command(prompts, out, "--engine", "ray", "--ray-address", address)
    proc = subprocess.run(command, env=cluster_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_gen_on_a_head_and_a_worker_equals_local(address: str, local: Path, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", MANY[:4])
    proc = drive(prompts, tmp_path / "out", address)
    assert "wrote 4 records (0 already there)" in " ".join(proc.stderr.split())
    assert_same_records(local, tmp_path / "out", within=True)


def test_curate_on_a_head_and_a_worker_equals_local(
    address: str, local: Path, tmp_path: Path
) -> None:
    """The default recipe over the local gen's 8 one-row shards, so the shard tasks spread
    over both nodes; its prompts come in near-copies ("... (0)", "... (1)") in other shards,
    which near_dedup must find across them."""
    for engine, options in (("local", []), ("ray", ["--engine", "ray", "--ray-address", address])):
        out = tmp_path / engine / "curated"
        command = [sys.executable, "-m", "distill.cli", "curate", str(local), "--out", str(out)]
        proc = subprocess.run(
            [*command, *options], env=cluster_env(), capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("curated", "curated-rejected"):
        ours, theirs = read_table(tmp_path / "ray" / name), read_table(tmp_path / "local" / name)
        assert ours.equals(theirs), f"{name} differs"
    kept, ray = (
        load_manifest(tmp_path / "local" / "curated"),
        load_manifest(tmp_path / "ray" / "curated"),
    )
    assert ray.counts == kept.counts and kept.counts["rejected"] >= 4, kept.counts
    assert [s["dropped"] for s in ray.steps] == [s["dropped"] for s in kept.steps]


def test_killed_driver_then_rerun_writes_every_record_once(
    address: str, local: Path, tmp_path: Path
) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", MANY)
    out = tmp_path / "out"
    command = gen_command(prompts, out, "--engine", "ray", "--ray-address", address)
    driver = subprocess.Popen(
        command, env=cluster_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while len(shard_paths(out)) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.05)
    assert driver.poll() is None, "gen finished before it was killed; give it more prompts"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    killed_at = len(shard_paths(out))
    assert 2 <= killed_at < len(MANY)

    drive(prompts, out, address)  # at once: the dead job's replicas may still be running
    time.sleep(5)  # and any of them that was mid-block has finished (without writing)
    ids = Counter(
        record_id
        for path in shard_paths(out)
        for record_id in pq.read_table(path, columns=["record_id"]).column(0).to_pylist()
    )
    assert len(ids) == len(MANY) and set(ids.values()) == {1}
    manifest = load_manifest(out)
    assert manifest.counts["rows"] == len(MANY) and manifest.counts["skipped_existing"] >= 2
    assert len(manifest.shards) == len(shard_paths(out))
    assert_same_records(local, out)
