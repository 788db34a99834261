"""What `distill train` leaves beside the model: `lineage.json` and a `README.md` model card.

`lineage.json` (`distill.run_lineage`) pins the data the run trained on; `distill audit`
reads it to name the runs that used a row. The card says, for a reader of the run folder
or of the Hub: the base model, the mode and its loss, the dataset (id, manifest sha256 and
its lineage up to the generated data), the held-out metrics, the teachers, and the
licences of the prompts and teachers, with the dataset card's warnings: a student trained
on a teacher's outputs is bound by that teacher's terms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from distill.dataset_card import CARD_NAME, licences_section, license_field, table_section
from distill.run_lineage import RunLineage, write_run_lineage
from distill.store import atomic_write_bytes
from distill.store.lineage import lineage, manifest_sha256


def loss_summary(mode: str, config: dict[str, Any]) -> str:
    """The loss the run minimised, in words, from `metrics.json`'s config."""
    if mode == "sft":
        return "cross-entropy on the teacher's response tokens (hard labels)"
    if mode == "gkd":
        gkd = config.get("gkd", {})
        return (
            f"on-policy GKD: generalised JSD (beta {gkd.get('beta')}) on a mix of the "
            f"dataset's and the student's own responses (lambda {gkd.get('lmbda')})"
        )
    kd = config.get("kd", {})
    divergence = kd.get("divergence") or "forward KL"
    schedule = kd.get("alpha_schedule", "constant")
    return (
        f"alpha {kd.get('alpha')} x T^2 x {divergence} to the teacher's sparse top-k "
        f"(T = {kd.get('temperature')}) + (1 - alpha) x cross-entropy on its tokens; "
        f"alpha schedule {schedule}"
    )


def _metrics(metrics: dict[str, Any]) -> list[str]:
    before, after = metrics.get("heldout_initial") or {}, metrics.get("heldout") or {}
    rows = [
        [name, _number(before.get(name)), _number(after.get(name))]
        for name in sorted(set(before) | set(after))
    ]
    intro = (
        f"{metrics.get('heldout_rows', 0)} held-out rows ({metrics.get('heldout_tokens', 0)} "
        "response tokens), split off by prompt so no sample of a held-out prompt was trained "
        "on; KL is the sparse KL to the teacher's top-k, NLL that of the teacher's tokens."
    )
    return table_section("Held-out metrics", ["metric", "before training", "after"], rows, intro)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "-")


def _lineage(run_dir: Path, run: RunLineage) -> list[str]:
    rows = []
    for link in lineage(Path(run.dataset)).links:
        where = os.path.relpath(link.path.resolve(), Path(run_dir).resolve())
        sha = manifest_sha256(link.path)[:16]
        rows.append([link.manifest.kind, link.manifest.dataset_id, where, sha])
    shards = f"{len(run.shard_sha256)} shard" + ("" if len(run.shard_sha256) == 1 else "s")
    intro = (
        f"Trained on `{run.dataset}` (dataset id `{run.dataset_id}`, manifest sha256 "
        f"`{run.manifest_sha256}`, {shards}, all pinned in "
        f"`lineage.json` with the {len(run.heldout_prompt_ids)} held-out prompt ids). "
        "Its lineage, child first:"
    )
    header = ["kind", "dataset id", "path", "manifest sha256"]
    return table_section("Data and lineage", header, rows, intro)


def render_model_card(run_dir: Path, run: RunLineage, metrics: dict[str, Any]) -> str:
    config = metrics.get("config", {})
    base = str(config.get("student") or "a random student on the teacher's tokenizer")
    front = {
        "license": license_field(run.licenses),
        "library_name": "transformers",
        "tags": ["distillation", "knowledge-distillation", "distill", run.mode],
    }
    training = [[base, run.mode, metrics.get("steps", "-"), run.train_rows, config.get("seed")]]
    training_header = ["base model", "mode", "steps", "train rows", "seed"]
    loss = f"Loss: {loss_summary(run.mode, config)}."
    teachers = [[teacher] for teacher in run.teachers]
    body = [
        f"# A distill student ({run.mode})",
        "",
        f"Trained by `distill train --mode {run.mode}`; the weights are in `model/`.",
        "",
        *table_section("Training", training_header, training, loss),
        *_metrics(metrics),
        *table_section("Teachers", ["teacher"], teachers),
        *licences_section(run.licenses),
        *_lineage(run_dir, run),
    ]
    meta = yaml.safe_dump(front, sort_keys=False)
    return f"---\n{meta}---\n\n" + "\n".join(body).rstrip() + "\n"


def write_run_records(run_dir: Path, dataset_dir: Path, metrics: dict[str, Any]) -> RunLineage:
    """`RUN/lineage.json` and `RUN/README.md` for a finished run (`metrics`: metrics.json's)."""
    run = write_run_lineage(
        run_dir,
        dataset_dir,
        metrics["mode"],
        metrics.get("heldout_prompt_ids", []),
        metrics.get("train_rows", 0),
        metrics.get("config", {}),
    )
    card = render_model_card(run_dir, run, metrics)
    atomic_write_bytes(Path(run_dir) / CARD_NAME, card.encode())
    return run
