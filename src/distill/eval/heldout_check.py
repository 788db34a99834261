"""Which evaluation questions a student trained on, from its run's `lineage.json`.

A score on questions the student was trained on measures memory, not skill. A run's
`lineage.json` pins the dataset it trained on (path and manifest sha256) and the prompts
it held out. A question counts as trained on when a row of that dataset asks it and the
row's prompt was not held out. Rows are matched by the question as the model saw it: the
user turn from "Question:" on (stem and options), whitespace collapsed, so a different
instruction or system prompt at generation time does not hide a match.

When the dataset is gone or has changed since the run (its manifest's sha256 differs),
what was trained on can no longer be read; then only the recorded held-out ids vouch for
a question: a question counts as trained on unless its prompt id (computed as `distill
gen` names a prompt, `input_rows.content_prompt_id`) is among them.

What happens to trained-on questions is the caller's `TrainedPolicy`: refuse (the
default), skip them, or force (evaluate them, and the result says so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from distill.input_rows import content_prompt_id
from distill.run_lineage import RunLineage
from distill.store import MANIFEST_NAME, iter_batches, sha256_file
from distill.tasks.mcq_variants import McqVariants

TrainedPolicy = Literal["refuse", "skip", "force"]


class TrainedPromptsError(ValueError):
    """Evaluation questions a run trained on, refused."""


@dataclass(frozen=True)
class TrainedCheck:
    """Per question, the runs that trained on it; per run, how that was decided."""

    trained_by: list[tuple[str, ...]]
    method: dict[str, str]  # run dir -> "dataset" | "held-out ids"

    def trained(self) -> list[int]:
        return [i for i, runs in enumerate(self.trained_by) if runs]


def question_key(user_text: str) -> str:
    """The question as asked, from "Question:" on, whitespace collapsed."""
    start = user_text.find("Question:")
    return " ".join(user_text[max(start, 0) :].split())


def eval_prompt_ids(questions: Sequence[McqVariants]) -> list[str]:
    """Each question's prompt id as `distill gen --format mmlu` names it (the n-th
    occurrence of the same prompt in the file gets its own id, as in gen)."""
    seen: Counter[str] = Counter()
    ids = []
    for question in questions:
        seen[question.prompt] += 1
        ids.append(content_prompt_id([{"role": "user", "content": question.prompt}],
                                     seen[question.prompt]))  # fmt: skip
    return ids


def _dataset_unchanged(run: RunLineage) -> bool:
    manifest = Path(run.dataset) / MANIFEST_NAME
    return manifest.is_file() and sha256_file(manifest) == run.manifest_sha256


def _user_text(messages: list[dict[str, str]]) -> str:
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else ""


def _trained_in_dataset(run: RunLineage, keys: dict[str, list[int]]) -> set[int]:
    """The questions (indices) that a trained row of the run's dataset asks."""
    held = pa.array(run.heldout_prompt_ids, type=pa.string())
    found: set[int] = set()
    for batch in iter_batches(Path(run.dataset), columns=["prompt_id", "messages"]):
        trained = pc.invert(pc.is_in(batch.column("prompt_id"), value_set=held))
        for messages in batch.filter(trained).column("messages").to_pylist():
            found.update(keys.get(question_key(_user_text(messages)), ()))
    return found


def check_trained(questions: Sequence[McqVariants], runs: Mapping[str, RunLineage]) -> TrainedCheck:
    """For each question, the runs (keys of `runs`: the run dirs as given) that trained on it."""
    keys: dict[str, list[int]] = {}
    for index, question in enumerate(questions):
        keys.setdefault(question_key(question.prompt), []).append(index)
    ids = eval_prompt_ids(questions)
    trained_by: list[list[str]] = [[] for _ in questions]
    method = {}
    for name, run in runs.items():
        if _dataset_unchanged(run):
            hits, method[name] = _trained_in_dataset(run, keys), "dataset"
        else:
            held = set(run.heldout_prompt_ids)
            hits = {i for i, pid in enumerate(ids) if pid not in held}
            method[name] = "held-out ids"
        for index in hits:
            trained_by[index].append(name)
    return TrainedCheck([tuple(names) for names in trained_by], method)


def refusal(source: str, check: TrainedCheck, questions: Sequence[McqVariants]) -> str:
    """The one-line error for trained-on questions under the "refuse" policy."""
    trained = check.trained()
    first = trained[0]
    run = check.trained_by[first][0]
    how = (
        "its dataset has rows asking them"
        if check.method[run] == "dataset"
        else "they are not among its recorded held-out prompts (its dataset is gone or changed)"
    )
    return (
        f"{source}: {len(trained)} of {len(questions)} questions were trained on by "
        f"{run} ({how}; first on line {questions[first].line}); evaluate on held-out "
        "prompts, or pass --skip-trained to leave them out or --force-trained to evaluate "
        "them anyway (labelled as such)"
    )
