"""Per-request failures and the run's tallies for `distill gen`.

A row whose request failed after the backend's retries gets no record; it is appended to
`failed.jsonl` (one JSON object a line: ids, kind, reason, attempts, run id) and counted
as `failed` and `failed_<kind>`. The record id is the resume key, so a rerun of the same
command sends exactly the missing rows, failed ones included: each run therefore drops
its teacher's old entries from failed.jsonl (another teacher's stay), and the file lists
the rows the latest run of each teacher could not get.
"""

from __future__ import annotations

import json
from pathlib import Path

from distill.store import OutputWriteError, atomic_write_bytes
from distill.teachers.backend import Generation

FAILED_FILE = "failed.jsonl"
PER_MILLION = 1_000_000


def start_failure_log(out_dir: Path, teacher_id: str) -> Path:
    path = out_dir / FAILED_FILE
    kept = []
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [f"{line}\n" for line in lines if _entry_teacher(line) not in (None, teacher_id)]
    atomic_write_bytes(path, "".join(kept).encode())
    return path


def _entry_teacher(line: str) -> str | None:
    """The teacher of a failed.jsonl line; None for a blank or torn one (a killed append)."""
    try:
        return json.loads(line)["teacher_id"]
    except (ValueError, KeyError, TypeError):
        return None


def append_failures(path: Path, entries: list[dict]) -> None:
    """Appended and flushed batch by batch, so a crash keeps what has failed so far."""
    if entries:
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
        except OSError as exc:
            raise OutputWriteError(
                f"{path}: write failed ({exc.strerror or exc}); free some space and re-run the "
                "same command: it resumes (rows with no record are sent again)"
            ) from exc


def failure_entry(
    prompt_id: str, sample_index: int, record_id: str, teacher_id: str, gen: Generation, run_id: str
) -> dict:
    assert gen.failure is not None
    return {
        "prompt_id": prompt_id,
        "sample_index": sample_index,
        "teacher_id": teacher_id,
        "record_id": record_id,
        "kind": gen.failure.kind,
        "reason": gen.failure.reason,
        "status": gen.failure.status,
        "attempts": gen.attempts,
        "run_id": run_id,
    }


def tally(counts: dict[str, int], gens: list[Generation]) -> None:
    """Add one batch to the run's counts: written, failed (by kind), retries, usage."""
    for gen in gens:
        if gen.failure is None:
            counts["written"] += 1
        else:
            counts["failed"] += 1
            key = f"failed_{gen.failure.kind}"
            counts[key] = counts.get(key, 0) + 1
        counts["retries"] += max(gen.attempts - 1, 0)
        if gen.unmapped:
            counts["unmapped_topk_entries"] = counts.get("unmapped_topk_entries", 0) + gen.unmapped
        for key, value in gen.usage.items():
            counts[f"usage_{key}"] = counts.get(f"usage_{key}", 0) + value


def cost_usd(
    counts: dict[str, int], price_input: float | None, price_output: float | None
) -> float | None:
    """USD for the tokens the API reported, at prices per 1M tokens; None without prices."""
    if price_input is None and price_output is None:
        return None
    prompt = counts.get("usage_prompt_tokens", 0) * (price_input or 0.0)
    completion = counts.get("usage_completion_tokens", 0) * (price_output or 0.0)
    return (prompt + completion) / PER_MILLION
