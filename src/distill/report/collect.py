"""Gather the figures of a run from the directories it wrote.

Each directory given is classified by what it holds: a dataset (`manifest.json`, by its
kind), a training run (`metrics.json`), a `distill eval` result (`eval.json`), or a folder
of those (one level down, the shape `distill demo` writes). Nothing is recomputed here:
every figure comes from a manifest, a metrics or an eval file, so the report shows exactly
what the steps recorded; a dataset's shards are checked against its manifest first, so it
never reports on damaged data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill.eval.result import EVAL_RESULT_NAME
from distill.report.provenance import collect_provenance
from distill.store import MANIFEST_NAME, load_manifest, verify_shards

METRICS_NAME = "metrics.json"


def _dataset_entry(path: Path) -> dict[str, Any]:
    manifest = load_manifest(path)
    verify_shards(path, manifest)  # the figures describe these shards: refuse damaged ones
    teachers = [t.teacher_id for t in manifest.teachers]
    return {
        "path": str(path),
        "kind": manifest.kind,
        "dataset_id": manifest.dataset_id,
        # one string for the tables; a run with several teachers lists them all
        "teacher": ", ".join(teachers) if teachers else None,
        "teachers": teachers,
        "top_k": manifest.top_k,
        "counts": manifest.counts,
        "params": manifest.params,
        "stats": manifest.stats,
        "steps": manifest.steps,
        "parents": [p.path for p in manifest.parents],
    }


def _train_entry(path: Path) -> dict[str, Any]:
    metrics = json.loads((path / METRICS_NAME).read_text())
    return {"path": str(path), **metrics}


def _classify(path: Path, report: dict[str, Any]) -> bool:
    if (path / MANIFEST_NAME).is_file():
        entry = _dataset_entry(path)
        bucket = {"generated": "generated", "curated": "curated"}.get(entry["kind"])
        if bucket:
            report[bucket].append(entry)
        return True
    if (path / METRICS_NAME).is_file():
        report["training"].append(_train_entry(path))
        return True
    if (path / EVAL_RESULT_NAME).is_file():
        report.setdefault("eval", []).append(json.loads((path / EVAL_RESULT_NAME).read_text()))
        return True
    return False


def collect_report(dirs: list[Path]) -> dict[str, Any]:
    report: dict[str, Any] = {"generated": [], "curated": [], "training": []}
    for directory in dirs:
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such directory")
        if _classify(directory, report):
            continue
        found = [
            _classify(child, report) for child in sorted(directory.iterdir()) if child.is_dir()
        ]
        if not any(found):
            raise FileNotFoundError(
                f"{directory}: holds no distill dataset (manifest.json) or training run "
                f"({METRICS_NAME}), nor any one level down"
            )
    report["summary"] = _summary(report)
    report["provenance"] = collect_provenance(report)  # lineage, licences, training data
    return report


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: counts per stage and each student's held-out KL."""
    summary: dict[str, Any] = {}
    if report["generated"]:
        summary["generated_records"] = sum(g["counts"].get("rows", 0) for g in report["generated"])
    if report["curated"]:
        cur = report["curated"][0]
        summary["kept"] = cur["counts"].get("kept", cur["counts"].get("rows", 0))
        summary["rejected"] = cur["counts"].get("rejected", 0)
    for run in report["training"]:
        held = run.get("heldout") or {}
        summary[f"{run.get('mode', 'train')}_heldout_kl"] = held.get("kl")
        summary[f"{run.get('mode', 'train')}_heldout_nll"] = held.get("nll")
    return summary
