"""The report's evaluation section: teacher, baseline and students per MMLU category.

A grouped bar chart (inline SVG from matplotlib, no script): per category and over all
questions, one bar per model, with its bootstrap interval as an error bar and chance
(25 % for four options) as a dashed line; then a table of the rates accuracy does not
show (answer extraction, consistency under permuted options and rewordings).

The text says what the chart can and cannot show. When the teacher's own interval
reaches down to chance, a student cannot gain accuracy by imitating it, so no accuracy
gain can appear here whatever the distillation did; the section says so and points to
docs/eval.md, which runs the same comparison with a teacher above chance on a GPU. The
embedded teacher, SmolLM2-135M-Instruct, is such a teacher: at chance on MMLU.
"""

from __future__ import annotations

import html
import io
from typing import Any

from distill.eval.result import EvalResult, ModelResult
from distill.report.section import PageContext, Section

COLOURS = ("#4c72b0", "#8c8c8c", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
ROLE_TEXT = {"teacher": "teacher", "baseline": "untrained", "student": "student", "model": ""}


def _legend_label(model: ModelResult) -> str:
    role = ROLE_TEXT[model.role]
    trained = " [trained prompts]" if model.on_trained_prompts else ""
    return f"{model.label} ({role}){trained}" if role else f"{model.label}{trained}"


def category_chart(result: EvalResult) -> Any:
    """Accuracy per category and overall, models side by side, intervals and chance: a
    matplotlib `Figure` (no pyplot, so no global state)."""
    from matplotlib.figure import Figure

    groups = [*result.categories, "all"]
    width = 0.8 / max(len(result.models), 1)
    figure = Figure(figsize=(1.6 + 1.5 * len(groups), 4.2))
    axes = figure.subplots()
    for index, model in enumerate(result.models):
        scores = [model.per_category.get(group) for group in groups[:-1]] + [model.overall]
        values = [s.accuracy.value if s else float("nan") for s in scores]
        below = [s.accuracy.value - s.accuracy.low if s else 0.0 for s in scores]
        above = [s.accuracy.high - s.accuracy.value if s else 0.0 for s in scores]
        xs = [g + (index - (len(result.models) - 1) / 2) * width for g in range(len(groups))]
        axes.bar(
            xs, values, width, yerr=[below, above], capsize=2, color=COLOURS[index % len(COLOURS)],
            error_kw={"elinewidth": 0.8, "ecolor": "#222"}, label=_legend_label(model),
        )  # fmt: skip
    axes.axhline(result.chance, color="#333", linestyle="--", linewidth=1)
    axes.text(len(groups) - 0.5, result.chance + 0.01, f"chance {result.chance:.0%}",
              ha="right", va="bottom", fontsize=8)  # fmt: skip
    counts = {item.category: 0 for item in result.items}
    for item in result.items:
        counts[item.category] += 1
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([f"{g}\n({counts.get(g, result.count)} q)" for g in groups], fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy (95% bootstrap interval)")
    columns = min(len(result.models), 4)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False,
                ncol=columns)  # fmt: skip
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure


def category_chart_svg(result: EvalResult) -> str:
    """`category_chart` as an inline `<svg>` element."""
    import matplotlib

    figure = category_chart(result)
    buffer = io.StringIO()
    # Text as text, fixed ids and no date: the same result gives the same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "distill"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _rates_table(result: EvalResult) -> str:
    rows = [
        ("accuracy (all)", [m.overall.accuracy for m in result.models]),
        ("answer extracted", [m.overall.extraction for m in result.models]),
        ("same choice, options permuted", [m.permutation_consistency for m in result.models]),
        ("same choice, reworded", [m.rewording_consistency for m in result.models]),
    ]
    head = "".join(f"<th>{html.escape(_legend_label(m))}</th>" for m in result.models)
    body = "".join(
        f"<tr><td>{name}</td>"
        + "".join(f"<td>{html.escape(e.text()) if e else '-'}</td>" for e in estimates)
        + "</tr>"
        for name, estimates in rows
    )
    return f"<table><thead><tr><th>rate</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def outcome_note(result: EvalResult) -> str:
    """What the comparison can show, in words: above all, whether the teacher is above chance."""
    teachers = [m for m in result.models if m.role == "teacher"]
    notes = []
    for teacher in teachers:
        accuracy = teacher.overall.accuracy
        if accuracy.low <= result.chance:
            notes.append(
                f"The teacher, {teacher.label}, is at chance on these questions (accuracy "
                f"{accuracy.text()}; chance is {result.chance:.0%}). A student that imitates "
                "it cannot gain accuracy, so no accuracy gain from distillation can show "
                "here, whatever the training did; the held-out KL to the teacher above is "
                "what measures how much of the teacher the students took in. To see "
                "accuracy gains, run the same comparison with a teacher above chance on a "
                "GPU (docs/eval.md)."
            )
        else:
            notes.append(
                f"The teacher, {teacher.label}, is above chance (accuracy {accuracy.text()}), "
                "so a student's gain over the baseline can show here."
            )
    if result.on_trained_prompts:
        notes.append(
            f"{result.on_trained_prompts} of the {result.count} questions were trained on "
            "(evaluated with --force-trained): the marked students' scores partly measure "
            "memory."
        )
    return "".join(f"<p><strong>{html.escape(note)}</strong></p>" for note in notes)


def eval_section_html(raw: dict[str, Any]) -> str:
    """The section for one `distill eval` result (its JSON, as the report collected it)."""
    result = EvalResult.model_validate(raw)
    intro = (
        f"<p>{result.count} multiple-choice questions from <code>{html.escape(result.questions)}"
        f"</code>, none trained on by a student unless marked ({result.skipped_trained} "
        f"left out as trained on), greedy answers of at most {result.max_new_tokens} "
        f"tokens. Categories: {html.escape(result.categories_source)}. A response with no "
        "extractable letter counts as wrong; the extraction rate is given apart. "
        f"Intervals: {result.confidence:.0%} bootstrap over questions "
        f"({result.bootstrap_samples} resamples, seed {result.seed}).</p>"
    )
    return intro + outcome_note(result) + category_chart_svg(result) + _rates_table(result)


def eval_section(ctx: PageContext) -> Section | None:
    """The page's evaluation section: every `eval.json` the report collected, in turn."""
    results = ctx.report.get("eval", [])
    if not results:
        return None
    body = "".join(eval_section_html(raw) for raw in results)
    return Section("eval", "evaluation: teacher, baseline and students", body)
