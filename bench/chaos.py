"""Chaos: kill each stage with SIGKILL at a random moment, run the same command again, and
count what the rerun ends with against an uninterrupted run.

    python -m bench.chaos [--kills 20] [--stages gen,score,curate,pack] [--teacher hf:embedded]

Per stage: one uninterrupted run (its wall time T is the kill window), then `--kills`
trials, each into a fresh --out: start the command in its own process group, SIGKILL the
group after a delay drawn uniformly from [lo*T, hi*T] (`--window`), run the same command
again to completion, and compare with the uninterrupted run:

- gen, score: the record ids (lost, duplicated), every shard readable and matching the
  manifest's sha256 (unreadable: the rows of the shards that are not), equal = same ids;
- curate, pack: the same counts, and equal = every shard (kept and rejected) byte-identical
  and the manifests identical but for their per-run fields (`created_at`, steps' `seconds`);
- train (not in the default stages; needs `distill train --save-steps` with auto-resume):
  `distill train DATA --out OUT --mode kd --max-steps N --save-steps M`, rerun resumes from
  the last checkpoint; equal = same final step and final loss within `--loss-tol` (relative).

`--teacher tiny` uses a random 2-layer model on the embedded teacher's tokenizer (built into
the work dir), which generates in a fraction of the embedded teacher's time; the teacher's
quality does not matter here. "mid-write" counts the kills that found the output already
begun (a shard, temporary or manifest on disk; for train, a complete checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from distill.store import MANIFEST_NAME, DatasetError, load_manifest, read_shard, shard_paths
from distill.train.checkpoints import MARKER as COMPLETE_MARKER

STAGES = ("gen", "score", "curate", "pack", "train")
DEFAULT_STAGES = "gen,score,curate,pack"
PER_RUN_FIELDS = ("created_at",)


@dataclass
class Settings:
    work: Path
    teacher: str = "hf:embedded"
    prompts: int = 12
    max_new_tokens: int = 8
    train_steps: int = 8
    save_steps: int = 2
    loss_tol: float = 1e-3
    window: tuple[float, float] = (0.0, 1.0)
    seed: int = 0


@dataclass
class StageResult:
    stage: str
    kills: int = 0
    mid_write: int = 0
    finished_first: int = 0  # trials whose first run ended before the kill fell
    reruns_ok: int = 0
    lost: int = 0
    duplicated: int = 0
    unreadable: int = 0
    equal: int = 0
    seconds_uninterrupted: float = 0.0
    problems: list[str] = field(default_factory=list)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", *args]


def commands(s: Settings, out: Path) -> dict[str, list[str]]:
    gen_ref = s.work / "gen" / "ref"
    return {
        "gen": cli(
            "gen",
            str(s.work / "prompts.jsonl"),
            "--out",
            str(out),
            "--teacher",
            s.teacher,
            "--top-k",
            "5",
            "--max-new-tokens",
            str(s.max_new_tokens),
            "--batch-size",
            "2",
            "--shard-size",
            "2",
        ),
        "score": cli(
            "score",
            str(gen_ref),
            "--out",
            str(out),
            "--teacher",
            s.teacher,
            "--top-k",
            "5",
            "--batch-size",
            "2",
        ),
        "curate": cli(
            "curate", str(gen_ref), "--out", str(out), "--recipe", str(s.work / "recipe.yaml")
        ),
        "pack": cli("pack", str(gen_ref), "--out", str(out)),
        "train": cli(
            "train",
            str(gen_ref),
            "--out",
            str(out),
            "--mode",
            "kd",
            "--max-steps",
            str(s.train_steps),
            "--save-steps",
            str(s.save_steps),
            "--batch-size",
            "2",
        ),
    }


def env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parent.parent / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "0"}


def run(cmd: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - started


def prepare(s: Settings) -> None:
    s.work.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "prompt": f"Question {i}: what is {i} + {i}? A. {2 * i} B. {i}",
                "reference": "A",
                "domain": f"d{i % 3}",
            }
        )
        for i in range(s.prompts)
    ]
    (s.work / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    (s.work / "recipe.yaml").write_text(
        "steps:\n  - name: exact_dedup\n  - name: length\n    min_tokens: 3\n"
    )
    if s.teacher == "tiny":
        from distill.teachers.embedded import embedded_teacher_dir
        from distill.train.student import build_random_student

        s.teacher = f"hf:{build_random_student(embedded_teacher_dir(), s.work / 'tiny', seed=1)}"


def started_writing(out: Path) -> bool:
    if not out.is_dir():
        return False
    # A dataset begun (a shard, temporary or manifest), or a run with a complete checkpoint
    # (train's rerun then resumes from it rather than starting over).
    return any(
        p.suffix in (".parquet", ".tmp") or p.name in (MANIFEST_NAME, COMPLETE_MARKER)
        for p in out.rglob("*")
    )


def record_ids(dataset: Path) -> tuple[list[str], int]:
    """The ids of the shards that read and match the manifest; and the rows of those that don't."""
    manifest = load_manifest(dataset)
    ids, unreadable = [], 0
    for shard in manifest.shards:
        try:
            table = read_shard(dataset / shard.file, shard.sha256, ["record_id"])
            ids.extend(table.column("record_id").to_pylist())
        except (DatasetError, OSError):
            unreadable += shard.rows
    listed = {shard.file for shard in manifest.shards}
    for path in shard_paths(dataset):  # on disk but unknown to the manifest: not trusted
        if str(path.relative_to(dataset)) not in listed:
            unreadable += 1
    return ids, unreadable


def _manifest(dataset: Path) -> dict:
    data = json.loads((dataset / MANIFEST_NAME).read_text())
    for key in PER_RUN_FIELDS:
        data.pop(key, None)
    data["steps"] = [{k: v for k, v in st.items() if k != "seconds"} for st in data["steps"]]
    # curate's two outputs link each other by folder name, which differs from the reference's
    links = ("rejected_dir", "kept_dir")
    data["params"] = {k: v for k, v in data["params"].items() if k not in links}
    return data


def same_bytes(out: Path, ref: Path) -> bool:
    for sub in ("", "-rejected"):  # curate's rejected rows are a sibling dataset, OUT-rejected
        mine, theirs = Path(f"{out}{sub}"), Path(f"{ref}{sub}")
        if not (theirs / MANIFEST_NAME).is_file():
            continue
        got = {p.name: p.read_bytes() for p in shard_paths(mine)}
        if got != {p.name: p.read_bytes() for p in shard_paths(theirs)}:
            return False
        if _manifest(mine) != _manifest(theirs):
            return False
    return True


def compare(stage: str, out: Path, ref: Path, s: Settings, result: StageResult) -> None:
    if stage == "train":
        got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, ref))
        loss, ref_loss = got["loss_curve"][-1][1], want["loss_curve"][-1][1]
        close = abs(loss - ref_loss) <= s.loss_tol * max(abs(ref_loss), 1e-12)
        result.equal += int(got["steps"] == want["steps"] and close)
        return
    ids, unreadable = record_ids(out)
    ref_ids, _ = record_ids(ref)
    result.unreadable += unreadable
    result.duplicated += len(ids) - len(set(ids))
    result.lost += len(set(ref_ids) - set(ids))
    if stage in ("gen", "score"):
        result.equal += int(sorted(ids) == sorted(ref_ids))
    else:
        result.equal += int(same_bytes(out, ref))


def chaos_stage(stage: str, s: Settings, kills: int, rng: random.Random) -> StageResult:
    folder = s.work / stage
    shutil.rmtree(folder, ignore_errors=True)
    result = StageResult(stage)
    ref = folder / "ref"
    result.seconds_uninterrupted = run(commands(s, ref)[stage])
    # The kill window: the median wall time of the full runs seen so far (the reference, then
    # every run that finished before its kill), so one slow reference run on a busy machine
    # does not push most kills past the end of the run.
    durations = [result.seconds_uninterrupted]
    trial = 0
    while result.kills < kills and trial < 5 * kills:  # a run may finish before its kill
        trial += 1
        out = folder / f"trial-{trial:02d}"
        cmd = commands(s, out)[stage]
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        lo, hi = s.window
        try:
            proc.wait(timeout=rng.uniform(lo, hi) * statistics.median(durations))
            result.finished_first += 1
            durations.append(time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            result.kills += 1
            result.mid_write += int(started_writing(out))
        try:
            run(cmd)
            result.reruns_ok += 1
            compare(stage, out, ref, s, result)
        except (RuntimeError, DatasetError, OSError, KeyError, IndexError) as err:
            result.problems.append(f"trial {trial}: {err}")
        if trial > 1:  # keep the first trial's output to look at; the rest only cost disk
            shutil.rmtree(out, ignore_errors=True)
    return result


def table(results: list[StageResult]) -> str:
    head = (
        "stage",
        "kills",
        "mid-write",
        "finished first",
        "reruns ok",
        "lost",
        "duplicated",
        "unreadable",
        "equal",
        "T (s)",
    )
    rows = [
        (
            r.stage,
            r.kills,
            r.mid_write,
            r.finished_first,
            r.reruns_ok,
            r.lost,
            r.duplicated,
            r.unreadable,
            f"{r.equal}/{r.reruns_ok}",
            f"{r.seconds_uninterrupted:.1f}",
        )
        for r in results
    ]
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in [head, *rows]]
    lines.insert(1, "|" + "---|" * len(head))
    return "\n".join(lines)


def run_chaos(stages: list[str], s: Settings, kills: int) -> list[StageResult]:
    rng = random.Random(s.seed)
    prepare(s)
    if stages and stages != ["gen"] and not (s.work / "gen" / "ref" / MANIFEST_NAME).is_file():
        (s.work / "gen").mkdir(parents=True, exist_ok=True)
        run(commands(s, s.work / "gen" / "ref")["gen"])  # the input of the other stages
    return [chaos_stage(stage, s, kills, rng) for stage in stages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--stages", default=DEFAULT_STAGES, help=f"comma list of {STAGES}")
    parser.add_argument("--teacher", default="hf:embedded", help="a gen teacher spec, or tiny")
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--window", default="0,1", help="kill delay range, fractions of T")
    parser.add_argument("--loss-tol", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary dir")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    if unknown := set(stages) - set(STAGES):
        parser.error(f"--stages: unknown {sorted(unknown)}; use {STAGES}")
    lo, hi = (float(x) for x in args.window.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="distill-chaos-"))
    settings = Settings(
        work,
        args.teacher,
        args.prompts,
        args.max_new_tokens,
        loss_tol=args.loss_tol,
        window=(lo, hi),
        seed=args.seed,
    )
    results = []
    for stage in stages:  # one stage at a time, so a long run shows its figures as it goes
        results += run_chaos([stage], settings, args.kills)
        print(table(results[-1:]), flush=True)
        for problem in results[-1].problems:
            print(f"  {stage}: {problem}", flush=True)
    print(f"\nteacher {settings.teacher}, {args.kills} kills per stage, work dir {work}\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
