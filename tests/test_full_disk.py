"""A full disk: a write that fails (ENOSPC) stops the run with one clear line, leaves no
partial file, and the same command resumes once there is space."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.curate import curate_dataset
from distill.curate.recipe import recipe_from_dict
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams, TeacherInfo
from distill.store import (
    DatasetError,
    OutputWriteError,
    load_manifest,
    read_table,
    shard_paths,
    verify_shards,
)
from distill.teachers.backend import Generation
from tests.factories import fake_teacher, make_record, write_fake_dataset

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class CountingTeacher:
    """A deterministic teacher: two tokens per response, derived from the prompt's length."""

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return fake_teacher(top_k=top_k).model_copy(update={"sampling": sampling})

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return [len(messages[-1]["content"]) % 60]

    def generate(self, prompts, sampling, top_k, seeds, messages=None) -> list[Generation]:
        out = []
        for prompt in prompts:
            ids = [prompt[0], prompt[0] + 1]
            topk = [[i + j for j in range(top_k)] for i in ids]
            logprobs = [[-0.1 - j for j in range(top_k)] for _ in ids]
            out.append(Generation(ids, topk, logprobs, [-0.1, -0.1], [0.01, 0.01], "stop"))
        return out

    def decode(self, token_ids: list[int]) -> str:
        return " ".join(map(str, token_ids))

    def tokenizer_info(self):
        return None


def fail_writes(monkeypatch, target: str, at_call: int) -> None:
    """Make the `at_call`-th shard write (half a file written first) or manifest fsync fail."""
    calls = {"n": 0}
    if target == "shard":
        real = pq.write_table

        def write_table(table, where, **options):
            calls["n"] += 1
            if calls["n"] == at_call:
                Path(where).write_bytes(b"PAR1 half a shard")
                raise ENOSPC
            return real(table, where, **options)

        monkeypatch.setattr(pq, "write_table", write_table)
    else:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and ".manifest.json." in (
                os.readlink(f"/proc/self/fd/{fd}")
            ):
                calls["n"] += 1
                if calls["n"] == at_call:
                    raise ENOSPC
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def assert_nothing_partial(out: Path) -> None:
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for path in out.rglob("*.parquet"):
        pq.read_table(path)


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": "q" * (i + 1)}) + "\n" for i in range(12)))
    return path


def gen(prompts: Path, out: Path):
    return generate_dataset(
        prompts, out, teacher=CountingTeacher(), top_k=4, batch_size=2, shard_size=2, progress=False
    )


@pytest.mark.parametrize("target", ["shard", "manifest"])
def test_gen_stops_cleanly_on_a_full_disk_and_resumes(monkeypatch, prompts, tmp_path, target):
    gen(prompts, tmp_path / "ref")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        fail_writes(patch, target, at_call=3)
        with pytest.raises(OutputWriteError) as err:
            gen(prompts, out)
    message = str(err.value)
    assert "No space left on device" in message and "re-run the same command" in message
    assert "\n" not in message and message.startswith(str(out))
    assert_nothing_partial(out)
    assert 0 < len(shard_paths(out)) < 6

    gen(prompts, out)
    ids = read_table(out, columns=["record_id"]).column("record_id").to_pylist()
    expected = read_table(tmp_path / "ref", columns=["record_id"]).column("record_id")
    assert sorted(ids) == sorted(expected.to_pylist()) and len(set(ids)) == len(ids) == 12
    verify_shards(out, load_manifest(out))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    records = [
        make_record(row=i, response=f"Answer {i}: {'B' if i % 3 else 'C'}", n_tokens=30)
        for i in range(40)
    ]
    write_fake_dataset(tmp_path / "gen", records)
    return tmp_path / "gen"


def curate(src: Path, out: Path):
    """Kept and rejected rows both (a third of the answers are wrong)."""
    return curate_dataset(src, out, recipe_from_dict({"steps": [{"name": "mcq_verify"}]}))


LINKS = ("rejected_dir", "kept_dir")


def run_fields(manifest: dict) -> dict:
    """A curated manifest without its per-run fields (`created_at`, each step's `seconds`)."""
    manifest = {k: v for k, v in manifest.items() if k != "created_at"}
    manifest["steps"] = [{k: v for k, v in s.items() if k != "seconds"} for s in manifest["steps"]]
    # the links between the two outputs name their folders, which differ from the reference's
    manifest["params"] = {k: v for k, v in manifest["params"].items() if k not in LINKS}
    return manifest


def assert_same_curation(out: Path, ref: Path) -> None:
    for sub in ("", "-rejected"):
        mine_dir, ref_dir = Path(f"{out}{sub}"), Path(f"{ref}{sub}")
        got = {p.name: p.read_bytes() for p in shard_paths(mine_dir)}
        assert got == {p.name: p.read_bytes() for p in shard_paths(ref_dir)}
        mine, theirs = (json.loads((d / "manifest.json").read_text()) for d in (mine_dir, ref_dir))
        assert run_fields(mine) == run_fields(theirs)


@pytest.mark.parametrize(("target", "at_call"), [("shard", 1), ("shard", 2), ("manifest", 1)])
def test_curate_stops_cleanly_on_a_full_disk_and_resumes(
    monkeypatch, dataset, tmp_path, target, at_call
):
    curate(dataset, tmp_path / "ref")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        fail_writes(patch, target, at_call)
        with pytest.raises(OutputWriteError, match="No space left on device"):
            curate(dataset, out)
    assert_nothing_partial(out)
    assert not (out / "manifest.json").exists()  # the kept manifest is written last
    curate(dataset, out)  # the same command: resumes (redoes) the job
    assert_same_curation(out, tmp_path / "ref")


def test_the_cli_prints_one_line(monkeypatch, dataset, tmp_path) -> None:
    fail_writes(monkeypatch, "shard", 1)
    result = CliRunner().invoke(app, ["curate", str(dataset), "--out", str(tmp_path / "o")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and text.count("error:") == 1, result.output
    assert "write failed (No space left on device); no partial file was left" in text


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    cmd = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk(small_disk: Path, dataset: Path, tmp_path: Path) -> None:
    curate(dataset, tmp_path / "ref")
    out = small_disk / "curated"
    with pytest.raises(OutputWriteError, match="No space left on device"):
        curate(dataset, out)
    assert_nothing_partial(out)
    remount = ["mount", "-o", "remount,size=8m", str(small_disk)]
    subprocess.run(remount, check=True)
    curate(dataset, out)
    assert_same_curation(out, tmp_path / "ref")


def test_a_job_that_wrote_nothing_does_not_hold_its_out(monkeypatch, dataset, tmp_path) -> None:
    fail_writes(monkeypatch, "shard", 1)
    with pytest.raises(OutputWriteError):
        curate(dataset, tmp_path / "out")
    monkeypatch.undo()
    result = curate_dataset(dataset, tmp_path / "out")  # another recipe: nothing to protect
    assert result.counts["input"] == 40
    with pytest.raises(DatasetError, match="another `distill curate`"):
        curate(dataset, tmp_path / "out")  # but a finished output is
