"""`distill eval`'s terminal tables: models side by side, every rate with its interval."""

from __future__ import annotations

from typing import Any

from distill.eval.result import EvalResult, GroupScore, ModelResult
from distill.eval.stats import Estimate


def model_heading(model: ModelResult) -> str:
    """'kd student\\n(student)', with a warning mark when it was scored on trained prompts."""
    trained = " [TRAINED PROMPTS]" if model.on_trained_prompts else ""
    return f"{model.label}{trained}\n({model.role})"


def _cell(estimate: Estimate | None) -> str:
    return "-" if estimate is None else estimate.text()


def _accuracy(scores: dict[str, GroupScore], name: str) -> str:
    found = scores.get(name)
    return "-" if found is None else found.accuracy.text()


def _title(result: EvalResult, what: str) -> str:
    level = f"{result.confidence:.0%}"
    title = f"{what}: {result.count} questions, {level} bootstrap intervals"
    if result.on_trained_prompts:
        title += f" ({result.on_trained_prompts} questions were TRAINED ON: --force-trained)"
    return title


def comparison_table(result: EvalResult) -> Any:
    """Accuracy per category and overall, then extraction and consistency, per model."""
    from rich.table import Table

    table = Table(title=_title(result, "MCQ accuracy by category"))
    table.add_column("category")
    for model in result.models:
        table.add_column(model_heading(model), justify="right")
    for category in result.categories:
        table.add_row(category, *[_accuracy(m.per_category, category) for m in result.models])
    table.add_section()
    rows = [
        ("accuracy (all)", [m.overall.accuracy for m in result.models]),
        ("answer extracted", [m.overall.extraction for m in result.models]),
        ("same choice, options permuted", [m.permutation_consistency for m in result.models]),
        ("same choice, reworded", [m.rewording_consistency for m in result.models]),
    ]
    for name, estimates in rows:
        table.add_row(name, *[_cell(e) for e in estimates])
    return table


def subject_table(result: EvalResult) -> Any:
    """Accuracy per subject (with its category), per model."""
    from rich.table import Table

    table = Table(title=_title(result, "MCQ accuracy by subject"))
    table.add_column("subject")
    table.add_column("category")
    for model in result.models:
        table.add_column(model_heading(model), justify="right")
    category_of = {item.subject: item.category for item in result.items}
    for subject in sorted(category_of):
        cells = [_accuracy(m.per_subject, subject) for m in result.models]
        table.add_row(subject, category_of[subject], *cells)
    return table
