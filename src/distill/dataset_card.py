"""`README.md` inside a dataset: a Hugging Face dataset card with the figures a reader trusts.

The YAML front matter is what the Hub and `datasets` read: `license`, `task_categories`,
`size_categories`, `tags`, `source_datasets`, and `configs` pointing at `data/*.parquet`
(`default`: the rows) and, for a curated dataset, its sibling rejected dataset's
`../DIR-rejected/data/*.parquet` (`rejected`: the dropped rows with their reasons), so
`datasets.load_dataset(DIR)` loads the kept rows with no distill code and
`load_dataset(DIR, "rejected")` the dropped ones (`datasets` resolves a local config path
outside the folder; on the Hub, where it cannot, the rejected dataset is pushed as a
dataset of its own, with its own card). The body is made from the manifests alone (and
the shards' footers): counts per step with reasons, domains, teacher accuracy, teachers
and settings, storage, decontamination, licences with their warnings, and the lineage.
Nothing in it depends on the clock, so a rerun of curate or pack writes the same card byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from distill.schemas import LicenseInfo, Manifest
from distill.store import atomic_write_bytes, load_manifest
from distill.store.lineage import lineage, manifest_sha256, rejected_path, relative_link

CARD_NAME = "README.md"
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
_SIZES += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]


def size_category(rows: int) -> str:
    return next((name for limit, name in _SIZES if rows < limit), "n>100M")


def license_warnings(licenses: list[LicenseInfo]) -> list[str]:
    """What a user must read before training on the data (empty: nothing known to check)."""
    warnings = []
    for info in licenses:
        what = "prompt file" if info.source == "prompts" else "teacher"
        if info.license is None and info.terms is None:
            warnings.append(f"the {what} {info.name}'s licence and terms are unknown")
        if info.source == "teacher" and info.restricts_competing_models:
            warnings.append(
                f"the teacher {info.name}'s terms ({info.terms or 'see its provider'}) restrict "
                "training models that compete with its maker's on its outputs"
            )
        elif info.source == "teacher" and info.restricts_competing_models is None:
            warnings.append(
                f"whether the teacher {info.name}'s terms allow training other models on its "
                "outputs is unknown"
            )
    return warnings


def _config(name: str, path: str) -> dict[str, Any]:
    return {"config_name": name, "data_files": [{"split": "train", "path": path}]}


def license_field(licenses: list[LicenseInfo]) -> str | list[str]:
    """One SPDX id, or the list of them when sources differ; "other" stands for unknown."""
    names = sorted({i.license.lower() if i.license else "other" for i in licenses}) or ["other"]
    return names[0] if len(names) == 1 else names


def _front_matter(dataset_dir: Path, manifest: Manifest, rows: int) -> dict[str, Any]:
    configs = [_config("default", "data/*.parquet")]
    rejected = rejected_path(dataset_dir, manifest)
    if rejected is not None:
        link = relative_link(dataset_dir, rejected)
        configs.append(_config("rejected", f"{link}/data/*.parquet"))
    sources = sorted({Path(i.name).name for i in manifest.licenses if i.source == "prompts"})
    return {
        "license": license_field(manifest.licenses),
        "task_categories": ["text-generation"],
        "size_categories": [size_category(rows)],
        "tags": ["distillation", "knowledge-distillation", "synthetic", "top-k-logprobs"],
        "source_datasets": sources,
        "configs": configs,
    }


def response_tokens(dataset_dir: Path, manifest: Manifest) -> int:
    """Response tokens of the dataset, from the `token_ids` column alone."""
    total = 0
    for shard in manifest.shards:
        lengths = pq.read_table(dataset_dir / shard.file, columns=["token_ids"]).column(0)
        total += int(pc.sum(pc.list_value_length(lengths)).as_py() or 0)
    return total


def table_section(
    title: str, header: list[str], rows: list[list[Any]], intro: str = ""
) -> list[str]:
    """A Markdown section holding one table (and an optional sentence before it)."""
    lines = [f"## {title}", ""] + ([intro, ""] if intro else [])
    if not rows:
        return lines
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _storage(dataset_dir: Path, manifest: Manifest, rows: int) -> list[str]:
    size = sum((dataset_dir / shard.file).stat().st_size for shard in manifest.shards)
    tokens = response_tokens(dataset_dir, manifest)
    per_token = f"{size / tokens:.1f}" if tokens else "-"
    header = ["rows", "response tokens", "top-k", "codec", "shards", "bytes", "bytes per token"]
    row = [rows, tokens, manifest.top_k, manifest.codec, len(manifest.shards), size, per_token]
    return table_section("Storage", header, [row])


def _curation(manifest: Manifest) -> list[str]:
    if not manifest.steps:
        return []
    steps = [
        [s["step"], s["input"], s["kept"], ", ".join(f"{r}: {n}" for r, n in s["dropped"].items())]
        for s in manifest.steps
    ]
    intro = "Every dropped row is kept, with its step and reason, in the `rejected` config."
    if manifest.kind == "rejected":
        intro = "The rows these steps dropped, each with its step, reason and details."
    out = table_section("Curation", ["step", "input", "kept", "dropped"], steps, intro)
    before = manifest.stats.get("domains_before", {})
    after = manifest.stats.get("domains_after", {})
    if before:
        domains = [[d, before[d], after.get(d, 0)] for d in sorted(before)]
        out += table_section("Domains", ["domain", "before", "after"], domains)
    accuracy = manifest.stats.get("accuracy_by_domain", {})
    if accuracy:
        graded = [
            [d, a["graded"], a["correct"], f"{a['accuracy']:.3f}"] for d, a in accuracy.items()
        ]
        header = ["domain", "graded", "correct", "accuracy"]
        out += table_section("Teacher accuracy (multiple choice)", header, graded)
    contamination = manifest.stats.get("contamination", {})
    if contamination:
        found = [[name, c["rows"], c["benchmark_lines"]] for name, c in contamination.items()]
        out += table_section("Decontamination", ["benchmark", "rows dropped", "items hit"], found)
    return out


def _teachers(manifest: Manifest) -> list[str]:
    rows = [
        [t.teacher_id, t.backend, t.revision[:16], t.logprobs_mode.value, t.top_k,
         json.dumps(t.sampling.model_dump())]
        for t in manifest.teachers
    ]  # fmt: skip
    header = ["teacher", "backend", "weights", "log-probs", "k", "sampling"]
    return table_section("Teachers", header, rows)


def licences_section(licenses: list[LicenseInfo]) -> list[str]:
    """The licences table and a warning per unknown or restrictive term (model cards too)."""
    rows = [
        [i.source, i.name, i.license or "unknown", i.terms or "-", (i.sha256 or "-")[:16]]
        for i in licenses
    ]
    intro = "" if rows else "No licence was recorded for the prompts or the teachers."
    out = table_section(
        "Licences and terms", ["source", "name", "licence", "terms", "sha256"], rows, intro
    )
    warnings = [f"- **Warning:** {w}" for w in license_warnings(licenses)]
    return [*out, *warnings, ""] if warnings else out


def lineage_section(dataset_dir: Path) -> list[str]:
    rows = []
    for link in lineage(dataset_dir).links:
        where = os.path.relpath(link.path.resolve(), Path(dataset_dir).resolve())
        # This dataset's own manifest holds its creation time: its hash would make a rerun's
        # card differ. A parent's hash is the one the child recorded, fixed.
        sha = manifest_sha256(link.path)[:16] if link.via is not None else "(this dataset)"
        rows.append([link.manifest.kind, link.manifest.dataset_id, where, sha])
    intro = "Child first; check every file of it with `distill verify DIR`."
    return table_section("Lineage", ["kind", "dataset id", "path", "manifest sha256"], rows, intro)


def lineage_licenses(dataset_dir: Path) -> list[LicenseInfo]:
    """The licences of every source up the lineage (each source once, nearest first): a
    dataset made from others is bound by its parents' prompts and teachers too."""
    found: dict[tuple[str, str], LicenseInfo] = {}
    for link in lineage(dataset_dir).links:
        for info in link.manifest.licenses:
            found.setdefault((info.source, info.name), info)
    return list(found.values())


def _what_loads(manifest: Manifest) -> str:
    if manifest.kind == "curated":
        return 'kept rows; config "rejected": the dropped ones'
    if manifest.kind == "rejected":
        return "the dropped rows, with reject_step, reject_reason, reject_details"
    return "the rows"


def render_card(dataset_dir: Path, manifest: Manifest | None = None) -> str:
    dataset_dir = Path(dataset_dir)
    manifest = manifest or load_manifest(dataset_dir)
    manifest = manifest.model_copy(update={"licenses": lineage_licenses(dataset_dir)})
    rows = sum(shard.rows for shard in manifest.shards)
    front = yaml.safe_dump(_front_matter(dataset_dir, manifest, rows), sort_keys=False)
    teachers = ", ".join(t.model_id for t in manifest.teachers) or "unknown"
    body = [
        f"# A distill {manifest.kind} dataset",
        "",
        f"{rows} rows from {teachers}, with each response token's top-{manifest.top_k} teacher "
        f"token ids and log-probs ({manifest.codec} codec).",
        "",
        "```python",
        "from datasets import load_dataset",
        f'rows = load_dataset("path/to/this/folder")  # {_what_loads(manifest)}',
        "```",
        "",
        *licences_section(manifest.licenses),
        *_teachers(manifest),
        *_storage(dataset_dir, manifest, rows),
        *_curation(manifest),
        *lineage_section(dataset_dir),
    ]
    return f"---\n{front}---\n\n" + "\n".join(body).rstrip() + "\n"


def write_card(dataset_dir: Path, manifest: Manifest | None = None) -> Path:
    """Write (or rewrite) `DIR/README.md`; returns its path."""
    path = Path(dataset_dir) / CARD_NAME
    atomic_write_bytes(path, render_card(dataset_dir, manifest).encode())
    return path
