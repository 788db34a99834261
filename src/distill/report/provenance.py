"""The report's provenance: each dataset's lineage, the licences that bind the data, and
what each training run trained on (its `lineage.json`).

`collect` adds them to the report as `report["provenance"]` (`collect_provenance`);
`render` shows them as three more tables (`provenance_tables`) after the stages' figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill.dataset_card import license_warnings, lineage_licenses
from distill.run_lineage import read_run_lineage
from distill.schemas import LicenseInfo
from distill.store.lineage import ChainLink, lineage

PROVENANCE_TABLES = {
    "lineage": ["kind", "dataset id", "path", "parents", "manifest sha256"],
    "licences": ["source", "name", "licence", "terms", "warning"],
    "training data": ["run", "mode", "dataset id", "manifest sha256", "shards", "held-out prompts"],
}


def collect_provenance(report: dict[str, Any]) -> dict[str, Any]:
    """`report["provenance"]`: the chain of every dataset in the report (each dataset once,
    child first, with the manifest sha256 its child recorded), the licences of every source
    up those chains (each once), and each training run's `lineage.json`."""
    links: dict[str, dict[str, Any]] = {}
    licenses: dict[tuple[str, str], LicenseInfo] = {}
    for dataset in _datasets(report):
        for link in lineage(Path(dataset["path"])).links:
            held = links.get(link.manifest.dataset_id)
            if held is None or held["manifest_sha256"] is None:  # a child's record wins
                links[link.manifest.dataset_id] = _link_entry(link)
        for info in lineage_licenses(Path(dataset["path"])):
            licenses.setdefault((info.source, info.name), info)
    runs = []
    for run in report.get("training", []):
        found = read_run_lineage(Path(run["path"]))
        if found is not None:  # a run from before lineage.json was written has none
            runs.append({"path": run["path"], **found.model_dump(mode="json")})
    return {
        "lineage": list(links.values()),
        "licenses": [info.model_dump(mode="json") for info in licenses.values()],
        "training": runs,
    }


def _link_entry(link: ChainLink) -> dict[str, Any]:
    return {
        "kind": link.manifest.kind,
        "dataset_id": link.manifest.dataset_id,
        "path": str(link.path),
        "parents": [parent.dataset_id for parent in link.manifest.parents],
        "manifest_sha256": link.via.manifest_sha256 if link.via else None,
    }


def _datasets(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [*report.get("generated", []), *report.get("curated", [])]


def _rows_lineage(provenance: dict[str, Any]) -> list[list[str]]:
    return [
        [link["kind"], link["dataset_id"], link["path"], ", ".join(link["parents"]) or "-",
         (link["manifest_sha256"] or "-")[:16]]
        for link in provenance.get("lineage", [])
    ]  # fmt: skip


def _rows_licences(provenance: dict[str, Any]) -> list[list[str]]:
    found = [LicenseInfo.model_validate(info) for info in provenance.get("licenses", [])]
    if not found and provenance.get("lineage"):
        return [["-", "-", "unknown", "-", "no licence was recorded for this data"]]
    return [
        [info.source, info.name, info.license or "unknown", info.terms or "-",
         "; ".join(license_warnings([info])) or "-"]
        for info in found
    ]  # fmt: skip


def _rows_training_data(provenance: dict[str, Any]) -> list[list[str]]:
    return [
        [run["path"], run["mode"], run["dataset_id"], run["manifest_sha256"][:16],
         str(len(run["shard_sha256"])), str(len(run["heldout_prompt_ids"]))]
        for run in provenance.get("training", [])
    ]  # fmt: skip


def provenance_tables(report: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The non-empty provenance tables, by name (headers in `PROVENANCE_TABLES`)."""
    provenance = report.get("provenance", {})
    tables = {
        "lineage": _rows_lineage(provenance),
        "licences": _rows_licences(provenance),
        "training data": _rows_training_data(provenance),
    }
    return {name: rows for name, rows in tables.items() if rows}
